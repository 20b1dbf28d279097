"""laws.uncertainty.assess, edge by edge: one real sequence on a small dense
sweep checked piece by piece against the pieces run alone (fit, holdout,
bootstrap, calibration, the floor and range of the model error), the options
each step sees, the bounds of n_boot, the warnings and sources word for word,
and to_dict. Spies wrap the real steps where an argument is all there is to see."""

import numpy as np
import pytest

from sparsescale.errors import SparsescaleError
from sparsescale.laws.fit import fit_law
from sparsescale.laws.law import Law
from sparsescale.laws.points import FitOptions, Points
from sparsescale.laws.uncertainty import assess as amod
from sparsescale.laws.uncertainty.assess import MAX_BOOTSTRAP, assess
from sparsescale.laws.uncertainty.bootstrap import BootstrapResult, bootstrap, holdout_largest_n
from sparsescale.laws.uncertainty.calibration import calibrate, residual_floor
from sparsescale.laws.uncertainty.intervals import FitRange

TRUTH = Law("dense", {"A": 400.0, "alpha": 0.34, "B": 4e3, "beta": 0.28, "E": 1.7})
# fewer candidates and starts than the defaults: the dense form on these sweeps has one basin
DENSE = FitOptions(form="dense", n_candidates=256, n_starts=8)
NAMES = ("A", "alpha", "B", "beta", "E")


def _sweep(sizes=(1e6, 2e6, 4e6, 8e6, 1.6e7), lengths=(1e8, 1e9, 1e10), noise=3e-3):
    N, D = np.meshgrid(np.asarray(sizes), np.asarray(lengths), indexing="ij")
    N, D = N.ravel(), D.ravel()
    rng = np.random.default_rng(0)
    return Points(None, N, D, TRUTH.predict(0, N, D) * np.exp(noise * rng.standard_normal(N.size)))


def test_the_whole_sequence_against_its_pieces():
    pts = _sweep()
    S, N, D, y = pts.arrays
    units = {"N": "weights", "D": "tokens"}
    opts = DENSE.replace(seed=4, units=units, tokens_per_unit=3.0)
    a = assess(pts, opts, n_boot=4, calibration_boot=3, derived={"E2": lambda law: 2 * law["E"]})
    fit = fit_law(pts, opts)
    assert a.fit.objective == fit.objective and a.law is a.fit.law
    assert a.law.units == units and a.law.tokens_per_unit == 3.0
    # the checks refit without the units: their laws carry the defaults
    check = opts.replace(units=None, tokens_per_unit=None)
    h = holdout_largest_n(pts, check)
    assert a.holdout["law"].units == {"N": "non-zero parameters", "D": "data (as given)"}
    assert a.holdout["law"].tokens_per_unit is None
    assert a.holdout["predicted"] == h["predicted"] and a.holdout["n_heldout"] == 3
    b = bootstrap(pts, check, n_boot=4, derived={"E2": lambda law: 2 * law["E"]}, reference=fit)
    assert a.bootstrap.intervals == b.intervals and "E2" in a.bootstrap.intervals
    cal = calibrate(pts, check, n_boot=3)
    assert a.calibration.per_efold == cal.per_efold and len(a.calibration.folds) == 2
    assert a.calibration.to_dict() == cal.to_dict()
    unc = a.law.uncertainty
    # draws in the form's coefficient order, one row per resample
    assert unc.draws.tolist() == np.column_stack([b.samples[k] for k in NAMES]).tolist()
    assert unc.form == "dense" and unc.fit_range == FitRange.of(S, N, D)
    assert unc.model_error.floor == residual_floor(fit.law, S, N, D, y)
    assert unc.model_error.per_efold == cal.per_efold
    assert unc.calibration == cal.to_dict()
    assert unc.source == "bootstrap of 4 resamples; model error calibrated on 2 rolling holdouts"
    assert a.warnings == []
    out = a.to_dict()
    assert out["form"] == "dense" and out["coefficients"] == fit.law.coefficients
    assert out["holdout"]["coefficients"] == a.holdout["law"].coefficients
    assert set(out["holdout"]) == set(h) - {"mask", "law"} | {"coefficients"}
    assert out["intervals"] == a.bootstrap.to_dict()
    assert out["calibration"] == a.calibration.to_dict()
    assert "warnings" not in out
    # the assessment's own holdout dict keeps the mask and the law
    assert "mask" in a.holdout and "law" in a.holdout


