"""Pruning a pretrained dense model: the equal-compute comparison of the three
ways to spend compute, the law fitted to pruned runs, and the practitioner's
plan "I have a dense model of N parameters trained on D0; to what sparsity
do I prune it, and for how long do I continue?" (numpy/scipy only).

The pruned law is the paper's sparse law L(S, N, D) fitted to the dense runs
(S = 0) and to runs pruned from a dense model, with N the non-zeros after
pruning and D the TOTAL data: the dense prefix D0 plus the continuation D1
over which the gradual schedule prunes. The fraction D0 / D it was fitted on
is kept in the law file (`fit["from_dense"]`): the law describes how loss
scales at those fractions, and a plan far outside them is an extrapolation.

Compute. A pruned run trained alone costs its dense prefix at dense cost
(6 x its dense block parameters x D0) plus its sparse phase (6 N D1 c_mul(S),
the gradual schedule's mean density). A practitioner who already has the
dense model pays only the continuation: `plan_from_dense` budgets that.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from sparsescale.errors import SparsescaleError
from sparsescale.laws.law import Law
from sparsescale.laws.planning import MAX_SPARSITY, c_mul
from sparsescale.laws.points import FitOptions, Points

DENSE, SCRATCH, PRUNED = "dense", "sparse from scratch", "pruned from dense"
METHODS = (DENSE, SCRATCH, PRUNED)
# A continuation shorter than this fraction of D0 does not reach the pruning
# schedule's end in any meaningful sense (a handful of steps): refused.
MIN_CONTINUATION = 1e-3


# ---- equal-compute comparison of measured runs ---------------------------------------
def loss_at_compute(flops, loss, at: float) -> float | None:
    """A series' loss at compute `at`, interpolated linearly in log-log between
    its measured runs; None outside their range (no extrapolation)."""
    # log-log: between runs loss against compute is close to a power law, which
    # linear interpolation in the logs follows and in raw values would bow under
    c = np.log(np.asarray(flops, dtype=float))
    y = np.log(np.asarray(loss, dtype=float))
    order = np.argsort(c)
    c, y = c[order], y[order]
    x = math.log(at)
    # 1e-9 in log compute: a run at exactly an end of the series, its compute
    # recomputed along another float path, still counts as inside
    if c.size == 0 or x < c[0] - 1e-9 or x > c[-1] + 1e-9:
        return None
    return float(math.exp(np.interp(x, c, y)))


def _series(points: list[dict[str, Any]], method: str, sparsity: float, n_nonzero: float):
    rows = [
        p
        for p in points
        if p["method"] == method
        and abs(p["sparsity"] - sparsity) < 1e-9
        and p["n_target"] == n_nonzero
    ]
    return [p["flops"] for p in rows], [p["loss"] for p in rows]


# Equal compute, read off measured runs: each method's (FLOPs, loss) series
# over D is interpolated in log-log at the pruned run's compute, never
# extrapolated, so every comparison in the table is between measurements.
def equal_compute_table(points: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per pruned run: its loss against the loss of sparse-from-scratch
    (same S and N) and of dense (same N) at the SAME total compute, each read off
    that method's measured runs over D (None where the compute is outside them).
    `points`: dicts with method, sparsity, n_target (the grid's N), data, loss,
    flops (total, prefix included) and flops_continuation."""
    out = []
    for p in sorted(
        (p for p in points if p["method"] == PRUNED),
        key=lambda p: (p["sparsity"], p["n_target"], p["data"], p.get("dense_prefix", 0)),
    ):
        scratch = loss_at_compute(
            *_series(points, SCRATCH, p["sparsity"], p["n_target"]), p["flops"]
        )
        dense = loss_at_compute(*_series(points, DENSE, 0.0, p["n_target"]), p["flops"])
        scratch_cont = loss_at_compute(
            *_series(points, SCRATCH, p["sparsity"], p["n_target"]), p["flops_continuation"]
        )
        out.append(
            {
                k: p.get(k)
                for k in (
                    "sparsity",
                    "n_target",
                    "data",
                    "dense_prefix",
                    "loss",
                    "flops",
                    "flops_continuation",
                )
            }
            | {
                "scratch_loss": scratch,
                "dense_loss": dense,
                "scratch_loss_at_continuation": scratch_cont,
            }
        )
    return out


