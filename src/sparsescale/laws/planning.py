"""Planning with a fitted law: compute cost, optimal sparsity, equivalent size.

Cost model (arXiv 2309.08520, section 4): a run with N non-zero parameters at
sparsity S trained on D costs C = 6 N D c_mul(S) FLOPs, where c_mul converts
non-zeros into the parameters actually multiplied during training:

- "dense" accounting (no speed-up from sparsity): all N / (1 - S) weights.
- "sparse" accounting (sparsity exploited): the mean density over training.
  Under the cubic schedule that is 1 - f S with f the mean sparsity fraction
  below, so c_mul = (1 - f S) / (1 - S); f = 0.625 for the default 25%/75%.

Units. The planning functions take a budget `compute` in the law's own unit,
6 N D c_mul(S) with D as the law counts it (steps, images, tokens). That is a
FLOP count only when D is in tokens; `law_compute` converts FLOPs with the
law's `tokens_per_unit` (65,536 per T5 step, 197 per ViT image) and refuses a
law that lacks it, while budgets relative to the dense compute-optimal one
(`dense_optimal_compute`) need no conversion at all.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from sparsescale.errors import SparsescaleError
from sparsescale.laws.law import Law
from sparsescale.laws.schedule import cubic_mean_sparsity_fraction
from sparsescale.laws.uncertainty.intervals import z_score

FLOP_ACCOUNTINGS = ("sparse", "dense")
MAX_SPARSITY = 0.9995  # search limit; c_mul diverges at S = 1


def mean_sparsity_fraction(start: float = 0.25, end: float = 0.75) -> float:
    """Mean over training of s(t) / S for the cubic schedule: 3/4 (end - start)
    + (1 - end), 0.625 for the default ramp (derived in laws.schedule)."""
    return cubic_mean_sparsity_fraction(start, end)


# The cost model. Training a dense model of P parameters on D tokens costs
# about 6 P D FLOPs: 2 P per token for the forward pass (a multiply and an add
# per weight) and 4 P for the backward pass (gradients with respect to the
# activations and to the weights). A pruned layer holds N non-zeros out of
# P = N / (1 - S) weights. If its kernels skip the zeros, a step at sparsity
# s(t) costs 6 P (1 - s(t)) per token, and over training
#     C = 6 P D mean_t(1 - s(t)) = 6 P D (1 - f S) = 6 N D (1 - f S) / (1 - S),
# with f the schedule's mean sparsity fraction (laws.schedule: 0.625 for the
# cubic 25%-75% ramp). If they do not ("dense" accounting), every step costs
# 6 P: C = 6 N D / (1 - S). Both are C = 6 N D c_mul(S) with N the non-zeros.
def c_mul(sparsity, flops: str = "sparse", start: float = 0.25, end: float = 0.75):
    """FLOP multiplier c_mul(S) in C = 6 N D c_mul(S) (N = non-zeros). `flops`
    is "sparse", "dense" or a cost model (laws.costs) with its own c_mul."""
    S = np.asarray(sparsity, dtype=float)
    if not isinstance(flops, str):
        return flops.c_mul(S)
    if flops == "dense":
        return 1.0 / (1.0 - S)
    if flops == "sparse":
        f = mean_sparsity_fraction(start, end)
        return (1.0 - f * S) / (1.0 - S)
    raise SparsescaleError(f"expected sparse or dense, got {flops!r}", param="flops")


# d log c_mul / dS, used by the S_opt condition (optimal_data_ratio):
# dense: log c_mul = -log(1 - S), derivative 1 / (1 - S);
# sparse: log c_mul = log(1 - f S) - log(1 - S), derivative 1/(1-S) - f/(1-fS).
def dlog_c_mul(sparsity, flops: str = "sparse", start: float = 0.25, end: float = 0.75):
    """d log c_mul / dS."""
    S = np.asarray(sparsity, dtype=float)
    if not isinstance(flops, str):
        return flops.dlog_c_mul(S)
    if flops == "dense":
        return 1.0 / (1.0 - S)
    if flops == "sparse":
        f = mean_sparsity_fraction(start, end)
        return 1.0 / (1.0 - S) - f / (1.0 - f * S)
    raise SparsescaleError(f"expected sparse or dense, got {flops!r}", param="flops")


def training_flops(
    n_nonzero, data, sparsity, flops: str = "sparse", start: float = 0.25, end: float = 0.75
):
    """C = 6 N D c_mul(S)."""
    return (
        6.0
        * np.asarray(n_nonzero, dtype=float)
        * np.asarray(data, dtype=float)
        * c_mul(sparsity, flops, start, end)
    )


# Units of a budget. The law's D counts steps, images or tokens; C = 6 N D
# c_mul(S) with that D is the law's own compute unit. A FLOP budget divides by
# tokens_per_unit (a T5 step is 128 x 512 = 65,536 tokens, a ViT-B/16 image
# 14 x 14 patches + 1 class token = 197 tokens) to get there.
def law_compute(law: Law, compute_flops: float) -> float:
    """A budget in FLOPs -> the law's compute unit (6 N D c_mul with D in the law's unit)."""
    if law.tokens_per_unit is None:
        raise SparsescaleError(
            f"compute_flops: law {law.name or law.form} does not say what one unit of D "
            f"({law.units.get('D', 'data')}) "
            "costs (tokens_per_unit); give the budget as a multiple of the dense compute-optimal "
            "budget instead"
        )
    return float(compute_flops) / law.tokens_per_unit


def compute_in_flops(law: Law, compute: float) -> float | None:
    """A budget in the law's compute unit -> FLOPs, or None when the law lacks tokens_per_unit."""
    return None if law.tokens_per_unit is None else float(compute) * law.tokens_per_unit


