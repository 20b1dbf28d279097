"""Which runs next: the candidate runs that most narrow a target's interval per FLOP.

The criterion (docs/adaptive-design.md has the long form). A bootstrap of the
finished runs gives B coefficient draws theta_b. For each draw we have the
target t_b = T(theta_b) (S_opt at (N, C), an equivalent dense size, a loss)
and the prediction l_bc = f(theta_b; x_c) of every candidate run c, in the
fit's residual space (log loss for language, loss for vision). Read the draws
as a joint Gaussian over (t, l_1..l_K): training candidate c observes
y_c = l_c + e, e ~ N(0, sigma^2) with sigma the fit's residual scale, and the
Gaussian conditional variance of t falls by

    gain_c = Cov(t, l_c)^2 / (Var(l_c) + sigma^2).

A batch is chosen greedily: take the candidate with the largest gain per FLOP
that still fits the remaining budget, condition the whole covariance on it
(Sigma <- Sigma - Sigma[:, c] Sigma[c, :] / (Sigma[c, c] + sigma^2), so runs
that teach the same thing do not both get picked), repeat. The expected
interval after the batch is the current percentile interval's width scaled by
sqrt(Var_after / Var_before).

The draws are winsorised to their 2.5-97.5% range per column before the
covariances: a few resamples with a wild optimum (an amplitude at its bound)
would otherwise decide the whole choice.

Price of a run: 6 N D tokens_per_unit c_mul(S) FLOPs, c_mul with sparse
accounting under the cubic 25%-75% schedule (laws.planning.c_mul), the cost
model `sparsescale optimal` uses by default.
"""

from __future__ import annotations

import itertools
import math
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sparsescale.errors import SparsescaleError
from sparsescale.laws.fit import FitResult, fit_law
from sparsescale.laws.forms import get_form
from sparsescale.laws.law import Law
from sparsescale.laws.planning import c_mul, equivalent_dense_factor, law_compute, optimal_sparsity
from sparsescale.laws.points import FitOptions, Points
from sparsescale.laws.uncertainty.bootstrap import bootstrap
from sparsescale.units import parse_quantity

TARGET_KEYS = {"sopt": ("N", "C"), "equivalent-size": ("S",), "loss": ("S", "N", "D")}
TARGET_EXAMPLE = "sopt:N=1e8,C=1e20, equivalent-size:S=0.75 or loss:S=0.5,N=1e8,D=1e10"


@dataclass(frozen=True)
class Target:
    """The one number a design is for: S_opt at N non-zeros and C FLOPs, the
    equivalent dense size factor at S, or the loss at (S, N, D)."""

    kind: str
    values: dict[str, float]

    @property
    def label(self) -> str:
        return f"{self.kind}:" + ",".join(f"{k}={v:g}" for k, v in self.values.items())

    def of(self, law: Law) -> float:
        v = self.values
        # a wild draw gives inf/nan, dropped later
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            return self._of(law, v)

    # The three targets a design can narrow: S_opt at (N, C FLOPs) re-planned
    # under the law (the budget converted by its tokens_per_unit), the
    # equivalent dense size factor at S, or the predicted loss at a point.
    def _of(self, law: Law, v: dict[str, float]) -> float:
        if self.kind == "sopt":
            return optimal_sparsity(law, v["N"], law_compute(law, v["C"])).sparsity
        if self.kind == "equivalent-size":
            return float(equivalent_dense_factor(law, v["S"]))
        return float(law.predict(v["S"], v["N"], v["D"]))


def parse_target(text: str, what: str = "target") -> Target:
    """'sopt:N=1e8,C=1e20' -> Target; errors name `what` (the flag in the CLI)."""
    kind, _, rest = str(text).partition(":")
    kind = kind.strip().lower()
    if kind not in TARGET_KEYS:
        raise SparsescaleError(f"{what}: unknown target {text!r}; expected {TARGET_EXAMPLE}")
    values: dict[str, float] = {}
    for item in filter(None, (p.strip() for p in rest.split(","))):
        key, eq, value = item.partition("=")
        key = key.strip()
        if not eq or key not in TARGET_KEYS[kind]:
            raise SparsescaleError(
                f"{what}: {item!r} in {text!r}: {kind} takes "
                f"{', '.join(k + '=...' for k in TARGET_KEYS[kind])}"
            )
        values[key] = parse_quantity(value.strip(), f"{what}: {key}")
    missing = [k for k in TARGET_KEYS[kind] if k not in values]
    if missing:
        raise SparsescaleError(
            f"{what}: {text!r} lacks {', '.join(missing)} (e.g. {TARGET_EXAMPLE})"
        )
    if "S" in values and not 0.0 <= values["S"] < 1.0:
        raise SparsescaleError(f"{what}: S={values['S']:g} is outside [0, 1)")
    for key in ("N", "C", "D"):
        if key in values and not values[key] > 0:
            raise SparsescaleError(f"{what}: {key}={values[key]:g} must be positive")
    return Target(kind, {k: values[k] for k in TARGET_KEYS[kind]})