def frontier(points: list[dict[str, Any]], method: str) -> list[tuple[float, float]]:
    """The method's compute frontier: (flops, loss) of the runs no cheaper run
    of the same method beats, by increasing compute."""
    best, out = math.inf, []
    for p in sorted((p for p in points if p["method"] == method), key=lambda p: p["flops"]):
        if p["loss"] < best:
            best = p["loss"]
            out.append((p["flops"], p["loss"]))
    return out


# Inverting the law in D: L(S, N, D) = L(S, N, inf) + (aD / D)^bD, so the D that
# reaches `loss` solves (aD / D)^bD = loss - L(S, N, inf), i.e.
# D = aD / (loss - L(S, N, inf))^(1/bD); no D reaches a loss at or below the
# law's value at infinite data.
def scratch_compute_for_loss(
    law: Law, sparsity: float, n_nonzero: float, loss: float, flops: str = "sparse"
) -> float:
    """Compute (the law's unit) sparse training from scratch at (S, N) needs to
    reach `loss` under a from-scratch law: the D solving L(S, N, D) = loss, as
    6 N D c_mul(S). inf when that size and sparsity never reach it."""
    k = law.coefficients
    left = loss - float(
        law.predict(sparsity, n_nonzero, np.inf)
    )  # what the data term must still give
    if left <= 0:
        return math.inf
    data = k["aD"] / left ** (1.0 / k["bD"])
    return float(6.0 * n_nonzero * data * c_mul(sparsity, flops))


# ---- the pruned law ------------------------------------------------------------------
def fit_pruned_law(
    points: Points,
    options: FitOptions | None = None,
    *,
    n_boot: int = 200,
    progress=None,
    derived=None,
):
    """laws.uncertainty.assess on dense runs (dense_tokens 0) and pruned-from-dense runs
    (S > 0, D the total data): the sparse law in log space (Huber delta 1e-3)
    with a largest-N holdout and bootstrap intervals; `options` gives the seed,
    units and tokens_per_unit. The law's fit metadata records the dense prefixes
    and dense fractions D0 / D it was fitted on (what `plan_from_dense` checks)."""
    from sparsescale.laws.uncertainty.assess import assess

    if points.dense_tokens is None:
        raise SparsescaleError("dense_tokens: the points carry no dense tokens column")
    S, D, D0 = points.sparsity, points.data, points.dense_tokens
    pruned = D0 > 0
    if not pruned.any():
        raise SparsescaleError(
            "dense_tokens: no pruned-from-dense runs (every run has 0 dense tokens)"
        )
    if np.any(pruned & (S <= 0)):
        raise SparsescaleError("a pruned-from-dense run must have S > 0", param="sparsity")
    # form, space and delta are fixed: the sparse law in log space with delta
    # 1e-3, as the paper fits language; plan_from_dense reads that form's D term.
    # Only the seed, units and tokens_per_unit come from `options`.
    options = (options or FitOptions()).replace(form="sparse", space="log", delta=1e-3)
    result = assess(points, options, n_boot=n_boot, progress=progress, derived=derived)
    # the law holds at the dense fractions D0 / D it saw: a plan far outside
    # them (plan_from_dense marks it `extrapolated`) reaches beyond the data
    fractions = D0[pruned] / D[pruned]
    result.law.fit = dict(result.law.fit or {}) | {
        "from_dense": {
            "data": "total: dense prefix + pruned continuation",
            "dense_prefixes": sorted({float(v) for v in D0[pruned]}),
            "dense_fraction": [float(fractions.min()), float(fractions.max())],
            "n_pruned_runs": int(pruned.sum()),
            "n_dense_runs": int((~pruned & (S == 0)).sum()),
        }
    }
    return result


