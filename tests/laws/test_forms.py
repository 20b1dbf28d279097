import json
import subprocess
import sys

import numpy as np
import pytest

from sparsescale.errors import SparsescaleError
from sparsescale.laws.law import Law
from sparsescale.laws.points import FitOptions, Points
from sparsescale.laws.presets import load_law, preset


def test_presets_hold_table_1():
    vit, t5 = preset("vit-jft"), preset("t5-c4")
    assert vit.coefficients == {
        "aS": 294.0,
        "bS": 0.821,
        "cS": 468.0,
        "bN": 0.392,
        "aD": 2.37e8,
        "bD": 0.890,
        "c": 4.517,
    }
    assert t5.coefficients == {
        "aS": 16.8,
        "bS": 0.722,
        "cS": 45.0,
        "bN": 0.245,
        "aD": 1.05e4,
        "bD": 0.203,
        "c": 0.651,
    }
    assert "images" in vit.units["D"] and "steps" in t5.units["D"]


def test_sparse_law_matches_the_formula_and_reduces_to_dense_at_s0():
    law = preset("t5-c4")
    k = law.coefficients
    S, N, D = 0.75, 3e7, 4e5
    expected = (
        (k["aS"] * (1 - S) ** k["bS"] + k["cS"]) * N ** -k["bN"] + (k["aD"] / D) ** k["bD"] + k["c"]
    )
    assert law.predict(S, N, D) == pytest.approx(expected, rel=1e-14)
    dv = law.dense_view()
    dense = Law(
        "dense",
        {
            "A": dv["A"],
            "alpha": dv["alpha"],
            "B": dv["aD"] ** dv["beta"],
            "beta": dv["beta"],
            "E": dv["E"],
        },
    )
    assert dense.predict(0, N, D) == pytest.approx(law.predict(0.0, N, D), rel=1e-12)
    # more sparsity at the same non-zero count lowers the N-term
    assert np.all(np.diff(law.predict(np.array([0, 0.5, 0.75, 0.875]), N, D)) < 0)


def test_json_round_trip(tmp_path):
    law = preset("vit-jft")
    law.fit = {"objective": 1.0}
    path = tmp_path / "law.json"
    law.save(path)
    back = load_law(path)
    assert (
        back.coefficients == law.coefficients
        and back.units == law.units
        and back.fit == {"objective": 1.0}
    )
    assert json.loads(path.read_text())["form"] == "sparse"


@pytest.mark.parametrize(
    "content, message",
    [
        ("{not json", "not valid JSON"),
        ('{"form": "sparse"}', "needs keys"),
        ('{"form": "cubic", "coefficients": {}}', "unknown law form"),
        (
            '{"form": "dense", "coefficients": {"A": 1, "alpha": 0.3, "B": 1, "beta": 0.3}}',
            "missing coefficient(s) E",
        ),
        (
            '{"form": "dense", "coefficients": {"A": "x", "alpha": 0.3, "B": 1, "beta": 0.3, "E": '
            "1}}",
            "'A' is not a number",
        ),
    ],
)
def test_malformed_law_files_name_the_problem(tmp_path, content, message):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(
        SparsescaleError, match=message.replace("(", r"\(").replace(")", r"\)")
    ) as err:
        load_law(path)
    assert str(path) in str(err.value)


def test_unknown_preset():
    with pytest.raises(SparsescaleError, match="unknown law preset 'gpt-9'"):
        load_law("gpt-9")


def test_laws_import_without_torch_or_the_heavy_libraries():
    # What keeps `sparsescale fit` quick to start is what the laws do not import: torch, scipy
    # (the fitter's own low-discrepancy set replaces scipy.stats), pandas, pyarrow, matplotlib.
    # Checked by name, not by a stopwatch, so that a loaded machine cannot fail it.
    heavy = ("torch", "scipy", "pandas", "pyarrow", "matplotlib")
    code = (
        "import sys; "
        "import sparsescale.laws, sparsescale.laws.fit, sparsescale.laws.planning, "
        "sparsescale.laws.uncertainty.bootstrap, sparsescale.laws.uncertainty.calibration, "
        "sparsescale.laws.uncertainty.intervals, sparsescale.laws.uncertainty.assess, "
        "sparsescale.laws.paper; sparsescale.laws.preset('t5-c4'); "
        f"print(' '.join(m for m in {heavy!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == []


def test_tokens_per_unit_is_saved_loaded_and_validated(tmp_path):
    assert preset("t5-c4").tokens_per_unit == 128 * 512 and preset("vit-jft").tokens_per_unit == 197
    law = preset("t5-c4")
    law.uncertainty = None
    law.save(tmp_path / "law.json")
    assert load_law(tmp_path / "law.json").tokens_per_unit == 65536
    obj = json.loads((tmp_path / "law.json").read_text())
    obj["tokens_per_unit"] = -3
    (tmp_path / "bad.json").write_text(json.dumps(obj))
    with pytest.raises(
        SparsescaleError, match="tokens_per_unit: must be a number of tokens between"
    ):
        load_law(tmp_path / "bad.json")
    from sparsescale.laws.fit import fit_law

    S, N, D = np.meshgrid([0, 0.5, 0.75], [1e6, 2e6, 4e6], [1e8, 2e8], indexing="ij")
    y = preset("vit-jft").predict(S, N, D).ravel()
    assert (
        fit_law(
            Points(S.ravel(), N.ravel(), D.ravel(), y), FitOptions(units={"D": "tokens"})
        ).law.tokens_per_unit
        == 1.0
    )
    assert (
        fit_law(
            Points(S.ravel(), N.ravel(), D.ravel(), y), FitOptions(units={"D": "steps"})
        ).law.tokens_per_unit
        is None
    )