def dense_optimal_compute(law: Law, n_nonzero):
    """C*(N) = 6 N D*(N) in the law's compute unit: the budget at which a dense
    model of N parameters is compute-optimal."""
    return 6.0 * np.asarray(n_nonzero, dtype=float) * chinchilla_data(law, n_nonzero)


def _require_sparse(law: Law) -> None:
    if law.spec.sparsity_factor is None:
        raise SparsescaleError(
            f"this needs a sparse-form law (it has aS, bS, cS); a {law.form} law has no sparsity "
            "term"
        )


# Equivalent dense size. At sparsity S the N-term is A F(S) N^-alpha; a dense
# model of size N_d has A N_d^-alpha. They match when N_d = N F(S)^(-1/alpha):
# N non-zeros at S are worth F(S)^(-1/alpha) times as many dense parameters.
def equivalent_dense_factor(law: Law, sparsity):
    """How many times more dense parameters reach the same N-term as N non-zeros
    at sparsity S: ((aS + cS) / (aS (1-S)^bS + cS))^(1/bN). At S -> 1 it tends
    to ((aS + cS) / cS)^(1/bN)."""
    _require_sparse(law)
    return (1.0 / law.sparsity_factor(sparsity)) ** (1.0 / law.dense_view()["alpha"])


# The Chinchilla line. At S = 0, L = A N^-alpha + (aD/D)^beta + E; along a
# budget C = 6 N D, D = C / (6 N), and dL/dN = 0 gives
#     alpha A N^-alpha = beta (aD / D)^beta,
# i.e. D*(N) = aD (beta / (alpha A))^(1/beta) N^(alpha/beta).
def chinchilla_data(law: Law, n_nonzero):
    """Compute-optimal D for a dense model of size N (the Chinchilla line):
    D*(N) = aD (bD / (bN A))^(1/bD) N^(bN/bD), from dL/dN = 0 at C = 6 N D."""
    d = law.dense_view()
    N = np.asarray(n_nonzero, dtype=float)
    # A law with no N term (bN = 0 or A = 0, as a bootstrap draw of a flat sweep
    # can be) never makes a larger model pay: D* is infinite, not an error.
    alpha, beta, A = (np.float64(d[k]) for k in ("alpha", "beta", "A"))
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        return d["aD"] * (beta / (alpha * A)) ** (1.0 / beta) * N ** (alpha / beta)


def optimal_data_ratio(
    law: Law, sparsity, flops: str = "sparse", start: float = 0.25, end: float = 0.75
):
    """D_S / D*: the data, relative to the Chinchilla-optimal D* for the same N,
    at which sparsity S is optimal. Independent of N, since both lines scale as
    N^(alpha/beta)."""
    # Every form with a sparsity term reads, at fixed S,
    #     L = A F(S) N^-alpha + (aD / D)^beta + E,
    # with A, alpha, aD, beta, E its dense view and F(0) = 1 (the sparse law:
    # F = (aS (1-S)^bS + cS) / (aS + cS); avgparam: F = g^-alpha, g = N_avg / N).
    # Along a budget C = 6 N D c_mul(S), D = C / (6 N c_mul(S)), so
    # dD/dS = -D (log c_mul)'. Setting dL/dS = 0:
    #     A F'(S) N^-alpha + beta (aD / D)^beta (log c_mul)' = 0
    #     (aD / D_S)^beta = A (-F') N^-alpha / (beta (log c_mul)').
    # The dense compute-optimal D* (dL/dN = 0 at S = 0 along C = 6 N D) has
    #     (aD / D*)^beta = alpha A N^-alpha / beta.
    # Dividing, N and A cancel:
    #     (D_S / D*)^beta = alpha (log c_mul)' / (-F'(S)).
    # For the sparse law -F' = aS bS (1-S)^(bS-1) / (aS + cS), the paper's
    # (aD / D)^bD c_mul'/c_mul bD = aS bS (1-S)^(bS-1) N^-bN. For avgparam
    # -F' = alpha g^-alpha (log g)', so (D_S / D*)^beta = g^alpha (log c_mul)' / (log g)';
    # with sparse FLOPs on the law's own schedule c_mul = g and D_S / D* = g^(alpha/beta).
    _require_sparse(law)
    d = law.dense_view()
    S = np.asarray(sparsity, dtype=float)
    # (D_S / D*)^beta = alpha (log c_mul)'(S) / (-F'(S)), see the derivation above
    return (d["alpha"] * dlog_c_mul(S, flops, start, end) / law.sparsity_factor_slope(S)) ** (
        1.0 / d["beta"]
    )