def from_dense_info(law: Law) -> dict[str, Any] | None:
    """The pruned-law metadata of a law file, or None for any other law."""
    info = (law.fit or {}).get("from_dense")
    if not (isinstance(info, dict) and "dense_fraction" in info):
        return None
    fr = info["dense_fraction"]  # a law file is user input: [low, high] is checked, not trusted
    if (
        not isinstance(fr, list)
        or len(fr) != 2
        or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v <= 1 for v in fr
        )
        or fr[0] > fr[1]
    ):
        raise SparsescaleError(
            f"law {law.name}: fit.from_dense.dense_fraction must be [low, high], two fractions "
            f"with 0 <= low <= high <= 1, got {json.dumps(fr)[:60]}"
        )
    return info


# ---- the practitioner's plan ---------------------------------------------------------
@dataclass
class FromDensePlan:
    """Prune a dense model of n_params (dense block parameters, the law's N at
    S = 0) trained on dense_data to `sparsity`, continuing on continue_data
    within `compute` (the law's unit; FLOPs when D is in tokens)."""

    n_params: float
    dense_data: float
    compute: float
    flops: str
    sparsity: float
    n_nonzero: float
    continue_data: float
    total_data: float
    dense_fraction: float  # D0 / (D0 + D1): compare with the law's fitted range
    loss: float
    dense_continue_data: float  # the alternative: continue dense on the same compute
    dense_loss: float
    fitted_dense_fraction: tuple[float, float]
    intervals: dict[str, tuple[float, float]] | None = field(default=None)

    @property
    def extrapolated(self) -> bool:
        lo, hi = self.fitted_dense_fraction
        # slack of a factor 1.25 either side (0.8 = 1 / 1.25): a plan just outside
        # the fitted fractions is not yet called an extrapolation
        return not (lo * 0.8 <= self.dense_fraction <= hi * 1.25)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["extrapolated"] = self.extrapolated
        return out


# The continuation's cost. The dense model of n_params weights is pruned while
# it keeps training: over the continuation D1 the schedule ramps from S = 0 to
# the final S, so a step multiplies n_params (1 - s(t)) weights under sparse
# FLOPs. With N = n_params (1 - S) non-zeros at the end and f the schedule's
# mean sparsity fraction,
#     C = 6 n_params D1 (1 - f S) = 6 N D1 (1 - f S) / (1 - S) = 6 N D1 c_mul(S),
# so D1 = C / (6 n_params (1 - S) c_mul(S)).
def continuation_data(
    n_params, compute, sparsity, flops: str = "sparse", start: float = 0.25, end: float = 0.75
):
    """D1 that `compute` buys when a dense model of n_params is pruned to S while
    it trains: the sparse phase costs 6 N (1 - S) D1 c_mul(S), i.e. 6 N D1 times
    the schedule's mean density under sparse FLOPs."""
    S = np.asarray(sparsity, dtype=float)
    return compute / (6.0 * n_params * (1.0 - S) * c_mul(S, flops, start, end))


def _loss(law: Law, n_params, d0, compute, S, flops, start, end):
    # the law sees N = n_params (1 - S) non-zeros and the TOTAL data D0 + D1,
    # as it was fitted: the dense prefix counts toward D
    return law.predict(
        S, n_params * (1.0 - S), d0 + continuation_data(n_params, compute, S, flops, start, end)
    )


# The pruned law's loss along the budget is a function of S alone (N, D0 and C
# fixed): a global grid finds its basin, a bounded scalar search refines it.
def best_sparsity(
    law: Law,
    n_params: float,
    d0: float,
    compute: float,
    flops: str = "sparse",
    start: float = 0.25,
    end: float = 0.75,
) -> float:
    """argmin over S in [0, 1) of the pruned law's loss along the budget: a grid
    of 4001 sparsities, refined by a bounded search around the best."""
    from scipy.optimize import minimize_scalar

    grid = np.linspace(0.0, MAX_SPARSITY, 4001)
    losses = _loss(law, n_params, d0, compute, grid, flops, start, end)
    i = int(np.nanargmin(losses))
    # the bracket is one grid cell either side of the best grid point, so the
    # scalar search cannot leave that basin; its answer is kept only if better
    lo, hi = grid[max(i - 1, 0)], grid[min(i + 1, grid.size - 1)]
    res = minimize_scalar(
        lambda s: float(_loss(law, n_params, d0, compute, s, flops, start, end)),
        bounds=(lo, hi),
        method="bounded",
        options={"xatol": 1e-10},
    )
    return float(res.x) if res.fun <= losses[i] else float(grid[i])


