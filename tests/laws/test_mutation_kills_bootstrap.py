"""laws.uncertainty.bootstrap, edge by edge: the resampling against a by-hand
replay of its draws, the percentile bookkeeping on known columns, batches and
progress, the size grouping at its tolerance, the holdout's numbers against a
direct computation, and the messages word for word. Small dense-form sweeps
(12 runs, 5 coefficients) keep every fit well under a second."""

import numpy as np
import pytest

from sparsescale.errors import SparsescaleError
from sparsescale.laws.fit import FitResult, fit_law, fit_resamples
from sparsescale.laws.law import Law
from sparsescale.laws.points import FitOptions, Points
from sparsescale.laws.uncertainty import bootstrap as bmod
from sparsescale.laws.uncertainty.bootstrap import (
    BootstrapResult,
    bootstrap,
    group_by_size,
    holdout_largest_n,
)

TRUTH = Law("dense", {"A": 400.0, "alpha": 0.34, "B": 4e3, "beta": 0.28, "E": 1.7})
# fewer candidates and starts than the defaults: the dense form on these sweeps has one basin
DENSE = FitOptions(form="dense", n_candidates=256, n_starts=8)


def _points(noise=1e-3, seed=0, sizes=4, lengths=3):
    N, D = np.meshgrid(
        np.geomspace(1e6, 1e8, sizes), np.geomspace(1e8, 1e10, lengths), indexing="ij"
    )
    N, D = N.ravel(), D.ravel()
    rng = np.random.default_rng(seed)
    return Points(None, N, D, TRUTH.predict(0, N, D) * np.exp(noise * rng.standard_normal(N.size)))


def test_relative_width_and_to_dict():
    r = BootstrapResult(
        level=0.8,
        n_boot=5,
        intervals={"a": (1.0, -2.0, 3.0), "z": (-1.0, 0.0, 1.0)},
        n_failed=2,
    )
    # (3 - 1) / |-2| = 1; a zero median has no scale: inf
    assert r.relative_width("a") == 1.0 and r.relative_width("z") == float("inf")
    assert r.samples == {}
    assert r.to_dict() == {
        "level": 0.8,
        "n_boot": 5,
        "n_failed": 2,
        "intervals": {
            "a": {"low": 1.0, "median": -2.0, "high": 3.0},
            "z": {"low": -1.0, "median": 0.0, "high": 1.0},
        },
    }
    assert BootstrapResult(0.9, 2, {}).n_failed == 0
    # the raw samples (B values per name) stay out of the repr
    big = BootstrapResult(0.9, 2, {}, samples={"a": np.array([123456.0, 654321.0])})
    assert "samples" not in repr(big) and "123456" not in repr(big)


def test_bootstrap_refusals_word_for_word():
    pts = _points()
    for n_boot in (1, 0, -3):
        with pytest.raises(SparsescaleError) as exc:
            bootstrap(pts, DENSE, n_boot=n_boot)
        assert str(exc.value) == f"n_boot: need at least 2 resamples, got {n_boot}"
    for level in (0.0, 1.0, 1.5, -0.1):
        with pytest.raises(SparsescaleError) as exc:
            bootstrap(pts, DENSE, n_boot=2, level=level)
        assert str(exc.value) == f"bootstrap level must be in (0, 1), got {level}"
    with pytest.raises(SparsescaleError, match="^seed: must be an integer"):
        bootstrap(pts, DENSE.replace(seed=-1), n_boot=2)


