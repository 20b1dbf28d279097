"""One call for the whole check of a law on a sweep: fit, largest-N holdout,
bootstrap, rolling-holdout calibration, and the law that carries the result.

`sparsescale fit` and the sweep report both run this sequence; it lives here
once so that they cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from sparsescale.errors import SparsescaleError
from sparsescale.laws.fit import FitResult, fit_law
from sparsescale.laws.law import Law
from sparsescale.laws.points import FitOptions, Points
from sparsescale.laws.uncertainty.bootstrap import BootstrapResult, bootstrap, holdout_largest_n
from sparsescale.laws.uncertainty.calibration import Calibration, calibrate, residual_floor
from sparsescale.laws.uncertainty.intervals import FitRange, ModelError, Uncertainty


@dataclass
class Assessment:
    """What `assess` found. `law` is the full-data fit; it carries `uncertainty`
    when a bootstrap ran."""

    fit: FitResult
    law: Law
    holdout: dict[str, Any] | None = None
    bootstrap: BootstrapResult | None = None
    calibration: Calibration | None = None
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        out = self.fit.to_dict()
        if self.holdout is not None:
            out["holdout"] = {k: v for k, v in self.holdout.items() if k not in ("mask", "law")}
            out["holdout"]["coefficients"] = self.holdout["law"].coefficients
        if self.bootstrap is not None:
            out["intervals"] = self.bootstrap.to_dict()
        if self.calibration is not None:
            out["calibration"] = self.calibration.to_dict()
        if self.warnings:
            out["warnings"] = list(self.warnings)
        return out


# More resamples than this move no 95% interval and would run for hours.
MAX_BOOTSTRAP = 10_000


def assess(
    points: Points,
    options: FitOptions | None = None,
    *,
    n_boot: int = 0,
    holdout: bool = True,
    calibrated: bool = True,
    derived: dict[str, Callable[[Law], float]] | None = None,
    progress: Callable[[int, int], None] | None = None,
    calibration_boot: int = 100,
) -> Assessment:
    """Fit the law; optionally hold out the largest N; bootstrap n_boot resamples;
    calibrate the model-error term on rolling holdouts; attach the uncertainty.

    derived: quantities whose bootstrap intervals to report. A holdout or a
    calibration that the data cannot support (a single size; too few points)
    becomes a warning, not an error: the fit itself still stands.
    """
    options = options or FitOptions()
    if not 0 <= n_boot <= MAX_BOOTSTRAP:
        raise SparsescaleError(
            f"must be in 0..{MAX_BOOTSTRAP} (intervals settle by a few thousand "
            f"resamples), got {n_boot}",
            param="n_boot",
        )
    fit = fit_law(points, options)
    out = Assessment(fit=fit, law=fit.law)
    # the checks refit on parts of the data: the fitted law's units travel with `fit`, not with them
    check = options.replace(units=None, tokens_per_unit=None)
    if holdout:
        try:
            out.holdout = holdout_largest_n(points, check)
        except SparsescaleError as exc:
            reason = exc.detail if exc.param == "holdout" else str(exc)
            out.warnings.append(f"largest-N holdout skipped: {reason}")
    if n_boot == 0:
        return out
    out.bootstrap = bootstrap(
        points, check, n_boot=n_boot, derived=derived, reference=fit, progress=progress
    )
    # the draws in the form's coefficient order: the layout Uncertainty stores
    # and its readers (draw_laws, predict_draws) expect
    draws = np.column_stack([out.bootstrap.samples[k] for k in fit.law.spec.coefficients])
    rate, source = 0.0, f"bootstrap of {n_boot} resamples; no rolling-holdout calibration"
    if calibrated:
        try:
            # each fold runs a bootstrap of its own; capped at calibration_boot since a
            # fold's spread is one term of a variance, not an interval to report
            out.calibration = calibrate(points, check, n_boot=min(n_boot, calibration_boot))
            rate = out.calibration.per_efold
            source = (
                f"bootstrap of {n_boot} resamples; model error calibrated on "
                f"{len(out.calibration.folds)} rolling holdouts"
            )
        except SparsescaleError as exc:
            out.warnings.append(f"intervals not calibrated for extrapolation: {exc}")
    S, N, D, y = points.arrays
    # the uncertainty a law carries: the bootstrap's coefficient draws, and a
    # model error whose floor is the fit's residual scale and whose growth per
    # e-fold of extrapolation the rolling holdouts measured (0 when they could not)
    fit_range = FitRange.of(S, N, D)
    floor = residual_floor(fit.law, S, N, D, y)
    out.law.uncertainty = Uncertainty(
        form=fit.law.form,
        draws=draws,
        fit_range=fit_range,
        model_error=ModelError(floor, rate),
        calibration={} if out.calibration is None else out.calibration.to_dict(),
        source=source,
    )
    return out
