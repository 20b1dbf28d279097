"""laws.uncertainty.calibration, edge by edge: a fold's log errors and sd by
hand, the residual floor, the rolling splits and their labels, every field of
a rolling holdout (against the fold's own fit and bootstrap, and the distance
in closed form), the model-error rate at a closed-form optimum on its grid,
coverage and to_dict word for word, and calibrate's fallback to two-group
folds. Small dense-form sweeps keep every fit well under a second."""

import math

import numpy as np
import pytest

from sparsescale.errors import SparsescaleError
from sparsescale.laws.fit import fit_law
from sparsescale.laws.law import Law
from sparsescale.laws.points import FitOptions, Points
from sparsescale.laws.uncertainty import calibration as cmod
from sparsescale.laws.uncertainty.bootstrap import bootstrap
from sparsescale.laws.uncertainty.calibration import (
    LEVELS,
    Calibration,
    HoldoutFold,
    calibrate,
    coverage,
    estimate_per_efold,
    residual_floor,
    rolling_holdouts,
    rolling_splits,
)
from sparsescale.laws.uncertainty.intervals import FitRange, ModelError, Uncertainty, z_score

TRUTH = Law("dense", {"A": 400.0, "alpha": 0.34, "B": 4e3, "beta": 0.28, "E": 1.7})
# fewer candidates and starts than the defaults: the dense form on these sweeps has one basin
DENSE = FitOptions(form="dense", n_candidates=256, n_starts=8)


def _fold(measured, predicted, coefficient_sd, distance, floor, axis="N", label="f"):
    m = np.asarray(measured, dtype=float)
    return HoldoutFold(
        axis,
        label,
        np.ones(m.size, bool),
        np.asarray(predicted, dtype=float),
        m,
        np.asarray(coefficient_sd, dtype=float),
        np.asarray(distance, dtype=float),
        floor,
    )


def test_fold_log_error_and_sd_by_hand():
    f = _fold([2.0, 3.0], [1.0, 3.0], [0.03, 0.04], [1.0, 2.0], 0.05)
    assert f.log_error.tolist() == pytest.approx([math.log(2.0), 0.0])
    # sqrt(coef_sd^2 + floor^2 + (q d)^2) at q = 0.1: sqrt(0.0009 + 0.0025 + 0.01),
    # sqrt(0.0016 + 0.0025 + 0.04) = 0.21
    assert f.sd(0.1).tolist() == pytest.approx([math.sqrt(0.0134), 0.21], rel=1e-12)
    assert f.sd(0.0).tolist() == pytest.approx([math.sqrt(0.0034), math.sqrt(0.0041)])


def test_residual_floor_is_the_rms_log_residual():
    N, D = np.array([1e6, 1e7, 1e8]), np.array([1e8, 1e9, 1e10])
    y = TRUTH.predict(0, N, D) * np.exp([0.01, -0.02, 0.02])
    # sqrt((1e-4 + 4e-4 + 4e-4) / 3) = sqrt(3e-4)
    assert residual_floor(TRUTH, 0, N, D, y) == pytest.approx(math.sqrt(3e-4), rel=1e-9)


def test_rolling_splits_groups_and_labels():
    N = np.array([1e6, 1e6, 2e6, 4e6, 4.04e6, 8e6])
    D = np.array([1e8, 2e8, 1e8, 4e8, 2e8, 8e8])
    got = [(a, lab, tr.tolist(), te.tolist()) for a, lab, tr, te in rolling_splits(N, D)]
    # N: groups {1e6}, {2e6}, {4e6, 4.04e6}, {8e6}; from the third on, predicted from the smaller
    # (the label quotes the largest training value and the test group's median, 3 digits)
    # D: groups {1e8}, {2e8}, {4e8}, {8e8}
    T, F = True, False
    assert got == [
        ("N", "N <= 2e+06 -> 4.02e+06", [T, T, T, F, F, F], [F, F, F, T, T, F]),
        ("N", "N <= 4.04e+06 -> 8e+06", [T, T, T, T, T, F], [F, F, F, F, F, T]),
        ("D", "D <= 2e+08 -> 4e+08", [T, T, T, F, T, F], [F, F, F, T, F, F]),
        ("D", "D <= 4e+08 -> 8e+08", [T, T, T, T, T, F], [F, F, F, F, F, T]),
    ]
    # from at least three groups: one fold per axis fewer
    assert [lab for _, lab, _, _ in rolling_splits(N, D, min_train_groups=3)] == [
        "N <= 4.04e+06 -> 8e+06",
        "D <= 4e+08 -> 8e+08",
    ]
    # rtol 5%: 1e8 / 1e6 and their doubles still apart, 4e6 and 4.04e6 together as before;
    # rtol 1.5 (each group spans x2.5): N {1e6, 2e6}, {4e6, 4.04e6, 8e6}: no third group
    assert [lab for _, lab, _, _ in rolling_splits(N, D, rtol=1.5)] == []