def test_bootstrap_is_the_replay_of_its_own_draws():
    # every resample: n row indices drawn with replacement from default_rng(seed),
    # counted into multiplicities, refitted from the reference's optima and its
    # best 6 starting points; the samples are those refits, in draw order
    pts = _points()
    opts = DENSE.replace(seed=7)
    ref = fit_law(pts, opts)
    boot = bootstrap(pts, opts, n_boot=5, reference=ref)
    rng = np.random.default_rng(7)
    n = len(pts)
    counts = np.stack([np.bincount(rng.integers(0, n, size=n), minlength=n) for _ in range(5)])
    starts = [c for _, c in ref.local_optima] + ref.start_points[:6]
    coefs, _ = fit_resamples(pts, counts, starts, opts)
    for k in TRUTH.coefficients:
        np.testing.assert_allclose(boot.samples[k], [c[k] for c in coefs], rtol=1e-9)
    assert boot.n_boot == 5 and boot.level == 0.95 and boot.n_failed == 0
    # without a reference the same fit is made here: the same draws
    again = bootstrap(pts, opts, n_boot=5)
    np.testing.assert_allclose(again.samples["alpha"], boot.samples["alpha"], rtol=1e-9)
    # default options: the sparse form's coefficients (no dense options slipped in)
    assert set(bootstrap(_sparse_points(), n_boot=2).intervals) == set(
        ("aS", "bS", "cS", "bN", "aD", "bD", "c")
    )


def _sparse_points():
    law = Law(
        "sparse", {"aS": 60.0, "bS": 0.9, "cS": 120.0, "bN": 0.35, "aD": 3e8, "bD": 0.6, "c": 1.8}
    )
    S, N, D = np.meshgrid([0, 0.5, 0.75], np.geomspace(1e6, 1e8, 3), [1e8, 1e10], indexing="ij")
    S, N, D = S.ravel(), N.ravel(), D.ravel()
    return Points(S, N, D, law.predict(S, N, D))


def test_bootstrap_passes_the_default_starts(monkeypatch):
    seen = []

    def spy(points, counts, starts, options):
        seen.append(starts)
        return fit_resamples(points, counts, starts, options)

    monkeypatch.setattr(bmod, "fit_resamples", spy)
    pts = _points()
    ref = fit_law(pts, DENSE)
    assert len(ref.start_points) > 7
    bootstrap(pts, DENSE, n_boot=2, reference=ref)
    assert seen[0] == [c for _, c in ref.local_optima] + ref.start_points[:6]
    mine = [dict(TRUTH.coefficients)]
    bootstrap(pts, DENSE, n_boot=2, reference=ref, starts=mine)
    assert seen[1] == mine


def _fake_reference(**law_kw):
    law = Law("dense", dict(TRUTH.coefficients), **law_kw)
    return FitResult(law=law, objective=0.0, n_points=12, local_optima=[(0.0, law.coefficients)])


def _fake_fits(monkeypatch, objective=None):
    """fit_resamples replaced by one that returns the truth for every resample,
    with `objective(i)` (i counting over all resamples) as its objective."""
    count = iter(range(10_000))

    def fake(points, counts, starts, options):
        objs = [0.0 if objective is None else objective(next(count)) for _ in counts]
        return [dict(TRUTH.coefficients) for _ in counts], np.array(objs)

    monkeypatch.setattr(bmod, "fit_resamples", fake)


def test_percentile_intervals_over_finite_values_of_each_column(monkeypatch):
    _fake_fits(monkeypatch)
    k, w = iter(range(11)), iter(range(11))
    seen = []

    def law_seen(law):
        seen.append((law.form, law.units, law.mean_sparsity_fraction, law["alpha"]))
        return 0.0

    derived = {
        "k": lambda law: next(k),  # 0, 1, ..., 10
        "w": lambda law: np.inf if next(w) < 3 else 2.0,  # three wild draws, then 2.0
        "nan": lambda law: np.nan,
        "law": law_seen,
    }
    units = {"N": "weights", "D": "steps"}
    ref = _fake_reference(units=units, mean_sparsity_fraction=0.7)
    boot = bootstrap(_points(), DENSE, n_boot=11, level=0.8, derived=derived, reference=ref)
    # 0..10 at the 10th, 50th and 90th percentiles (linear): 1, 5, 9
    assert boot.intervals["k"] == pytest.approx((1.0, 5.0, 9.0), rel=1e-12)
    assert boot.intervals["w"] == (2.0, 2.0, 2.0)  # the inf draws drop out of this column only
    assert all(np.isnan(v) for v in boot.intervals["nan"])
    assert boot.intervals["alpha"] == (0.34, 0.34, 0.34)
    assert boot.samples["k"].tolist() == list(range(11))
    assert np.isinf(boot.samples["w"][:3]).all() and boot.samples["w"].shape == (11,)
    assert list(boot.intervals)[:5] == list(TRUTH.coefficients)
    assert list(boot.intervals)[5:] == ["k", "w", "nan", "law"]
    # every resample's law: the reference's form, units and schedule fraction
    assert seen == [("dense", units, 0.7, 0.34)] * 11
    assert all(type(x) is float for v in boot.intervals.values() for x in v)
    # at 95%: the 2.5th and 97.5th percentiles of 0..10, 0.25 and 9.75
    k = iter(range(11))
    boot = bootstrap(_points(), DENSE, n_boot=11, derived={"k": lambda law: next(k)}, reference=ref)
    assert boot.intervals["k"] == pytest.approx((0.25, 5.0, 9.75), rel=1e-12)