def plan_from_dense(
    law: Law,
    n_params: float,
    d0: float,
    compute: float,
    flops: str = "sparse",
    start: float = 0.25,
    end: float = 0.75,
    level: float = 0.95,
) -> FromDensePlan:
    """The sparsity and continuation that minimise the pruned law's loss for a
    dense model of n_params trained on d0, given `compute` for the continuation
    (the dense model is already paid for). Intervals (when the law carries
    uncertainty): losses from the calibrated prediction interval, S and D1 by
    re-planning under every coefficient draw."""
    info = from_dense_info(law)
    if info is None:
        raise SparsescaleError(
            f"law {law.name or law.form}: not a pruned-from-dense law (no fit.from_dense); "
            "use the pruned-law.json a report of a pretrained sweep writes"
        )
    for name, value in (("n_params", n_params), ("dense_data", d0), ("compute", compute)):
        if not (value > 0 and math.isfinite(value)):
            raise SparsescaleError(f"must be a positive number, got {value}", param=name)
    # the continuation the budget buys at S = 0 both prices the dense alternative
    # and tests the budget: under MIN_CONTINUATION x D0 there is nothing to prune over
    d1_dense = float(continuation_data(n_params, compute, 0.0, flops, start, end))
    if d1_dense < MIN_CONTINUATION * d0:
        raise SparsescaleError(
            f"buys {d1_dense:.3g} of continuation data, under {MIN_CONTINUATION:g} x the "
            f"{d0:.3g} already trained: nothing to prune over",
            param="compute",
        )
    S = best_sparsity(law, n_params, d0, compute, flops, start, end)
    d1 = float(continuation_data(n_params, compute, S, flops, start, end))
    plan = FromDensePlan(
        n_params=n_params,
        dense_data=d0,
        compute=compute,
        flops=str(flops),
        sparsity=S,
        n_nonzero=n_params * (1.0 - S),
        continue_data=d1,
        total_data=d0 + d1,
        dense_fraction=d0 / (d0 + d1),
        loss=float(_loss(law, n_params, d0, compute, S, flops, start, end)),
        dense_continue_data=d1_dense,
        dense_loss=float(_loss(law, n_params, d0, compute, 0.0, flops, start, end)),
        fitted_dense_fraction=tuple(info["dense_fraction"]),
    )
    if law.uncertainty is not None:
        plan.intervals = _plan_intervals(law, plan, start, end, level)
    return plan


def _plan_intervals(law: Law, plan: FromDensePlan, start: float, end: float, level: float):
    unc = law.uncertainty
    lo, hi = unc.loss_interval(law, plan.sparsity, plan.n_nonzero, plan.total_data, level)
    dlo, dhi = unc.loss_interval(
        law, 0.0, plan.n_params, plan.dense_data + plan.dense_continue_data, level
    )
    args = (plan.n_params, plan.dense_data, plan.compute, plan.flops, start, end)
    # S re-planned under every draw; D1 then at the two ends of S's interval:
    # D1 = C / (6 n_params (1 - S) c_mul(S)) is C / (6 n_params (1 - f S)) under
    # sparse FLOPs (rising in S) and C / (6 n_params) under dense (flat), so its
    # extremes are at the ends
    s_lo, s_hi = unc.quantity_interval(law, lambda lw: best_sparsity(lw, *args), level)
    d1 = [
        float(continuation_data(plan.n_params, plan.compute, s, plan.flops, start, end))
        for s in (s_lo, s_hi)
    ]
    return {
        "loss": (float(lo), float(hi)),
        "dense_loss": (float(dlo), float(dhi)),
        "sparsity": (s_lo, s_hi),
        "continue_data": (min(d1), max(d1)),
    }
