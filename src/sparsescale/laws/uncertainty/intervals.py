"""Prediction intervals a law carries with it.

Two sources of error, added in quadrature on the log-loss scale:

- Coefficient uncertainty: the bootstrap's coefficient draws. The spread of
  their predictions at a point is its standard deviation (estimated robustly,
  as half the 16-84% range of the log predictions).
- Model error: the law is not exactly true, and the further a prediction
  reaches beyond the data the fit saw, the more that shows. Its standard
  deviation grows with the extrapolation distance d (e-folds beyond the fitted
  range, summed over N, D and 1 - S):
      sigma_model(d) = sqrt(floor^2 + (per_efold * d)^2)
  floor is the fit's own residual scale; per_efold is estimated from rolling
  holdouts (sparsescale.laws.uncertainty.calibration), so that intervals describe the
  error of reaching beyond the data, which a bootstrap alone does not.

A loss interval is point * exp(+-z sqrt(sd_coef^2 + sigma_model^2)). Derived
quantities (S_opt, the data at S_opt, the equivalent dense size) get the
percentile interval of their values over the draws: coefficient uncertainty
only, since a model error on the loss has no defined effect on them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from statistics import NormalDist
from typing import Any, Callable

import numpy as np

from sparsescale.errors import SparsescaleError
from sparsescale.laws.forms import get_form


# A central interval at `level` spans z standard deviations either side, with
# z the standard normal's (1 + level) / 2 quantile (1.96 at 95%, 1.28 at 80%).
def z_score(level: float) -> float:
    """The two-sided standard-normal quantile for a central interval at `level`."""
    if not 0 < level < 1:
        raise SparsescaleError(f"must be in (0, 1), got {level}", param="level")
    return NormalDist().inv_cdf((1.0 + level) / 2.0)


@dataclass
class FitRange:
    """The box of points a law was fitted on; distances are e-folds outside it."""

    n_nonzero: tuple[float, float]
    data: tuple[float, float]
    sparsity_max: float

    # the box is the data's extent per axis, not its convex hull: a point inside
    # every axis' range but in an empty corner of the grid counts as d = 0
    @classmethod
    def of(cls, sparsity, n_nonzero, data) -> "FitRange":
        S = np.zeros(1) if sparsity is None else np.asarray(sparsity, dtype=float)
        N, D = np.asarray(n_nonzero, dtype=float), np.asarray(data, dtype=float)
        return cls(
            (float(N.min()), float(N.max())), (float(D.min()), float(D.max())), float(S.max())
        )

    # Distance in e-folds: how many factors of e a point lies beyond the fitted
    # box, summed over the axes. N and D count either side (a smaller model is
    # as much an extrapolation as a larger one); S counts on 1 - S, and only
    # beyond the sparsest run, since S = 0 is always in range (the dense runs).
    def distance(self, sparsity, n_nonzero, data) -> np.ndarray:
        """Extrapolation distance: log-factors beyond the range in N and D
        (either side) plus in 1 - S beyond the sparsest run."""
        S, N, D = (np.asarray(a, dtype=float) for a in (sparsity, n_nonzero, data))

        def outside(x, lo, hi):
            return np.maximum(0.0, np.log(x / hi)) + np.maximum(0.0, np.log(lo / x))

        dS = np.maximum(0.0, np.log((1.0 - self.sparsity_max) / np.maximum(1.0 - S, 1e-300)))
        return outside(N, *self.n_nonzero) + outside(D, *self.data) + dS

    def to_dict(self) -> dict[str, Any]:
        return {
            "n_nonzero": list(self.n_nonzero),
            "data": list(self.data),
            "sparsity_max": self.sparsity_max,
        }


@dataclass
class ModelError:
    """sigma(d) = sqrt(floor^2 + (per_efold d)^2), relative (log-loss) units."""

    floor: float
    per_efold: float

    # The two terms add in quadrature: inside the data (d = 0) the error is the
    # fit's own residual scale; far outside it grows linearly in d, at the rate
    # the rolling holdouts measured (laws.uncertainty.calibration).
    def sigma(self, distance) -> np.ndarray:
        d = np.asarray(distance, dtype=float)
        return np.sqrt(self.floor**2 + (self.per_efold * d) ** 2)


@dataclass
class Uncertainty:
    """Coefficient draws + model error + the range the law was fitted on."""

    form: str
    draws: np.ndarray  # (B, k): coefficients in the form's `coefficients` order
    fit_range: FitRange
    model_error: ModelError
    calibration: dict[str, Any] = field(default_factory=dict)  # coverage on rolling holdouts
    source: str = ""

    def draw_laws(self, law) -> list:
        """Every draw as a law of its own: `law` (a laws.law.Law of this form)
        with the draw's coefficients."""
        names = get_form(self.form).coefficients
        return [law.with_coefficients(dict(zip(names, row))) for row in self.draws]

    def coefficient_sd(self, law, sparsity, n_nonzero, data) -> np.ndarray:
        """Robust standard deviation of the draws' log predictions at each point:
        half the 16-84% range, which is one sd for a Gaussian and ignores the
        few wild draws (an amplitude at its bound) that would inflate a plain sd."""
        S, N, D = np.broadcast_arrays(
            *(np.asarray(a, dtype=float) for a in (sparsity, n_nonzero, data))
        )
        if S.size == 0:  # numpy's percentile of no columns has no rows to unpack
            return np.zeros(S.shape)
        pred = get_form(self.form).predict_draws(
            self.draws, S.ravel(), N.ravel(), D.ravel(), law.mean_sparsity_fraction
        )
        with np.errstate(all="ignore"):
            logs = np.log(pred)
        # 15.865 and 84.135: the standard normal's quantiles at -1 and +1 sd, so
        # half the range is one sd for Gaussian draws
        lo, hi = np.nanpercentile(logs, [15.865, 84.135], axis=0)
        return ((hi - lo) / 2.0).reshape(S.shape)

    # The loss interval is multiplicative, point x exp(+-z sd): both error
    # terms live on the log-loss scale, where the fits are done and where a
    # relative error means the same at every loss.
    def loss_interval(self, law, sparsity, n_nonzero, data, level: float = 0.95):
        """(low, high) of the predicted loss at `level`, broadcast over the inputs."""
        z = z_score(level)
        point = np.asarray(law.predict(sparsity, n_nonzero, data), dtype=float)
        # the two sources are independent and add in quadrature: the draws' spread
        # at the point and the model error at its extrapolation distance
        sd = np.sqrt(
            self.coefficient_sd(law, sparsity, n_nonzero, data) ** 2
            + self.model_error.sigma(self.fit_range.distance(sparsity, n_nonzero, data)) ** 2
        )
        return point * np.exp(-z * sd), point * np.exp(z * sd)

    # The point value may fall outside its own draws' percentile interval
    # (a skewed bootstrap distribution); the interval is stretched to hold it,
    # so the number shown is never outside the range shown with it.
    def quantity_interval(
        self, law, fn: Callable[[Any], float], level: float = 0.95
    ) -> tuple[float, float]:
        """Percentile interval of fn over the draws, stretched to contain fn(law)."""
        z_score(level)
        vals = np.array([fn(d) for d in self.draw_laws(law)], dtype=float)
        vals = vals[np.isfinite(vals)]
        point = float(fn(law))
        if vals.size < 2:
            return point, point
        lo, hi = np.percentile(vals, [(1 - level) / 2 * 100, (1 + level) / 2 * 100])
        return float(min(lo, point)), float(max(hi, point))

    # -- persistence ----------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "method": "bootstrap coefficient draws + model error growing with extrapolation "
            "distance "
            "(sigma = sqrt(floor^2 + (per_efold * d)^2), d = e-folds beyond the fitted range)",
            "source": self.source,
            "coefficient_names": list(get_form(self.form).coefficients),
            "draws": [[float(x) for x in row] for row in self.draws],
            "fit_range": self.fit_range.to_dict(),
            "model_error": {
                "floor": self.model_error.floor,
                "per_efold": self.model_error.per_efold,
            },
            "calibration": self.calibration,
        }

    # An uncertainty read from a law file is user input: every draw must be a
    # valid law of the form (the same coefficient ranges a fitted law obeys),
    # so a hand-edited file cannot smuggle a negative amplitude into intervals.
    @classmethod
    def from_dict(cls, obj: Any, form: str) -> "Uncertainty":
        try:
            names = list(obj["coefficient_names"])
            draws = np.array(obj["draws"], dtype=float)
            fr, me = obj["fit_range"], obj["model_error"]
            fit_range = FitRange(
                tuple(map(float, fr["n_nonzero"])),
                tuple(map(float, fr["data"])),
                float(fr["sparsity_max"]),
            )
            model_error = ModelError(float(me["floor"]), float(me["per_efold"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise SparsescaleError(
                f"uncertainty: malformed ({type(exc).__name__}: {exc})"
            ) from None
        spec = get_form(form)
        if (
            names != list(spec.coefficients)
            or draws.ndim != 2
            or draws.shape[1] != len(names)
            or draws.shape[0] < 2
        ):
            raise SparsescaleError(
                "uncertainty: draws must be a list of at least 2 rows of "
                f"{', '.join(spec.coefficients)}"
            )
        if not (
            np.all(np.isfinite(draws))
            and np.all(np.isfinite([model_error.floor, model_error.per_efold]))
            and model_error.floor >= 0
            and model_error.per_efold >= 0
        ):
            raise SparsescaleError(
                "uncertainty: draws and model_error must be finite and non-negative"
            )
        for i, row in enumerate(draws):  # every draw is a law of its own: same ranges
            try:
                spec.check_coefficients(dict(zip(names, row)))
            except SparsescaleError as exc:
                raise SparsescaleError(f"uncertainty: draw {i + 1}: {exc}") from None
        return cls(
            form=form,
            draws=draws,
            fit_range=fit_range,
            model_error=model_error,
            calibration=dict(obj.get("calibration") or {}),
            source=str(obj.get("source") or ""),
        )


PRESET_FILE = "preset-uncertainty.json"


@lru_cache(maxsize=None)
def _preset_table() -> dict[str, Any]:
    try:
        text = (
            resources.files("sparsescale.laws.paperdata")
            .joinpath(PRESET_FILE)
            .read_text(encoding="utf-8")
        )
    except (FileNotFoundError, ModuleNotFoundError):
        return {}
    return json.loads(text)


# The presets carry an uncertainty made once from the paper's own data
# (scripts/make_preset_uncertainty.py): bootstrap draws around the published
# coefficients and a model error calibrated on rolling holdouts of that data.
def preset_uncertainty(name: str) -> Uncertainty | None:
    """The shipped uncertainty of a preset (made by scripts/make_preset_uncertainty.py), or None."""
    obj = _preset_table().get(name)
    return None if obj is None else Uncertainty.from_dict(obj, "sparse")