@dataclass
class OptimalPoint:
    """The best sparsity for a model with n_nonzero non-zeros and a compute budget."""

    n_nonzero: float
    compute: float  # the budget in the law's unit: 6 N D c_mul(S), D as the law counts it
    compute_flops: float | None  # the same budget in FLOPs (None: the law lacks tokens_per_unit)
    compute_vs_dense_optimal: float  # compute / C*(N), C* = 6 N D*(N)
    flops: str
    sparsity: float
    data: float  # D the budget buys at the optimal sparsity
    loss: float
    dense_loss: float  # the same N and C at S = 0
    dense_data: float
    equivalent_dense_size: float  # dense parameters that match the sparse model's N-term
    chinchilla_data: float  # compute-optimal D for a dense model of this N

    def to_dict(self) -> dict:
        return asdict(self)


# Along a fixed budget C, the data a run at (S, N) can afford is
# D = C / (6 N c_mul(S)): sparsity buys fewer tokens under dense accounting
# (c_mul grows as 1/(1-S)) and about the same under sparse accounting.
def _loss_along_budget(law: Law, S, N, C, flops, start, end):
    D = C / (6.0 * N * c_mul(S, flops, start, end))
    return law.predict(S, N, D), D


# Maps of S_opt (figures, contours) need it at thousands of (N, C) points at
# once. A fine grid at every point costs resolution x points evaluations;
# coarse-to-fine costs 4 sqrt(resolution) coarse values plus the fine grid
# over two coarse cells, 2 resolution / (4 sqrt(resolution)) = sqrt(resolution) / 2
# values, per point: about 200 instead of 2000 at the default, for the same
# accuracy when the loss is unimodal within a coarse cell.
def optimal_sparsity_grid(
    law: Law,
    n_nonzero,
    compute_flops,
    flops: str = "sparse",
    start: float = 0.25,
    end: float = 0.75,
    resolution: int = 2000,
) -> np.ndarray:
    """S_opt on a grid of S (vectorised over any broadcast shape of N and C),
    accurate to MAX_SPARSITY/resolution. For maps; `optimal_sparsity` refines one
    point. Coarse-to-fine: a grid of about sqrt(resolution) * 4 values, then a
    fine grid around each point's coarse minimum, in chunks of points so that
    memory stays small."""
    _require_sparse(law)
    N, C = np.broadcast_arrays(
        np.asarray(n_nonzero, dtype=float), np.asarray(compute_flops, dtype=float)
    )
    n_flat, c_flat = N.ravel(), C.ravel()
    coarse_n = int(min(resolution, max(16, 4 * math.sqrt(resolution))))
    coarse = np.linspace(0.0, MAX_SPARSITY, coarse_n)
    step = coarse[1] - coarse[0]
    fine_n = int(np.ceil(2 * step / (MAX_SPARSITY / resolution))) + 1
    offsets = np.linspace(-step, step, fine_n)
    out = np.empty(n_flat.size)
    for lo in range(0, n_flat.size, 4096):
        n_c, c_c = n_flat[lo : lo + 4096], c_flat[lo : lo + 4096]
        L, _ = _loss_along_budget(
            law, coarse[:, None], n_c[None, :], c_c[None, :], flops, start, end
        )
        centre = coarse[np.argmin(L, axis=0)]
        S = np.clip(centre[None, :] + offsets[:, None], 0.0, MAX_SPARSITY)
        L, _ = _loss_along_budget(law, S, n_c[None, :], c_c[None, :], flops, start, end)
        out[lo : lo + 4096] = S[np.argmin(L, axis=0), np.arange(S.shape[1])]
    return out.reshape(N.shape)