def run_flops(sparsity, n_nonzero, data, tokens_per_unit: float = 1.0):
    """Training FLOPs of runs: 6 N D tokens_per_unit c_mul(S), sparse accounting,
    cubic 25-75% schedule."""
    return (
        6.0
        * np.asarray(n_nonzero, float)
        * np.asarray(data, float)
        * tokens_per_unit
        * c_mul(sparsity, "sparse")
    )


# -- candidate spaces --------------------------------------------------------
_RANGE = re.compile(r"^\s*([^:]+):([^:]+):(\d+)\s*$")


def parse_axis(text: str, what: str, kind: str) -> list[float]:
    """'0,0.5,0.75' (a list) or 'LOW:HIGH:COUNT' (COUNT values, evenly spaced in
    log(1 - S) for sparsity and in log for N and D) -> values."""
    m = _RANGE.match(str(text))
    if m:
        lo, hi = (parse_quantity(m.group(i), what) for i in (1, 2))
        count = int(m.group(3))
        if count < 1 or count > 1000 or hi < lo:
            raise SparsescaleError(f"{what}: range {text!r} needs LOW <= HIGH and 1..1000 values")
        if kind == "sparsity":
            _check_axis([lo, hi], what, kind)
            # evenly spaced in log(1 - S): 0.5, 0.75, 0.875 are equal steps, each
            # halving the density that the law's (1-S)^bS term sees
            values = 1.0 - np.exp(np.linspace(math.log1p(-lo), math.log1p(-hi), count))
        else:
            _check_axis([lo, hi], what, kind)
            values = np.exp(np.linspace(math.log(lo), math.log(hi), count))
        return sorted({float(v) for v in values})
    items = [p for p in (q.strip() for q in str(text).split(",")) if p]
    if not items:
        raise SparsescaleError(f"{what}: give values like 0,0.5,0.75 or a range LOW:HIGH:COUNT")
    values = [parse_quantity(p, what) for p in items]
    _check_axis(values, what, kind)
    return sorted(set(values))


def _check_axis(values, what: str, kind: str) -> None:
    for v in values:
        if kind == "sparsity" and not 0.0 <= v < 1.0:
            raise SparsescaleError(f"{what}: sparsity {v:g} is outside [0, 1)")
        if kind != "sparsity" and not v > 0:
            raise SparsescaleError(f"{what}: {v:g} must be positive")


# Extending an axis. N and D are designed on log scales, so one more step is
# the ratio of the last two values; sparsity on the density 1 - S, which the
# law's (1-S)^bS term sees on a log scale too, so one more step halves it
# (0.875 -> 0.9375).
def extend_axis(values, kind: str) -> list[float]:
    """An axis with one more step beyond each end: the geometric step of its
    end values for N and D (x2 for a single value), and for sparsity one more
    halving of the density 1 - S beyond the sparsest value."""
    v = sorted(set(float(x) for x in values))
    if kind == "sparsity":
        top = v[-1]
        return v + ([1.0 - (1.0 - top) / 2.0] if top > 0 else [0.5])
    low = v[0] / (v[1] / v[0] if len(v) > 1 else 2.0)
    high = v[-1] * (v[-1] / v[-2] if len(v) > 1 else 2.0)
    return [low] + v + [high]


# A candidate that matches a finished run (same S, N and D within 0.1% in
# log) would only repeat it: the noise term, not the design, says what a
# repeat is worth.
def candidate_grid(sparsity, n_nonzero, data, done=None) -> np.ndarray:
    """The cross product as rows (S, N, D), without the (S, N, D) already in
    `done` (rows of finished runs; N and D within 0.1%)."""
    grid = np.array(list(itertools.product(sparsity, n_nonzero, data)), dtype=float).reshape(-1, 3)
    if done is not None and len(done):
        done = np.asarray(done, dtype=float)
        same = (
            (np.abs(grid[:, None, 0] - done[None, :, 0]) < 1e-9)
            & (np.abs(np.log(grid[:, None, 1] / done[None, :, 1])) < 1e-3)
            & (np.abs(np.log(grid[:, None, 2] / done[None, :, 2])) < 1e-3)
        )
        grid = grid[~same.any(axis=1)]
    return grid