def test_n_boot_bounds_and_the_early_return(monkeypatch):
    pts = _sweep(sizes=(1e6, 2e6), lengths=np.geomspace(1e8, 1e10, 6))
    for bad in (-1, MAX_BOOTSTRAP + 1):
        with pytest.raises(SparsescaleError) as exc:
            assess(pts, DENSE, n_boot=bad)
        assert str(exc.value) == (
            f"n_boot: must be in 0..10000 (intervals settle by a few thousand resamples), got {bad}"
        )
    assert MAX_BOOTSTRAP == 10_000
    # n_boot 0: a fit and its holdout, nothing else
    a = assess(pts, DENSE)
    assert a.bootstrap is None and a.calibration is None and a.law.uncertainty is None
    assert a.holdout["n_heldout"] == 6 and a.warnings == []
    assert set(a.to_dict()) == {"form", "coefficients", "objective", "n_points", "diagnostics",
                                "holdout"}  # fmt: skip
    # no holdout asked: none made, and no warning about it
    a = assess(pts, DENSE, holdout=False)
    assert a.holdout is None and a.warnings == [] and "holdout" not in a.to_dict()
    # 10000 is allowed (the bootstrap and calibration stubbed: only the bound is tested)
    seen = {}

    def fake_boot(points, options, n_boot, derived, reference, progress):
        seen["boot"] = n_boot
        samples = {k: np.full(2, v) for k, v in reference.law.coefficients.items()}
        return BootstrapResult(0.95, n_boot, {}, samples)

    def fake_cal(points, options, n_boot):
        seen["cal"] = n_boot
        raise SparsescaleError("no folds")

    monkeypatch.setattr(amod, "bootstrap", fake_boot)
    monkeypatch.setattr(amod, "calibrate", fake_cal)
    a = assess(pts, DENSE, n_boot=MAX_BOOTSTRAP, holdout=False)
    # the calibration's folds bootstrap at most calibration_boot (100 by default) resamples
    assert seen == {"boot": 10_000, "cal": 100} and a.bootstrap.n_boot == 10_000
    assert a.warnings == ["intervals not calibrated for extrapolation: no folds"]
    assess(pts, DENSE, n_boot=7, holdout=False, calibration_boot=9)
    assert seen == {"boot": 7, "cal": 7}
    assess(pts, DENSE, n_boot=7, holdout=False, calibration_boot=5)
    assert seen == {"boot": 7, "cal": 5}


def test_what_each_step_is_given(monkeypatch):
    pts = _sweep(sizes=(1e6, 2e6), lengths=np.geomspace(1e8, 1e10, 6))
    given = {}
    real_boot = amod.bootstrap

    def spy(points, options, **kw):
        given.update(kw, options=options, points=points)
        return real_boot(points, options, **kw)

    monkeypatch.setattr(amod, "bootstrap", spy)
    ticks = []
    derived = {"one": lambda law: 1.0}
    opts = DENSE.replace(units={"N": "w", "D": "tokens"}, tokens_per_unit=2.0, seed=5)
    a = assess(pts, opts, n_boot=3, derived=derived, progress=lambda i, n: ticks.append((i, n)))
    assert given["options"] == opts.replace(units=None, tokens_per_unit=None)
    assert given["points"] is pts and given["n_boot"] == 3 and given["derived"] is derived
    assert given["reference"] is a.fit and ticks[-1] == (3, 3)
    assert a.bootstrap.intervals["one"] == (1.0, 1.0, 1.0)


def test_warnings_and_sources_word_for_word():
    # one size: no holdout (its own reason, without the "holdout:" prefix), and rolling
    # holdouts along D alone: 3 lengths make no three-group fold, the two-group one trains on 4
    pts = _sweep(sizes=(1e6,), lengths=(1e8, 1e9, 1e10, 1e11))
    pts = Points(None, np.r_[pts.n_nonzero, pts.n_nonzero], np.r_[pts.data, pts.data * 1.005],
                 np.r_[pts.loss, pts.loss * 1.001])  # fmt: skip
    a = assess(pts, DENSE.replace(form="dense"), n_boot=2)
    assert a.holdout is None and a.warnings[0] == (
        "largest-N holdout skipped: all runs have the same N; need at least two sizes"
    )
    assert a.warnings[1:] == [
        "intervals not calibrated for extrapolation: calibration: no rolling holdout could be "
        "fitted (need at least 3 sizes or 3 training lengths)"
    ]
    unc = a.law.uncertainty
    assert unc.source == "bootstrap of 2 resamples; no rolling-holdout calibration"
    assert unc.model_error.per_efold == 0.0 and unc.calibration == {}
    assert a.to_dict()["warnings"] == a.warnings and a.warnings is not a.to_dict()["warnings"]
    assert "calibration" not in a.to_dict()
    # calibrated=False: not tried, no warning, the same source
    b = assess(pts, DENSE, n_boot=2, holdout=False, calibrated=False)
    assert b.warnings == [] and b.calibration is None
    assert b.law.uncertainty.source == "bootstrap of 2 resamples; no rolling-holdout calibration"


def test_a_holdout_error_of_another_kind_is_quoted_whole():
    # two sizes, the smaller with 3 runs: the holdout's fit has 3 points for 5 coefficients
    N = np.r_[np.full(3, 1e6), np.full(6, 2e6)]
    D = np.r_[np.geomspace(1e8, 1e10, 3), np.geomspace(1e8, 1e10, 6)]
    pts = Points(None, N, D, TRUTH.predict(0, N, D))
    a = assess(pts, DENSE)
    assert a.warnings == [
        "largest-N holdout skipped: 3 data points are fewer than the 5 free coefficients of the "
        "dense form"
    ]
    # defaults: no options (the sparse form) on a sparse sweep fits the sparse form
    S = np.r_[np.zeros(9), np.full(9, 0.5)]
    sp = Points(S, np.r_[N, N], np.r_[D, D], np.r_[pts.loss, pts.loss * 1.2])
    assert assess(sp, holdout=False).law.form == "sparse"