def _sweep(noise=2e-3, sizes=(1e6, 2e6, 4e6, 8e6, 1.6e7), lengths=(1e8, 1e9, 1e10)):
    N, D = np.meshgrid(np.asarray(sizes), np.asarray(lengths), indexing="ij")
    N, D = N.ravel(), D.ravel()
    rng = np.random.default_rng(0)
    return Points(None, N, D, TRUTH.predict(0, N, D) * np.exp(noise * rng.standard_normal(N.size)))


def test_rolling_holdouts_fields_against_each_folds_own_fit():
    pts = _sweep()
    S, N, D, y = pts.arrays
    opts = DENSE.replace(seed=2)
    folds = rolling_holdouts(pts, opts, n_boot=4)
    # 5 sizes x 3 lengths: from at least three groups, the N folds predict 8e6 (from 9 runs)
    # and 1.6e7 (from 12); D has only three groups, so no fold
    assert [f.label for f in folds] == ["N <= 4e+06 -> 8e+06", "N <= 8e+06 -> 1.6e+07"]
    for f, g in zip(folds, (3, 4)):
        train, test = N < 4e6 * 2 ** (g - 2) * 0.99, np.isclose(N, 1e6 * 2**g)
        assert f.axis == "N" and f.test.tolist() == test.tolist()
        part = pts.take(train)
        fit = fit_law(part, opts)
        assert f.predicted.tolist() == pytest.approx(fit.law.predict(0, N[test], D[test]).tolist())
        assert f.measured.tolist() == y[test].tolist()
        # one size step (x2) beyond the largest training size, D inside: log 2 e-folds
        assert f.distance.tolist() == pytest.approx([math.log(2)] * 3)
        r = np.log(y[train] / fit.law.predict(0, N[train], D[train]))
        assert f.floor == pytest.approx(math.sqrt(np.mean(r * r)), rel=1e-9)
        boot = bootstrap(part, opts, n_boot=4, reference=fit)
        draws = np.column_stack([boot.samples[k] for k in TRUTH.coefficients])
        unc = Uncertainty("dense", draws, FitRange.of(None, N[train], D[train]), ModelError(0, 0))
        sd = unc.coefficient_sd(fit.law, 0, N[test], D[test])
        assert f.coefficient_sd.tolist() == pytest.approx(sd.tolist(), rel=1e-9)
        assert f.coefficient_sd.min() > 0
    # a fold of exactly 5 + 2 training runs is fitted; 6 lengths at 1e6 plus one at 2e6,
    # then 4e6: the fold predicting 4e6 from {1e6, 2e6} trains on 7
    N7 = np.r_[np.full(6, 1e6), 2e6, np.full(3, 4e6)]
    D7 = np.r_[np.geomspace(1e8, 1e10, 6), 1e9, [1e8, 1e9, 1e10]]
    p7 = Points(None, N7, D7, TRUTH.predict(0, N7, D7) * np.exp(1e-3 * np.sin(np.arange(10))))
    folds7 = rolling_holdouts(p7, DENSE, n_boot=2, min_train_groups=2)
    assert [f.label for f in folds7 if f.axis == "N"] == ["N <= 2e+06 -> 4e+06"]


def test_estimate_per_efold_at_a_closed_form_optimum():
    # one point: v(q) = b + q^2 d^2, -2 log L = log v + e^2 / v is least at v = e^2,
    # q* = sqrt(e^2 - b) / d; b = 1e-6 (floor^2) and e^2 = b + (0.01 * 2)^2 put q* at 0.01.
    # The answer is the grid's rate (0, then 600 log-spaced from 1e-5 to 1) of least -2 log L
    e = math.sqrt(1e-6 + 4e-4)
    f = _fold([math.exp(e)], [1.0], [0.0], [2.0], 1e-3)
    grid = np.r_[0.0, np.geomspace(1e-5, 1.0, 600)]
    v = 1e-6 + grid**2 * 4.0
    expect = grid[np.argmin(np.log(v) + e**2 / v)]
    assert estimate_per_efold([f]) == expect and abs(math.log(expect / 0.01)) < 0.02
    # misses no larger than the floor: rate 0, the grid's first value
    assert estimate_per_efold([_fold([1.0005], [1.0], [0.0], [2.0], 1e-3)]) == 0.0
    # misses beyond the grid's end (q* = 2): its last value, 1
    big = _fold([math.exp(4.0)], [1.0], [0.0], [2.0], 1e-3)
    assert estimate_per_efold([big]) == 1.0
    # two folds pooled: q* solves the two points' likelihood jointly (a brute-force minimum)
    f2 = _fold([math.exp(0.05), math.exp(-0.01)], [1.0, 1.0], [0.01, 0.0], [3.0, 0.5], 2e-3)
    e2 = np.r_[e, 0.05, -0.01]
    b2 = np.r_[1e-6, 0.01**2 + 4e-6, 4e-6]
    d2 = np.r_[2.0, 3.0, 0.5] ** 2
    v2 = b2[None, :] + grid[:, None] ** 2 * d2[None, :]
    assert estimate_per_efold([f, f2]) == grid[np.argmin(np.sum(np.log(v2) + e2**2 / v2, 1))]
    with pytest.raises(SparsescaleError) as exc:
        estimate_per_efold([])
    assert str(exc.value) == (
        "calibration: no rolling holdout could be fitted (need at least 3 sizes or 3 training "
        "lengths)"
    )


