"""Prediction intervals: coverage counted by hand, shrinking with noise, presets, old law files."""

import json

import numpy as np
import pytest

from sparsescale.errors import SparsescaleError
from sparsescale.laws import load_law, preset
from sparsescale.laws.law import Law
from sparsescale.laws.planning import law_compute, optimal_intervals, optimal_sparsity
from sparsescale.laws.points import FitOptions, Points
from sparsescale.laws.uncertainty.assess import assess
from sparsescale.laws.uncertainty.calibration import (
    HoldoutFold,
    calibrate,
    coverage,
    estimate_per_efold,
    rolling_splits,
)
from sparsescale.laws.uncertainty.intervals import FitRange, ModelError, Uncertainty, z_score

TRUTH = Law(
    "sparse", {"aS": 60.0, "bS": 0.9, "cS": 120.0, "bN": 0.35, "aD": 3e8, "bD": 0.6, "c": 1.8}
)


def _data(noise, seed=0):
    rng = np.random.default_rng(seed)
    S, N, D = np.meshgrid(
        [0, 0.5, 0.75, 0.875], np.geomspace(1e6, 1e8, 5), np.geomspace(1e8, 1e10, 4), indexing="ij"
    )
    S, N, D = S.ravel(), N.ravel(), D.ravel()
    return S, N, D, TRUTH.predict(S, N, D) * np.exp(noise * rng.standard_normal(S.size))


def test_coverage_matches_a_direct_count():
    """Two hand-made folds: the code's coverage equals counting |log error| <= z sd point by
    point."""
    pred = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    meas = pred * np.exp([0.001, -0.02, 0.05, 0.0, -0.011])
    fold = HoldoutFold(
        "N",
        "a",
        np.ones(5, bool),
        pred,
        meas,
        coefficient_sd=np.full(5, 0.003),
        distance=np.array([0.0, 1.0, 1.0, 2.0, 0.5]),
        floor=0.004,
    )
    fold2 = HoldoutFold(
        "D",
        "b",
        np.ones(2, bool),
        np.array([2.0, 2.0]),
        np.array([2.02, 1.9]),
        coefficient_sd=np.zeros(2),
        distance=np.array([0.7, 0.7]),
        floor=0.01,
    )
    rate = 0.01
    got = coverage([fold, fold2], rate, levels=(0.8, 0.95))
    e = np.log(np.r_[meas / pred, [2.02 / 2.0, 1.9 / 2.0]])
    sd = np.sqrt(
        np.r_[np.full(5, 0.003**2 + 0.004**2), np.full(2, 0.01**2)]
        + rate**2 * np.r_[[0.0, 1.0, 1.0, 2.0, 0.5], [0.7, 0.7]] ** 2
    )
    for level, z in ((0.8, 1.2815515655446004), (0.95, 1.959963984540054)):
        count = sum(abs(ei) <= z * si for ei, si in zip(e, sd))
        assert got[f"{level:g}"]["covered"] == count / 7
        assert got[f"{level:g}"]["n_points"] == 7
        assert got[f"{level:g}"]["median_rel_half_width"] == pytest.approx(
            np.median((np.exp(z * sd) - np.exp(-z * sd)) / 2)
        )
    # the maximum-likelihood rate: larger misses further out need a larger rate
    wider = HoldoutFold(
        "N",
        "c",
        np.ones(5, bool),
        pred,
        pred * np.exp([0.0, 0.04, -0.04, 0.08, 0.02]),
        np.zeros(5),
        np.array([0.0, 1.0, 1.0, 2.0, 0.5]),
        0.004,
    )
    assert estimate_per_efold([wider]) > estimate_per_efold([fold]) > 0


def test_rolling_splits_predict_the_next_group_from_at_least_three():
    N = np.repeat([1e6, 2e6, 4e6, 8e6, 1.6e7], 2)
    D = np.tile([1e8, 2e8], 5)
    splits = rolling_splits(N, D, min_train_groups=3)
    assert [(a, int(tr.sum()), int(te.sum())) for a, _, tr, te in splits] == [
        ("N", 6, 2),
        ("N", 8, 2),
    ]
    for _, _, tr, te in splits:
        assert N[tr].max() < N[te].min()


def test_intervals_shrink_as_noise_shrinks_and_cover_the_truth():
    widths = []
    for noise in (1e-2, 3e-3):
        a = assess(Points(*_data(noise)), FitOptions(seed=0), n_boot=40)
        unc = a.law.uncertainty
        assert unc is not None and a.calibration is not None and len(a.calibration.folds) >= 3
        # a prediction one doubling of N beyond the data
        S, N, D = np.array([0.5, 0.875]), np.array([2e8, 2e8]), np.array([1e10, 1e10])
        lo, hi = unc.loss_interval(a.law, S, N, D, 0.95)
        truth = TRUTH.predict(S, N, D)
        assert np.all(lo < truth) and np.all(truth < hi)
        widths.append(np.median((hi - lo) / (2 * a.law.predict(S, N, D))))
        assert a.calibration.coverage["0.95"]["covered"] >= 0.8
    assert widths[1] < 0.6 * widths[0]