def _refined_argmin(
    loss_of, points: int = 4001, zoom_points: int = 21, xatol: float = 1e-10
) -> float:
    """argmin over S in [0, MAX_SPARSITY] of a vectorised loss_of(S): a grid of
    `points`, then grids of `zoom_points` over the two cells around the best point,
    each 10x finer than the last, until the bracket is under xatol. On a loss that
    is unimodal within one grid cell this is a bracketing search like Brent's (a
    few numpy calls instead of scipy's scalar loop and its import, which a
    bootstrap pays once per draw)."""
    grid = np.linspace(0.0, MAX_SPARSITY, points)
    L = loss_of(grid)
    i = int(np.argmin(L))
    s_best, l_best = float(grid[i]), float(L[i])
    lo, hi = grid[max(i - 1, 0)], grid[min(i + 1, grid.size - 1)]
    while hi - lo > xatol:
        zoom = np.linspace(lo, hi, zoom_points)
        Lz = loss_of(zoom)
        j = int(np.argmin(Lz))
        if Lz[j] <= l_best:
            s_best, l_best = float(zoom[j]), float(Lz[j])
        lo, hi = zoom[max(j - 1, 0)], zoom[min(j + 1, zoom_points - 1)]
    return s_best


# S_opt(N, C): the loss along the budget is L(S, N, C / (6 N c_mul(S))), a
# smooth function of one variable on [0, 1). It is not convex in general (the
# sparsity term falls while the data term rises), so a global grid finds the
# best cell and a zoom refines within it, rather than a local method from one
# starting point.
def optimal_sparsity(
    law: Law,
    n_nonzero: float,
    compute: float,
    flops: str = "sparse",
    start: float = 0.25,
    end: float = 0.75,
) -> OptimalPoint:
    """S_opt(N, C) = argmin over S in [0, 1) of L(S, N, C / (6 N c_mul(S))).

    compute: the budget in the law's unit (see the module docstring); for a
    budget in FLOPs pass `law_compute(law, flops)`."""
    _require_sparse(law)
    c_mul(0.0, flops, start, end)  # validates flops and the fractions
    N, C = float(n_nonzero), float(compute)
    if not (N > 0 and math.isfinite(N)):
        raise SparsescaleError(f"must be a positive number, got {n_nonzero}", param="n_nonzero")
    if not (C > 0 and math.isfinite(C)):
        raise SparsescaleError(f"must be a positive number, got {compute}", param="compute")
    s_best = _refined_argmin(lambda s: _loss_along_budget(law, s, N, C, flops, start, end)[0])
    loss, D = _loss_along_budget(law, s_best, N, C, flops, start, end)
    dense_loss, dense_D = _loss_along_budget(law, 0.0, N, C, flops, start, end)
    return OptimalPoint(
        n_nonzero=N,
        compute=C,
        compute_flops=compute_in_flops(law, C),
        compute_vs_dense_optimal=float(C / dense_optimal_compute(law, N)),
        flops=str(flops),
        sparsity=float(s_best),
        data=float(D),
        loss=float(loss),
        dense_loss=float(dense_loss),
        dense_data=float(dense_D),
        equivalent_dense_size=float(N * equivalent_dense_factor(law, s_best)),
        chinchilla_data=float(chinchilla_data(law, N)),
    )


# Intervals of a plan. The loss at S_opt carries the law's full prediction
# interval (coefficient draws and the model error for the extrapolation
# distance); S_opt, D and the equivalent size are re-planned under every
# bootstrap draw of the coefficients, and their percentile interval reported
# (the model error has no defined effect on an argmin).
def optimal_intervals(
    law: Law,
    point,
    level: float = 0.95,
    flops: str = "sparse",
    start: float = 0.25,
    end: float = 0.75,
) -> dict[str, tuple[float, float]] | None:
    """Intervals for every number of an OptimalPoint (from `planning.optimal_sparsity`
    on this law), or None when the law carries no uncertainty.

    loss and dense_loss: full prediction intervals (coefficients + model error).
    sparsity, data, equivalent_dense_size: the same budget re-planned under every
    coefficient draw (coefficient uncertainty only)."""
    unc = law.uncertainty
    if unc is None:
        return None
    z_score(level)
    plans = []
    for d in unc.draw_laws(law):
        try:
            plans.append(
                optimal_sparsity(
                    d, point.n_nonzero, point.compute, flops=flops, start=start, end=end
                )
            )
        except SparsescaleError:
            continue
    out = {}
    for name in ("sparsity", "data", "equivalent_dense_size"):
        vals = np.array([getattr(p, name) for p in plans], dtype=float)
        vals = vals[np.isfinite(vals)]
        ref = float(getattr(point, name))
        lo, hi = (
            np.percentile(vals, [(1 - level) / 2 * 100, (1 + level) / 2 * 100])
            if vals.size >= 2
            else (ref, ref)
        )
        out[name] = (float(min(lo, ref)), float(max(hi, ref)))
    for name, S, D in (("loss", point.sparsity, point.data), ("dense_loss", 0.0, point.dense_data)):
        lo, hi = unc.loss_interval(law, S, point.n_nonzero, D, level)
        out[name] = (float(lo), float(hi))
    return out
