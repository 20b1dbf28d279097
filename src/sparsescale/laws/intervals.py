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
  holdouts (sparsescale.laws.calibration), so that intervals describe the
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
from sparsescale.laws.forms import COEFFICIENT_NAMES, Law, check_coefficients


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

    @classmethod
    def of(cls, sparsity, n_nonzero, data) -> "FitRange":
        S = np.zeros(1) if sparsity is None else np.asarray(sparsity, dtype=float)
        N, D = np.asarray(n_nonzero, dtype=float), np.asarray(data, dtype=float)
        return cls((float(N.min()), float(N.max())), (float(D.min()), float(D.max())), float(S.max()))

    def distance(self, sparsity, n_nonzero, data) -> np.ndarray:
        """Extrapolation distance: log-factors beyond the range in N and D
        (either side) plus in 1 - S beyond the sparsest run."""
        S, N, D = (np.asarray(a, dtype=float) for a in (sparsity, n_nonzero, data))

        def outside(x, lo, hi):
            return np.maximum(0.0, np.log(x / hi)) + np.maximum(0.0, np.log(lo / x))

        dS = np.maximum(0.0, np.log((1.0 - self.sparsity_max) / np.maximum(1.0 - S, 1e-300)))
        return outside(N, *self.n_nonzero) + outside(D, *self.data) + dS

    def to_dict(self) -> dict[str, Any]:
        return {"n_nonzero": list(self.n_nonzero), "data": list(self.data), "sparsity_max": self.sparsity_max}


@dataclass
class ModelError:
    """sigma(d) = sqrt(floor^2 + (per_efold d)^2), relative (log-loss) units."""

    floor: float
    per_efold: float

    def sigma(self, distance) -> np.ndarray:
        d = np.asarray(distance, dtype=float)
        return np.sqrt(self.floor**2 + (self.per_efold * d) ** 2)