def test_two_hundred_resamples_by_default(monkeypatch):
    _fake_fits(monkeypatch)
    boot = bootstrap(_points(), DENSE, reference=_fake_reference())
    assert boot.n_boot == 200 and boot.samples["A"].shape == (200,) and boot.level == 0.95


def test_failed_resamples_are_counted_and_two_are_enough(monkeypatch):
    # resamples 0, 2 and 3 of 4 fail (objective inf or nan): one left, refused
    _fake_fits(monkeypatch, lambda i: 0.0 if i == 1 else (np.inf if i < 3 else np.nan))
    with pytest.raises(SparsescaleError) as exc:
        bootstrap(_points(), DENSE, n_boot=4, reference=_fake_reference())
    assert str(exc.value) == "bootstrap: fewer than 2 resamples could be fitted"
    # two of four fitted: enough, and the other two counted as failed
    _fake_fits(monkeypatch, lambda i: 0.0 if i in (1, 2) else np.inf)
    boot = bootstrap(_points(), DENSE, n_boot=4, reference=_fake_reference())
    assert boot.n_failed == 2 and boot.samples["A"].shape == (2,) and boot.n_boot == 4


@pytest.mark.parametrize(
    "batch, calls",
    [
        (1, [(1, 5), (2, 5), (3, 5), (4, 5), (5, 5)]),
        (0, [(1, 5), (2, 5), (3, 5), (4, 5), (5, 5)]),  # at least one per batch
        (2, [(2, 5), (4, 5), (5, 5)]),
        (3, [(3, 5), (5, 5)]),
        (None, [(5, 5)]),  # as large as the memory budget allows: all at once
        (10**9, [(5, 5)]),  # capped at that budget
    ],
)
def test_batches_and_progress(monkeypatch, batch, calls):
    sizes = []

    def fake(points, counts, starts, options):
        sizes.append(len(counts))
        return [dict(TRUTH.coefficients) for _ in counts], np.zeros(len(counts))

    monkeypatch.setattr(bmod, "fit_resamples", fake)
    monkeypatch.setattr(bmod, "resample_batch", lambda n, s: 4 if batch == 10**9 else 100)
    seen = []
    bootstrap(
        _points(),
        DENSE,
        n_boot=5,
        batch=batch,
        reference=_fake_reference(),
        progress=lambda i, n: seen.append((i, n)),
    )
    if batch == 10**9:
        assert sizes == [4, 1] and seen == [(4, 5), (5, 5)]
    else:
        assert seen == calls and sum(sizes) == 5


def test_batches_draw_the_same_resamples(monkeypatch):
    drawn = []

    def fake(points, counts, starts, options):
        drawn.append(np.array(counts))
        return [dict(TRUTH.coefficients) for _ in counts], np.zeros(len(counts))

    monkeypatch.setattr(bmod, "fit_resamples", fake)
    pts = _points()
    bootstrap(pts, DENSE.replace(seed=3), n_boot=5, batch=2, reference=_fake_reference())
    by_two = np.concatenate(drawn)
    drawn.clear()
    bootstrap(pts, DENSE.replace(seed=3), n_boot=5, reference=_fake_reference())
    np.testing.assert_array_equal(by_two, np.concatenate(drawn))
    # each row a multiplicity vector over the 12 runs summing to 12
    assert by_two.shape == (5, 12) and (by_two.sum(axis=1) == 12).all()