def test_coverage_per_fold_rates_and_levels():
    a = _fold(np.exp([0.01, 0.05]), [1.0, 1.0], [0.0, 0.0], [1.0, 1.0], 0.02)
    b = _fold(np.exp([0.05]), [1.0], [0.0], [1.0], 0.02)
    # rates 0.03 for a, 0.0 for b: sd sqrt(4e-4 + 9e-4) = 0.036056 for a's points, 0.02 for b's;
    # at 80% (z = 1.2816) a's first point (0.01) is inside, a's second (0.05 > 0.0462) and b's
    # (0.05 > 0.0256) outside: 1 of 3
    got = coverage([a, b], [0.03, 0.0], levels=(0.8,))
    sd = np.array([math.sqrt(13e-4), math.sqrt(13e-4), 0.02])
    z = 1.2815515655446004
    assert got == {
        "0.8": {
            "covered": pytest.approx(1 / 3),
            "median_rel_half_width": pytest.approx(math.sinh(z * sd[0])),
            "n_points": 3,
        }
    }
    # the default levels: 80% and 95%; at 95% (z = 1.96) a's second point (0.05 <= 0.0707)
    # comes inside: 2 of 3
    both = coverage([a, b], [0.03, 0.0])
    assert LEVELS == (0.8, 0.95) and list(both) == ["0.8", "0.95"]
    assert both["0.95"]["covered"] == pytest.approx(2 / 3)
    # one rate for every fold: b's point too has sd 0.036 and is inside at 95%
    assert coverage([a, b], 0.03)["0.95"]["covered"] == 1.0


def test_calibration_to_dict_word_for_word():
    f = _fold([2.0, 4.0], [2.2, 3.0], [0.0, 0.0], [1.0, 3.0], 0.01, axis="D", label="lab")
    cal = Calibration(per_efold=0.02, folds=[f], coverage={"x": 1}, coverage_cv=None)
    # |2.2/2 - 1| = 0.1, |3/4 - 1| = 0.25
    assert cal.to_dict() == {
        "per_efold": 0.02,
        "min_train_groups": 3,
        "coverage": {"x": 1},
        "coverage_leave_one_fold_out": None,
        "folds": [
            {
                "axis": "D",
                "label": "lab",
                "n_points": 2,
                "mean_abs_rel_error": pytest.approx(0.175),
                "max_abs_rel_error": pytest.approx(0.25),
                "median_distance": 2.0,
            }
        ],
    }


def test_calibrate_scores_each_fold_with_the_others_rate():
    pts = _sweep(noise=4e-3, sizes=(1e6, 2e6, 4e6, 8e6, 1.6e7, 3.2e7))
    cal = calibrate(pts, DENSE, n_boot=3, levels=(0.9,))
    assert cal.min_train_groups == 3 and len(cal.folds) == 3
    assert cal.folds[0].label == "N <= 4e+06 -> 8e+06"
    assert cal.per_efold == estimate_per_efold(cal.folds)
    assert cal.coverage == coverage(cal.folds, cal.per_efold, (0.9,))
    rates = [estimate_per_efold(cal.folds[:i] + cal.folds[i + 1 :]) for i in range(3)]
    assert cal.coverage_cv == coverage(cal.folds, rates, (0.9,))
    # the folds' bootstraps were of n_boot = 3 resamples: the same folds again
    again = rolling_holdouts(pts, DENSE, n_boot=3)
    assert [f.coefficient_sd.tolist() for f in again] == [
        f.coefficient_sd.tolist() for f in cal.folds
    ]