# -- the design --------------------------------------------------------------
@dataclass
class Proposal:
    """The chosen runs, best first, and what they are expected to do to the target's interval."""

    target: Target
    runs: list[dict[str, float]]  # sparsity, n_nonzero, data, flops, variance_share
    interval: tuple[float, float, float]  # current (low, median, high), 95%
    expected_width: float  # expected width of that interval after the runs
    budget_flops: float
    spent_flops: float
    noise: float  # residual scale the criterion assumes per run
    n_boot: int
    n_candidates: int
    fit: FitResult | None = field(default=None, repr=False)

    @property
    def width(self) -> float:
        return self.interval[2] - self.interval[0]

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target.label,
            "interval": list(self.interval),
            "width": self.width,
            "expected_width": self.expected_width,
            "budget_flops": self.budget_flops,
            "spent_flops": self.spent_flops,
            "noise": self.noise,
            "n_boot": self.n_boot,
            "n_candidates": self.n_candidates,
            "runs": self.runs,
        }


def predict_draws(
    coefficients: np.ndarray,
    sparsity,
    n_nonzero,
    data,
    form: str = "sparse",
    mean_sparsity_fraction: float | None = None,
) -> np.ndarray:
    """Predictions of every draw (rows of the form's coefficients, in its order;
    the sparse form: aS, bS, cS, bN, aD, bD, c) at every point: (B, K)."""
    return get_form(form).predict_draws(
        coefficients, sparsity, n_nonzero, data, mean_sparsity_fraction
    )


# Winsorising clips each column to its 2.5-97.5% range: one draw with an
# amplitude at its bound can move a covariance by orders of magnitude while
# saying nothing about the runs the design should choose.
def _winsorise(X: np.ndarray, q: float = 2.5) -> np.ndarray:
    lo, hi = np.percentile(X, [q, 100.0 - q], axis=0)
    return np.clip(X, lo, hi)


# a run that would remove less than this share of the variance is not worth proposing
MIN_SHARE = 0.005


# The greedy step. Read (t, l_1..l_K) as jointly Gaussian with covariance
# Sigma. Observing y_c = l_c + e, e ~ N(0, sigma^2), conditions the target:
#     Var(t | y_c) = Var(t) - Cov(t, l_c)^2 / (Var(l_c) + sigma^2),
# and the whole covariance updates by the same rank-one formula
#     Sigma <- Sigma - Sigma[:, c] Sigma[c, :] / (Sigma[c, c] + sigma^2),
# so after a run is chosen, runs that would teach the same thing lose their
# gain. Each step picks the best gain per FLOP among the runs that fit what is
# left of the budget.
def greedy_batch(
    cov: np.ndarray,
    noise_var: float,
    flops: np.ndarray,
    budget: float,
    max_runs: int | None = None,
    min_share: float = MIN_SHARE,
) -> tuple[list[int], list[float], float]:
    """Greedy variance reduction per FLOP. cov: the (1 + K) x (1 + K) covariance
    of (target, candidate predictions). Returns the chosen candidate indices,
    each one's share of the target's variance removed, and the variance left.
    Stops when no run fits the budget left or none would remove min_share of
    the initial variance (the budget is a ceiling, not a quota)."""
    cov = cov.copy()
    var0 = float(cov[0, 0])
    chosen: list[int] = []
    shares: list[float] = []
    left = float(budget)
    available = np.ones(flops.size, dtype=bool)
    while max_runs is None or len(chosen) < max_runs:
        denom = np.diag(cov)[1:] + noise_var
        gain = cov[0, 1:] ** 2 / denom
        # a candidate qualifies if not yet chosen, affordable with what is left, and
        # still worth min_share of the ORIGINAL variance var0, so the stopping rule
        # does not loosen as the variance shrinks
        ok = available & (flops <= left) & (gain > min_share * max(var0, 1e-300))
        if not ok.any():
            break
        score = np.where(ok, gain / flops, -np.inf)
        c = int(np.argmax(score))
        # the rank-one conditioning; the column is copied first because the update
        # overwrites the very column it is computed from
        col = cov[:, 1 + c].copy()
        cov -= np.outer(col, col) / (col[1 + c] + noise_var)
        chosen.append(c)
        shares.append(float(gain[c] / var0) if var0 > 0 else 0.0)
        available[c] = False
        left -= float(flops[c])
    return chosen, shares, float(max(cov[0, 0], 0.0))


