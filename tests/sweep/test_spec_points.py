"""grid.points: only the listed combinations of a grid's axes are planned."""

import pytest

from sparsescale.errors import SparsescaleError
from sparsescale.sweep.spec import expand, spec_from_dict


def _spec(points):
    return {
        "name": "p",
        "family": "gpt",
        "train": {"batch": 8, "seq_len": 32},
        "grid": {
            "sparsity": [0.0, 0.5],
            "n_nonzero": ["8k", "16k"],
            "tokens": ["4k", "8k"],
            "points": points,
        },
    }


def test_points_restrict_the_cross_product():
    pts = [
        {"sparsity": 0.5, "n_nonzero": "8k", "tokens": "8k"},
        {"sparsity": 0.0, "n_nonzero": 16000, "tokens": 4000},
    ]
    runs = expand(spec_from_dict(_spec(pts)))
    assert {(r.axes["sparsity"], r.axes["n_nonzero"], r.axes["tokens"]) for r in runs} == {
        (0.5, 8000, 8000),
        (0.0, 16000, 4000),
    }
    assert len(expand(spec_from_dict(_spec(None)))) == 8


@pytest.mark.parametrize(
    "point, message",
    [
        (
            {"sparsity": 0.75, "n_nonzero": "8k", "tokens": "8k"},
            "sparsity 0.75 is not one of grid.sparsity",
        ),
        ({"sparsity": 0.5, "n_nonzero": "9k", "tokens": "8k"}, "must be values of grid.n_nonzero"),
        (
            {"sparsity": 0.5, "n_nonzero": "8k"},
            "needs exactly the keys sparsity, n_nonzero and tokens",
        ),
        ({"sparsity": 0.5, "n_nonzero": "8k", "tokens": "-1"}, "grid.points[0].tokens"),
    ],
)
def test_bad_points_name_the_point(point, message):
    with pytest.raises(SparsescaleError, match="grid.points\\[0\\]") as err:
        spec_from_dict(_spec([point]), "s.toml")
    assert message in str(err.value)