def test_group_by_size_anchors_each_group_at_its_smallest_size():
    # 1.02 is exactly 2% above 1.0: same group; 1.03 is not, and anchors its own
    # group, which takes 1.04 (within 2% of 1.03) and 1.0506 (exactly 1.03 * 1.02)
    n = [1.04, 1.0, 1.03, 1.02, 1.0506, 1.015]
    assert group_by_size(n).tolist() == [1, 0, 1, 0, 1, 0]
    # a chain of sizes 1.5% apart is not merged: each group spans 2% of its anchor
    chain = 1.015 ** np.arange(6)
    assert group_by_size(chain).tolist() == [0, 0, 1, 1, 2, 2]
    assert group_by_size(chain, rtol=0.05).tolist() == [0, 0, 0, 0, 1, 1]
    assert group_by_size([5.0]).tolist() == [0] and group_by_size([5.0]).dtype.kind == "i"
    assert group_by_size([3.0, 1.0, 2.0]).tolist() == [2, 0, 1]


def test_holdout_largest_n_against_a_direct_computation():
    pts = _points(noise=3e-3)
    S, N, D, y = pts.arrays
    # sizes within 2% are one size: the largest group takes 1e8 and 1.01e8
    N = N.copy()
    N[N == N.max()] *= np.array([1.0, 1.01, 1.0])
    pts = Points(S, N, D, y)
    h = holdout_largest_n(pts, DENSE)
    mask = N >= 1e8
    assert h["mask"].tolist() == mask.tolist()
    fit = fit_law(pts.take(~mask), DENSE)
    pred = fit.law.predict(0, N[mask], D[mask])
    rel = (pred - y[mask]) / y[mask]
    assert h["n_heldout"] == 3 and h["n_fit"] == 9
    assert h["held_out_n_nonzero"] == pytest.approx(1e8)  # the median of 1e8, 1.01e8, 1e8
    assert h["predicted"] == pytest.approx(pred.tolist(), rel=1e-12)
    assert h["measured"] == y[mask].tolist()
    assert h["mean_abs_rel_error"] == pytest.approx(np.mean(np.abs(rel)), rel=1e-9)
    assert h["max_abs_rel_error"] == pytest.approx(np.max(np.abs(rel)), rel=1e-9)
    assert h["mean_rel_error"] == pytest.approx(np.mean(rel), rel=1e-9)
    assert np.mean(rel) != pytest.approx(np.mean(np.abs(rel)))  # the signed mean differs
    assert h["law"].coefficients == pytest.approx(fit.law.coefficients, rel=1e-12)
    assert h["objective"] == pytest.approx(fit.objective, rel=1e-12)
    # 1.04e8 is 4% above 1e8: a size of its own, held out alone; under rtol 5%, one size
    N2 = N.copy()
    N2[N2 >= 1e8] = np.array([1e8, 1.04e8, 1.0e8])
    assert holdout_largest_n(Points(S, N2, D, y), DENSE)["n_heldout"] == 1
    assert holdout_largest_n(Points(S, N2, D, y), DENSE, rtol=0.05)["n_heldout"] == 3


def test_holdout_with_two_sizes_and_with_one():
    pts = _points(sizes=2, lengths=6)
    h = holdout_largest_n(pts, DENSE)  # two sizes suffice: fit on one, predict the other
    assert h["n_heldout"] == 6 and h["n_fit"] == 6
    S, N, D, y = pts.arrays
    with pytest.raises(SparsescaleError) as exc:
        holdout_largest_n(Points(S, np.full_like(N, 1e7), D, y), DENSE)
    assert str(exc.value) == "holdout: all runs have the same N; need at least two sizes"
    assert exc.value.param == "holdout"
