import numpy as np
import pytest

from sparsescale.errors import SparsescaleError
from sparsescale.laws.fit import fit_law
from sparsescale.laws.law import Law
from sparsescale.laws.planning import equivalent_dense_factor
from sparsescale.laws.points import FitOptions, Points
from sparsescale.laws.uncertainty.bootstrap import bootstrap, group_by_size, holdout_largest_n

TRUTH = Law(
    "sparse", {"aS": 60.0, "bS": 0.9, "cS": 120.0, "bN": 0.35, "aD": 3e8, "bD": 0.6, "c": 1.8}
)


def _data(noise, seed=0):
    rng = np.random.default_rng(seed)
    S, N, D = np.meshgrid(
        [0, 0.5, 0.75, 0.875], np.geomspace(1e6, 1e8, 5), np.geomspace(1e8, 1e10, 3), indexing="ij"
    )
    S, N, D = S.ravel(), N.ravel(), D.ravel()
    return S, N, D, TRUTH.predict(S, N, D) * np.exp(noise * rng.standard_normal(S.size))


def test_bootstrap_intervals_cover_the_truth_and_shrink_with_noise():
    wide = bootstrap(
        Points(*_data(3e-3)),
        FitOptions(seed=0),
        n_boot=120,
        derived={"eq75": lambda law: float(equivalent_dense_factor(law, 0.75))},
    )
    narrow = bootstrap(Points(*_data(3e-4)), FitOptions(seed=0), n_boot=120)
    point = fit_law(Points(*_data(3e-3))).law
    for name in ("bN", "bS", "c"):
        lo, med, hi = wide.intervals[name]
        assert lo < point[name] < hi, name
        # one realisation: a 95% interval may just miss; widened by half it must not
        half = (hi - lo) / 2
        assert lo - half <= TRUTH[name] <= hi + half, name
        assert narrow.relative_width(name) < wide.relative_width(name)
    lo, _, hi = wide.intervals["eq75"]
    assert lo <= float(equivalent_dense_factor(TRUTH, 0.75)) <= hi
    assert wide.n_failed == 0 and wide.samples["bN"].shape == (120,)


def test_t5_bootstrap_determines_bN_but_not_the_data_term(t5_points, t5_fit):
    """What the docs state: on the T5 sweep (3 step counts) bN and bS are
    pinned down; aD, bD and c are not."""
    boot = bootstrap(Points(*t5_points), FitOptions(seed=0), n_boot=100, reference=t5_fit)
    assert boot.relative_width("bN") < 0.5
    assert boot.relative_width("bS") < 0.6
    for name in ("aD", "bD", "c"):
        assert boot.relative_width(name) > 1.0, name


def test_group_by_size_and_holdout():
    labels = group_by_size([1e6, 1.005e6, 2e6, 4e6, 3.99e6])
    assert labels.tolist() == [0, 0, 1, 2, 2]
    S, N, D, y = _data(1e-4)
    h = holdout_largest_n(Points(S, N, D, y))
    assert h["n_heldout"] == 12 and h["held_out_n_nonzero"] == pytest.approx(1e8)
    assert h["mask"].sum() == 12 and np.all(N[h["mask"]] == N.max())
    assert h["mean_abs_rel_error"] < 2e-3  # a correct law extrapolates well
    # a wrong law form extrapolates worse: a dense fit ignores S
    dense = holdout_largest_n(Points(None, N, D, y), FitOptions(form="dense"))
    assert dense["mean_abs_rel_error"] > 5 * h["mean_abs_rel_error"]


def test_holdout_needs_two_sizes():
    S, N, D, y = _data(1e-4)
    with pytest.raises(SparsescaleError, match="same N"):
        holdout_largest_n(Points(S, np.full_like(N, 1e7), D, y))