def test_interval_grows_with_extrapolation_distance():
    unc = Uncertainty(
        "sparse",
        np.tile(list(TRUTH.coefficients.values()), (3, 1)),
        FitRange((1e6, 1e8), (1e8, 1e10), 0.875),
        ModelError(0.002, 0.01),
    )
    law = TRUTH
    lo, hi = unc.loss_interval(law, 0.5, np.array([1e7, 1e9, 1e10]), 1e9, 0.95)
    rel = (hi - lo) / (2 * law.predict(0.5, np.array([1e7, 1e9, 1e10]), 1e9))
    assert rel[0] == pytest.approx(
        np.sinh(z_score(0.95) * 0.002), rel=1e-9
    )  # inside the data: the floor only
    d = np.log(1e9 / 1e8)
    assert rel[1] == pytest.approx(np.sinh(z_score(0.95) * np.hypot(0.002, 0.01 * d)), rel=1e-9)
    assert rel[2] > rel[1]
    assert unc.fit_range.distance(0.9375, 1e7, 1e9) == pytest.approx(np.log(0.125 / 0.0625))
    # no points in, no points out (a holdout that selects no run), not a numpy unpacking error
    lo, hi = unc.loss_interval(law, np.array([]), np.array([]), np.array([]))
    assert lo.shape == hi.shape == (0,)


def test_presets_carry_intervals_from_the_papers_data():
    for name in ("t5-c4", "vit-jft"):
        law = preset(name)
        unc = law.uncertainty
        assert (
            unc is not None
            and unc.draws.shape[0] >= 100
            and "make_preset_uncertainty" in unc.source
        )
        cov = unc.calibration["coverage"]["0.95"]
        assert cov["covered"] >= 0.9
        lo, hi = unc.loss_interval(law, 0.75, 2e8, 5e5 if name == "t5-c4" else 2e9, 0.95)
        assert lo < law.predict(0.75, 2e8, 5e5 if name == "t5-c4" else 2e9) < hi
    law = preset("t5-c4")
    from sparsescale.laws.planning import equivalent_dense_factor

    lo, hi = law.uncertainty.quantity_interval(
        law, lambda lw: float(equivalent_dense_factor(lw, 0.75)), 0.95
    )
    assert lo <= float(equivalent_dense_factor(law, 0.75)) <= hi and hi / lo < 1.5
    point = optimal_sparsity(law, 1e8, law_compute(law, 1e20))
    ivs = optimal_intervals(law, point, 0.95)
    for key in ("sparsity", "data", "loss", "dense_loss", "equivalent_dense_size"):
        lo, hi = ivs[key]
        assert lo <= getattr(point, key) <= hi and lo < hi, key


def test_law_file_round_trip_keeps_uncertainty_and_old_files_load_bare(tmp_path):
    law = preset("vit-jft")
    law.save(tmp_path / "law.json")
    back = load_law(tmp_path / "law.json")
    assert np.array_equal(back.uncertainty.draws, law.uncertainty.draws)
    assert back.uncertainty.model_error == law.uncertainty.model_error
    old = {
        "form": "sparse",
        "name": "old",
        "coefficients": dict(TRUTH.coefficients),
        "units": {"D": "tokens"},
    }
    (tmp_path / "old.json").write_text(json.dumps(old))
    bare = load_law(tmp_path / "old.json")
    assert bare.uncertainty is None and bare.tokens_per_unit is None
    assert optimal_intervals(bare, optimal_sparsity(bare, 1e7, 1e17), 0.95) is None
    broken = dict(old, uncertainty={"draws": [[1, 2]], "coefficient_names": ["aS"]})
    (tmp_path / "broken.json").write_text(json.dumps(broken))
    with pytest.raises(SparsescaleError, match="broken.json: uncertainty"):
        load_law(tmp_path / "broken.json")


def test_calibration_on_the_papers_data_meets_its_targets(t5_points, vit_points):
    t5 = calibrate(Points(*t5_points), FitOptions(seed=0, space="log", delta=1e-3), n_boot=40)
    largest = (
        t5.folds[-1] if t5.folds[-1].axis == "N" else [f for f in t5.folds if f.axis == "N"][-1]
    )
    assert largest.measured.size == 12
    assert coverage([largest], t5.per_efold)["0.95"]["median_rel_half_width"] <= 0.03
    vit = calibrate(Points(*vit_points), FitOptions(seed=0, space="linear", delta=1e-2), n_boot=40)
    for cal in (t5, vit):
        assert cal.coverage["0.95"]["covered"] >= 0.9


def test_assess_runs_the_whole_sequence_and_turns_impossible_checks_into_warnings():
    S, N, D, y = _data(3e-3)
    a = assess(Points(None, N, D, y), FitOptions(form="dense"), n_boot=20, holdout=True)
    assert a.law.form == "dense" and a.holdout["n_heldout"] == 16 and a.bootstrap.n_boot == 20
    assert a.law.uncertainty.draws.shape == (20, 5)
    out = a.to_dict()
    assert {"coefficients", "holdout", "intervals", "calibration"} <= set(out)
    one = (N == N.min()) & (D < 5e8)  # one size, two lengths: no rolling holdout is possible
    b = assess(Points(S[one], N[one], D[one], y[one]), n_boot=10, holdout=True)
    assert b.holdout is None and any("same N" in w for w in b.warnings)
    assert b.calibration is None and any("not calibrated" in w for w in b.warnings)
    assert b.law.uncertainty.model_error.per_efold == 0.0  # bootstrap only, and it says so
    assert "no rolling-holdout calibration" in b.law.uncertainty.source
    with pytest.raises(SparsescaleError, match="n_boot"):
        assess(Points(S, N, D, y), n_boot=-1)