def test_calibrate_falls_back_to_two_group_folds():
    # 3 sizes x 2 lengths: no fold from three groups; the one two-group fold (predict 4e6
    # from 1e6 and 2e6) trains on 4 runs, under 5 free + 2: nothing to calibrate on
    pts = _sweep(sizes=(1e6, 2e6, 4e6), lengths=(1e8, 1e10))
    with pytest.raises(SparsescaleError, match="^calibration: no rolling holdout"):
        calibrate(pts, DENSE, n_boot=2)
    # two lengths of two runs each (1% apart: one group): that fold trains on 8, and is
    # the calibration, which says it fell back to two groups; one fold, no leave-one-out
    pts = _sweep(sizes=(1e6, 2e6, 4e6), lengths=(1e8, 1.01e8, 1e10, 1.01e10))
    cal = calibrate(pts, DENSE, n_boot=2)
    assert [f.label for f in cal.folds] == ["N <= 2e+06 -> 4e+06"]
    assert cal.min_train_groups == 2 and cal.coverage_cv is None
    assert cal.to_dict()["min_train_groups"] == 2
    assert list(cal.coverage) == ["0.8", "0.95"]


def test_coefficient_spread_enters_squared():
    # one point, no floor: v(q) = sd_coef^2 + q^2 d^2 with sd_coef = 0.02, d = 2 and
    # e^2 = 4e-4 + (0.01 * 2)^2: q* = 0.01 (a cube of the spread, 8e-6, would give 0.0141)
    e = math.sqrt(8e-4)
    f = _fold([math.exp(e)], [1.0], [0.02], [2.0], 0.0)
    grid = np.r_[0.0, np.geomspace(1e-5, 1.0, 600)]
    v = 4e-4 + grid**2 * 4.0
    assert estimate_per_efold([f]) == grid[np.argmin(np.log(v) + e**2 / v)]
    assert abs(math.log(estimate_per_efold([f]) / 0.01)) < 0.02


def test_a_point_exactly_at_its_interval_edge_is_covered():
    # |log error| == z sd to the last bit: a measured loss found by stepping through the
    # floats near exp(z sd) (sd about 0.6, so that the log's last bit is reachable): inside,
    # the interval is closed
    f = _fold([1.0], [1.0], [0.0], [1.5], 0.6)
    edge = float(f.sd(0.01)[0]) * z_score(0.95)
    m0 = math.exp(edge)
    m = next(a for a in (m0 + k * np.spacing(m0) for k in range(-400, 400)) if np.log(a) == edge)
    f = _fold([m], [1.0], [0.0], [1.5], 0.6)
    assert abs(f.log_error[0]) == edge
    assert coverage([f], 0.01, levels=(0.95,))["0.95"]["covered"] == 1.0


def test_reprs_leave_out_the_folds():
    f = _fold([2.0], [2.2], [0.0], [1.0], 0.01, label="a-long-fold-label")
    cal = Calibration(per_efold=0.02, folds=[f], coverage={}, coverage_cv=None)
    assert "folds" not in repr(cal) and "a-long-fold-label" not in repr(cal)


def test_two_folds_are_enough_for_leave_one_out():
    cal = calibrate(_sweep(), DENSE, n_boot=2)
    assert len(cal.folds) == 2 and cal.coverage_cv is not None
    # each fold scored with the other's rate
    rates = [estimate_per_efold([cal.folds[1]]), estimate_per_efold([cal.folds[0]])]
    assert cal.coverage_cv == coverage(cal.folds, rates)


def test_a_skipped_fold_does_not_end_the_others():
    # from two groups on the 5 x 3 sweep: N's first fold (4e6 from 6 runs) is skipped, the
    # next two N folds and the D fold (1e10 from 10 runs) are made
    folds = rolling_holdouts(_sweep(), DENSE, n_boot=2, min_train_groups=2)
    assert [f.label for f in folds] == [
        "N <= 4e+06 -> 8e+06",
        "N <= 8e+06 -> 1.6e+07",
        "D <= 1e+09 -> 1e+10",
    ]


def test_a_hundred_resamples_per_fold_by_default(monkeypatch):
    # one two-group fold (see the fallback test); a spy records the resamples each fold's
    # bootstrap is asked for (and runs 2, to stay fast)
    asked = []

    def spy(points, options, n_boot, reference):
        asked.append(n_boot)
        return bootstrap(points, options, n_boot=2, reference=reference)

    monkeypatch.setattr(cmod, "bootstrap", spy)
    pts = _sweep(sizes=(1e6, 2e6, 4e6), lengths=(1e8, 1.01e8, 1e10, 1.01e10))
    rolling_holdouts(pts, DENSE, min_train_groups=2)
    calibrate(pts, DENSE)
    calibrate(pts, DENSE, n_boot=7)
    assert asked == [100, 100, 7]