def propose(
    points: Points,
    target: Target,
    candidates: np.ndarray,
    budget_flops: float,
    options: FitOptions | None = None,
    *,
    n_boot: int = 200,
    max_runs: int | None = None,
    fit: FitResult | None = None,
    level: float = 0.95,
    min_share: float = MIN_SHARE,
) -> Proposal:
    """The batch of candidate runs (rows S, N, D) within `budget_flops` that most
    narrows the target's interval per FLOP (see the module docstring).

    points: the finished runs, D in the unit whose cost is
    `options.tokens_per_unit` tokens (1 when not given). min_share: see
    greedy_batch (0 fills the budget with the best runs per FLOP however little
    they teach)."""
    options = options or FitOptions()
    tokens_per_unit = 1.0 if options.tokens_per_unit is None else options.tokens_per_unit
    options = options.replace(tokens_per_unit=tokens_per_unit)
    space = options.space
    S, N, D, y = points.arrays
    candidates = np.asarray(candidates, dtype=float).reshape(-1, 3)
    if not (budget_flops > 0 and math.isfinite(budget_flops)):
        raise SparsescaleError(f"budget: must be a positive number of FLOPs, got {budget_flops}")
    if candidates.shape[0] == 0:
        raise SparsescaleError("candidates: none left (every candidate run is already finished)")
    if fit is None:
        fit = fit_law(points, options)
    fit.law.tokens_per_unit = tokens_per_unit

    def value(law: Law) -> float:
        law.tokens_per_unit = tokens_per_unit
        return target.of(law)

    # the bootstrap refits without tokens_per_unit; `value` sets it on each draw
    # before evaluating the target, so a budget C in FLOPs converts to the law's
    # unit the same way for every draw
    boot = bootstrap(
        points,
        options.replace(tokens_per_unit=None),
        n_boot=n_boot,
        level=level,
        reference=fit,
        derived={"target": value},
    )
    names = list(fit.law.coefficients)
    draws = np.column_stack([boot.samples[k] for k in names])
    t = np.asarray(boot.samples["target"], dtype=float)
    pred = predict_draws(
        draws,
        *candidates.T,
        form=fit.law.form,
        mean_sparsity_fraction=fit.law.mean_sparsity_fraction,
    )
    # predictions in the fit's residual space, the space the noise sigma below
    # is measured in; column 0 of X is the target, columns 1..K the candidates,
    # the layout greedy_batch expects
    if space == "log":
        with np.errstate(invalid="ignore", divide="ignore"):
            pred = np.log(pred)
    keep = np.isfinite(t) & np.all(np.isfinite(pred), axis=1)
    if keep.sum() < 10:
        raise SparsescaleError(
            "bootstrap: fewer than 10 draws give a finite target and predictions"
        )
    X = _winsorise(np.column_stack([t[keep], pred[keep]]))
    cov = np.cov(X, rowvar=False)
    # the observation noise sigma: the fit's robust residual scale (1.4826 x the
    # median absolute deviation is the standard deviation of Gaussian residuals)
    residual = fit.law.predict(S, N, D)
    r = np.log(residual) - np.log(y) if space == "log" else residual - y
    noise = float(max(1.4826 * np.median(np.abs(r - np.median(r))), 1e-12))
    flops = run_flops(candidates[:, 0], candidates[:, 1], candidates[:, 2], tokens_per_unit)
    chosen, shares, var_left = greedy_batch(cov, noise**2, flops, budget_flops, max_runs, min_share)
    var0 = float(cov[0, 0])
    lo, med, hi = boot.intervals["target"]
    # a Gaussian interval's width scales with the standard deviation
    ratio = math.sqrt(var_left / var0) if var0 > 0 else 1.0
    runs = [
        {
            "sparsity": float(candidates[c, 0]),
            "n_nonzero": float(candidates[c, 1]),
            "data": float(candidates[c, 2]),
            "flops": float(flops[c]),
            "variance_share": share,
        }
        for c, share in zip(chosen, shares)
    ]
    return Proposal(
        target=target,
        runs=runs,
        interval=(lo, med, hi),
        expected_width=(hi - lo) * ratio,
        budget_flops=float(budget_flops),
        spent_flops=float(sum(r["flops"] for r in runs)),
        noise=noise,
        n_boot=n_boot,
        n_candidates=int(candidates.shape[0]),
        fit=fit,
    )
