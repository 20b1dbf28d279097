"""Intervals calibrated for extrapolation: rolling holdouts and the model-error term.

A bootstrap treats the fitted form as true, so its intervals describe noise
inside the data's range, not the error of reaching beyond it. Rolling holdouts
measure that error directly: fit on the smaller sizes (or the shorter runs),
predict the next size (or length), and record how far each prediction missed,
the bootstrap spread of that fold's fit at each held-out point, and how far the
point lies outside the fold's data (`FitRange.distance`).

Why this model error and this estimator. The misses grow with the distance of
the extrapolation (the T5 sweep misses its largest size, two e-folds of N
beyond the data, by up to 1.8%), so the model error is
sigma(d) = sqrt(floor^2 + (per_efold d)^2): the fit's own residual scale
inside the data, plus a term linear in the distance. One rate, per_efold, is
all a handful of folds can estimate; it is chosen by maximum likelihood of the
held-out log errors under N(0, sd_coef^2 + sigma(d)^2) on a fine grid (robust,
no starting point). Coverage is reported twice: on the folds that estimated
per_efold (in-sample) and leave-one-fold-out (each fold scored with the rate
estimated from the other folds), which is the honest figure.

Which folds. Along N the law has three free parameters (an amplitude, the
exponent bN and the offset c), along D three as well (aD, bD, c); a fold
trained on two sizes fits them to two values and extrapolates a curve the data
do not constrain. On the paper's T5 sweep that fold misses by 3.5% on average
while its bootstrap spread is 0.9%: it measures an under-determined fit, not
the law's extrapolation error, and one such fold would set the rate for every
other. So folds train on at least three groups; only when no such fold exists
(a sweep with 3 sizes and 2 lengths) do two-group folds stand in, and the
calibration says so (`min_train_groups`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sparsescale.errors import SparsescaleError
from sparsescale.laws.fit import fit_law, resolve_form
from sparsescale.laws.law import Law
from sparsescale.laws.points import FitOptions, Points
from sparsescale.laws.uncertainty.bootstrap import bootstrap, group_by_size
from sparsescale.laws.uncertainty.intervals import FitRange, ModelError, Uncertainty, z_score

LEVELS = (0.8, 0.95)
_RATE_GRID = np.concatenate([[0.0], np.geomspace(1e-5, 1.0, 600)])


# A fold keeps what the model-error estimate needs per held-out point: its
# log error, the spread of the fold's own bootstrap there (what coefficient
# uncertainty alone would allow), and its extrapolation distance.
@dataclass
class HoldoutFold:
    """One rolling holdout: fitted on `train`, predicting `test`."""

    axis: str  # "N" (next size) or "D" (next training length)
    label: str
    test: np.ndarray  # bool mask of the predicted points
    predicted: np.ndarray
    measured: np.ndarray
    coefficient_sd: np.ndarray  # bootstrap spread of the log prediction per point
    distance: np.ndarray  # e-folds beyond the fold's fitted range
    floor: float  # the fold fit's residual scale (log units)

    @property
    def log_error(self) -> np.ndarray:
        return np.log(self.measured / self.predicted)

    def sd(self, per_efold: float) -> np.ndarray:
        model = ModelError(self.floor, per_efold).sigma(self.distance)
        return np.sqrt(self.coefficient_sd**2 + model**2)


# The floor of the model error: the root-mean-square log residual of the fit
# on its own points, i.e. the scatter the law leaves unexplained inside its data.
def residual_floor(law: Law, sparsity, n_nonzero, data, loss) -> float:
    """Root-mean-square log residual of a law on its own points."""
    r = np.log(np.asarray(loss, dtype=float) / law.predict(sparsity, n_nonzero, data))
    return float(np.sqrt(np.mean(r * r)))


# Rolling holdouts along both axes: the next size from the smaller ones (what
# a user planning a larger model does) and the next training length from the
# shorter ones (what a user planning a longer run does).
def rolling_splits(n_nonzero, data, rtol: float = 0.02, min_train_groups: int = 2):
    """(axis, label, train mask, test mask) for every rolling holdout: sizes
    (or training lengths) grouped within rtol, each group from the third on
    predicted from all smaller groups."""
    out = []
    for axis, values in (
        ("N", np.asarray(n_nonzero, dtype=float)),
        ("D", np.asarray(data, dtype=float)),
    ):
        labels = group_by_size(values, rtol)
        for g in range(min_train_groups, int(labels.max()) + 1):
            train, test = labels < g, labels == g
            label = f"{axis} <= {values[train].max():.3g} -> {np.median(values[test]):.3g}"
            out.append((axis, label, train, test))
    return out


def rolling_holdouts(
    points: Points,
    options: FitOptions | None = None,
    n_boot: int = 100,
    rtol: float = 0.02,
    min_train_groups: int = 3,
) -> list[HoldoutFold]:
    """Fit, bootstrap and predict every rolling holdout (see `rolling_splits`).
    Folds whose training part has too few points for the form are skipped."""
    options = options or FitOptions()
    S, N, D, y = points.arrays
    spec = resolve_form(options.form)
    n_free = len(spec.free)
    folds = []
    for axis, label, train, test in rolling_splits(N, D, rtol, min_train_groups):
        # a fold with barely more points than free coefficients fits them
        # exactly and its bootstrap collapses: it would say nothing about error
        if train.sum() < n_free + 2:
            continue
        part = points.take(train)
        fit = fit_law(part, options)
        boot = bootstrap(part, options, n_boot=n_boot, reference=fit)
        draws = np.column_stack([boot.samples[k] for k in spec.coefficients])
        fit_range = FitRange.of(S[train], N[train], D[train])
        # model error 0: the fold's coefficient spread alone, since the model error
        # is the very quantity these folds are about to estimate
        unc = Uncertainty(fit.law.form, draws, fit_range, ModelError(0.0, 0.0))
        folds.append(
            HoldoutFold(
                axis=axis,
                label=label,
                test=test,
                predicted=np.asarray(fit.law.predict(S[test], N[test], D[test]), dtype=float),
                measured=y[test],
                coefficient_sd=unc.coefficient_sd(fit.law, S[test], N[test], D[test]),
                distance=fit_range.distance(S[test], N[test], D[test]),
                floor=residual_floor(fit.law, S[train], N[train], D[train], y[train]),
            )
        )
    return folds


# The likelihood of the held-out log errors e_i under the model error rate q:
# e_i ~ N(0, v_i(q)), v_i(q) = sd_coef_i^2 + floor^2 + q^2 d_i^2, so
#     -2 log L(q) = sum_i log v_i(q) + e_i^2 / v_i(q) + const.
# One parameter on a log-spaced grid from 1e-5 to 1 (and 0): robust to the
# flat or multi-modal likelihoods a few folds give, and no starting point.
def estimate_per_efold(folds: list[HoldoutFold]) -> float:
    """Maximum-likelihood growth rate of the model error, on a grid."""
    if not folds:
        raise SparsescaleError(
            "calibration: no rolling holdout could be fitted (need at least 3 sizes or 3 training "
            "lengths)"
        )
    e = np.concatenate([f.log_error for f in folds])
    base = np.concatenate([f.coefficient_sd**2 + f.floor**2 for f in folds])
    d2 = np.concatenate([f.distance**2 for f in folds])
    # v is (rates, points): every candidate rate scored on every point at once
    v = np.maximum(base[None, :] + _RATE_GRID[:, None] ** 2 * d2[None, :], 1e-300)
    nll = np.sum(np.log(v) + e[None, :] ** 2 / v, axis=1)
    return float(_RATE_GRID[int(np.argmin(nll))])


# Coverage: the fraction of held-out points whose measured loss lies inside
# the interval the fold's law predicted for it. A calibrated 95% interval
# covers about 95%; the half-width sinh(z sd) is the interval's relative
# half-width, (e^{z sd} - e^{-z sd}) / 2, the number a user reads as "+- x%".
def coverage(
    folds: list[HoldoutFold], per_efold: float | list[float], levels=LEVELS
) -> dict[str, dict[str, float]]:
    """Per level: fraction of held-out points inside their interval, and the
    median relative half-width (high - low) / (2 * predicted).
    per_efold: one rate, or one per fold (leave-one-fold-out)."""
    rates = per_efold if isinstance(per_efold, list) else [per_efold] * len(folds)
    e = np.concatenate([f.log_error for f in folds])
    sd = np.concatenate([f.sd(r) for f, r in zip(folds, rates)])
    out = {}
    for level in levels:
        z = z_score(level)
        out[f"{level:g}"] = {
            "covered": float(np.mean(np.abs(e) <= z * sd)),
            "median_rel_half_width": float(np.median(np.sinh(z * sd))),  # (e^zs - e^-zs) / 2
            "n_points": int(e.size),
        }
    return out


@dataclass
class Calibration:
    per_efold: float
    folds: list[HoldoutFold] = field(repr=False)
    coverage: dict[str, Any]  # in-sample: the folds that estimated per_efold
    coverage_cv: dict[str, Any] | None  # leave-one-fold-out (None with a single fold)
    min_train_groups: int = 3

    def to_dict(self) -> dict[str, Any]:
        return {
            "per_efold": self.per_efold,
            "min_train_groups": self.min_train_groups,
            "coverage": self.coverage,
            "coverage_leave_one_fold_out": self.coverage_cv,
            "folds": [
                {
                    "axis": f.axis,
                    "label": f.label,
                    "n_points": int(f.test.sum()),
                    "mean_abs_rel_error": float(np.mean(np.abs(f.predicted / f.measured - 1))),
                    "max_abs_rel_error": float(np.max(np.abs(f.predicted / f.measured - 1))),
                    "median_distance": float(np.median(f.distance)),
                }
                for f in self.folds
            ],
        }


def calibrate(
    points: Points, options: FitOptions | None = None, n_boot: int = 100, levels=LEVELS
) -> Calibration:
    """Rolling holdouts -> the model-error rate and its coverage table."""
    min_groups = 3
    folds = rolling_holdouts(points, options, n_boot=n_boot)
    if not folds:  # too few sizes and lengths: two-group folds are all there is
        min_groups = 2
        folds = rolling_holdouts(points, options, n_boot=n_boot, min_train_groups=2)
    rate = estimate_per_efold(folds)
    cv = None
    # leave-one-fold-out: each fold is scored with the rate the other folds
    # estimated, so its coverage is an out-of-sample figure
    if len(folds) > 1:
        rates = [estimate_per_efold(folds[:i] + folds[i + 1 :]) for i in range(len(folds))]
        cv = coverage(folds, rates, levels)
    return Calibration(
        per_efold=rate,
        folds=folds,
        coverage=coverage(folds, rate, levels),
        coverage_cv=cv,
        min_train_groups=min_groups,
    )