@dataclass
class Uncertainty:
    """Coefficient draws + model error + the range the law was fitted on."""

    form: str
    draws: np.ndarray  # (B, k): coefficients in COEFFICIENT_NAMES[form] order
    fit_range: FitRange
    model_error: ModelError
    calibration: dict[str, Any] = field(default_factory=dict)  # coverage on rolling holdouts
    source: str = ""

    def draw_laws(self, law: Law) -> list[Law]:
        names = COEFFICIENT_NAMES[self.form]
        return [Law(form=law.form, coefficients=dict(zip(names, row)), units=law.units,
                    tokens_per_unit=law.tokens_per_unit, mean_sparsity_fraction=law.mean_sparsity_fraction)
                for row in self.draws]

    def coefficient_sd(self, law: Law, sparsity, n_nonzero, data) -> np.ndarray:
        """Robust standard deviation of the draws' log predictions at each point."""
        S, N, D = np.broadcast_arrays(*(np.asarray(a, dtype=float) for a in (sparsity, n_nonzero, data)))
        if S.size == 0:   # numpy's percentile of no columns has no rows to unpack
            return np.zeros(S.shape)
        names = COEFFICIENT_NAMES[self.form]
        k = {n: self.draws[:, j][:, None] for j, n in enumerate(names)}
        if self.form == "avgparam":  # the dense form on N_avg
            N = law.n_avg(S, N)
        logs = np.log(_predict_many(self.form, k, S.ravel(), N.ravel(), D.ravel()))
        lo, hi = np.nanpercentile(logs, [15.865, 84.135], axis=0)
        return ((hi - lo) / 2.0).reshape(S.shape)

    def loss_interval(self, law: Law, sparsity, n_nonzero, data, level: float = 0.95):
        """(low, high) of the predicted loss at `level`, broadcast over the inputs."""
        z = z_score(level)
        point = np.asarray(law.predict(sparsity, n_nonzero, data), dtype=float)
        sd = np.sqrt(self.coefficient_sd(law, sparsity, n_nonzero, data) ** 2
                     + self.model_error.sigma(self.fit_range.distance(sparsity, n_nonzero, data)) ** 2)
        return point * np.exp(-z * sd), point * np.exp(z * sd)

    def quantity_interval(self, law: Law, fn: Callable[[Law], float], level: float = 0.95) -> tuple[float, float]:
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
            "method": "bootstrap coefficient draws + model error growing with extrapolation distance "
                      "(sigma = sqrt(floor^2 + (per_efold * d)^2), d = e-folds beyond the fitted range)",
            "source": self.source,
            "coefficient_names": list(COEFFICIENT_NAMES[self.form]),
            "draws": [[float(x) for x in row] for row in self.draws],
            "fit_range": self.fit_range.to_dict(),
            "model_error": {"floor": self.model_error.floor, "per_efold": self.model_error.per_efold},
            "calibration": self.calibration,
        }

    @classmethod
    def from_dict(cls, obj: Any, form: str) -> "Uncertainty":
        try:
            names = list(obj["coefficient_names"])
            draws = np.array(obj["draws"], dtype=float)
            fr, me = obj["fit_range"], obj["model_error"]
            fit_range = FitRange(tuple(map(float, fr["n_nonzero"])), tuple(map(float, fr["data"])), float(fr["sparsity_max"]))
            model_error = ModelError(float(me["floor"]), float(me["per_efold"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise SparsescaleError(f"uncertainty: malformed ({type(exc).__name__}: {exc})") from None
        if names != list(COEFFICIENT_NAMES[form]) or draws.ndim != 2 or draws.shape[1] != len(names) or draws.shape[0] < 2:
            raise SparsescaleError(f"uncertainty: draws must be a list of at least 2 rows of {', '.join(COEFFICIENT_NAMES[form])}")
        if not (np.all(np.isfinite(draws)) and np.all(np.isfinite([model_error.floor, model_error.per_efold]))
                and model_error.floor >= 0 and model_error.per_efold >= 0):
            raise SparsescaleError("uncertainty: draws and model_error must be finite and non-negative")
        for i, row in enumerate(draws):  # every draw is a law of its own: same ranges
            try:
                check_coefficients(dict(zip(names, row)))
            except SparsescaleError as exc:
                raise SparsescaleError(f"uncertainty: draw {i + 1}: {exc}") from None
        return cls(form=form, draws=draws, fit_range=fit_range, model_error=model_error,
                   calibration=dict(obj.get("calibration") or {}), source=str(obj.get("source") or ""))


def _predict_many(form: str, k: dict[str, np.ndarray], S, N, D) -> np.ndarray:
    """Predictions of B coefficient draws (columns (B, 1)) at n points -> (B, n)."""
    with np.errstate(all="ignore"):
        if form in ("dense", "avgparam"):  # avgparam: N is already N_avg
            return k["A"] * N ** -k["alpha"] + k["B"] * D ** -k["beta"] + k["E"]
        return (k["aS"] * (1.0 - S) ** k["bS"] + k["cS"]) * N ** -k["bN"] + (k["aD"] / D) ** k["bD"] + k["c"]


def optimal_intervals(law: Law, point, level: float = 0.95, flops: str = "sparse",
                      start: float = 0.25, end: float = 0.75) -> dict[str, tuple[float, float]] | None:
    """Intervals for every number of an OptimalPoint (from `planning.optimal_sparsity`
    on this law), or None when the law carries no uncertainty.

    loss and dense_loss: full prediction intervals (coefficients + model error).
    sparsity, data, equivalent_dense_size: the same budget re-planned under every
    coefficient draw (coefficient uncertainty only)."""
    from sparsescale.laws.planning import optimal_sparsity

    unc = law.uncertainty
    if unc is None:
        return None
    z_score(level)
    plans = []
    for d in unc.draw_laws(law):
        try:
            plans.append(optimal_sparsity(d, point.n_nonzero, point.compute, flops=flops, start=start, end=end))
        except SparsescaleError:
            continue
    out = {}
    for name in ("sparsity", "data", "equivalent_dense_size"):
        vals = np.array([getattr(p, name) for p in plans], dtype=float)
        vals = vals[np.isfinite(vals)]
        ref = float(getattr(point, name))
        lo, hi = np.percentile(vals, [(1 - level) / 2 * 100, (1 + level) / 2 * 100]) if vals.size >= 2 else (ref, ref)
        out[name] = (float(min(lo, ref)), float(max(hi, ref)))
    for name, S, D in (("loss", point.sparsity, point.data), ("dense_loss", 0.0, point.dense_data)):
        lo, hi = unc.loss_interval(law, S, point.n_nonzero, D, level)
        out[name] = (float(lo), float(hi))
    return out


PRESET_FILE = "preset-uncertainty.json"


@lru_cache(maxsize=None)
def _preset_table() -> dict[str, Any]:
    try:
        text = resources.files("sparsescale.laws.paperdata").joinpath(PRESET_FILE).read_text(encoding="utf-8")
    except (FileNotFoundError, ModuleNotFoundError):
        return {}
    return json.loads(text)


def preset_uncertainty(name: str) -> Uncertainty | None:
    """The shipped uncertainty of a preset (made by scripts/make_preset_uncertainty.py), or None."""
    obj = _preset_table().get(name)
    return None if obj is None else Uncertainty.from_dict(obj, "sparse")

