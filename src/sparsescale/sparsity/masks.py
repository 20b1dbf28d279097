"""Magnitude masks: unstructured, global, n:m and gradual n:m; ERK distribution.

A mask is a bool tensor shaped like its weight (1 byte per weight): True = kept.
Every mask function takes the previous mask (`alive`) and keeps a subset of it:
a mask never grows, whatever sparsity is asked for, so pruned weights never come
back, even when many weights tie at zero.

Ordering is deterministic: weights are ranked by (alive, n:m priority, |w|,
lower flat index first).

n:m pattern: n weights KEPT in every group of m consecutive weights along the
input dimension (the last dimension of a Linear weight, shape (out, in)); 2:4 keeps
2 of every 4.
"""

from __future__ import annotations

import math

import torch

from sparsescale.errors import SparsescaleError
from sparsescale.units import parse_pattern as _parse_pattern

def parse_pattern(pattern: str | None) -> tuple[int, int] | None:
    """None / "unstructured" -> None; "n:m" -> (n, m) with 0 < n < m: n weights
    kept in every group of m consecutive weights along the input dimension."""
    return _parse_pattern(pattern, "pattern")


def n_kept(numel: int, sparsity: float) -> int:
    """Number of weights kept at `sparsity`: round(numel * (1 - sparsity)), halves up."""
    # The tiny epsilon absorbs float error such as 1 - 0.7 = 0.30000000000000004
    # so that exact products like 10 * 0.3 land on the intended integer.
    return int(math.floor(numel * (1.0 - sparsity) + 0.5 + 1e-9))


def check_nm_shape(name: str, shape: tuple[int, ...], n: int, m: int) -> None:
    """Raise if `m` does not divide the input (last) dimension of weight `name`."""
    if len(shape) < 2 or shape[-1] % m != 0:
        raise SparsescaleError(
            f"tensor {name} with shape {tuple(shape)}: n:m pattern {n}:{m} needs the input "
            f"dimension (last) to be a multiple of {m}"
        )


def _top_k(values: torch.Tensor, k: int, candidates: torch.Tensor | None = None) -> torch.Tensor:
    """Bool mask of exactly `k` entries of the flat non-negative `values`, largest
    first, ties to the lower index; only `candidates` (if given) can be chosen
    (the caller guarantees k <= their count). Linear-time selection
    (kthvalue) instead of a full sort: masks are recomputed often."""
    numel = values.numel()
    if k <= 0:
        return torch.zeros(numel, dtype=torch.bool, device=values.device)
    keys = values.float()
    if candidates is not None:
        keys = torch.where(candidates, keys, torch.full_like(keys, -1.0))
    if k >= numel:
        return torch.ones(numel, dtype=torch.bool, device=values.device)
    threshold = torch.kthvalue(keys, numel - k + 1).values
    kept = keys > threshold
    ties = keys == threshold
    need = k - int(kept.sum())
    return kept | (ties & (ties.cumsum(0) <= need))


def _group_rank(keys: torch.Tensor) -> torch.Tensor:
    """Rank of each entry inside its row (0 = largest; ties: lower index first)."""
    m = keys.shape[-1]
    if m <= 8:
        # Column against column: m*(m-1) elementwise comparisons over the rows
        # beat a sort of many tiny rows (8x faster for 2:4 on CPU).
        cols = keys.unbind(-1)
        ranks = []
        for i in range(m):
            rank = torch.zeros(cols[i].shape, dtype=torch.uint8, device=keys.device)
            for j in range(m):
                if j != i:  # an earlier entry wins a tie, a later one must be larger
                    rank += cols[j] >= cols[i] if j < i else cols[j] > cols[i]
            ranks.append(rank)
        return torch.stack(ranks, dim=-1)
    order = torch.argsort(keys, dim=-1, descending=True, stable=True)
    return torch.empty_like(order).scatter_(-1, order, torch.arange(m, device=keys.device).expand_as(order))


def nm_priority(weight: torch.Tensor, n: int, m: int, alive: torch.Tensor | None = None) -> torch.Tensor:
    """The exact n:m mask: the n largest |w| (alive first) in every group of m
    consecutive weights along the last dimension (the input dimension of a
    weight in (out, in) layout), kept = True."""
    check_nm_shape("weight", tuple(weight.shape), n, m)
    keys = weight.detach().abs().float().reshape(-1, m)
    if alive is not None:  # dead entries rank below every live one
        keys = torch.where(alive.reshape(-1, m), keys, torch.full_like(keys, -1.0))
    return (_group_rank(keys) < n).reshape(weight.shape)


def _select(
    magnitude: torch.Tensor, k: int, alive: torch.Tensor | None, priority: torch.Tensor | None
) -> torch.Tensor:
    """Keep k of the flat `magnitude`: n:m `priority` entries first, then by
    magnitude; never an entry outside `alive` (k is capped at its count, so a
    mask never grows)."""
    if alive is not None:
        k = min(k, int(alive.sum()))
    if priority is None:
        return _top_k(magnitude, k, alive)
    first = priority if alive is None else priority & alive
    n_first = int(first.sum())
    if k == n_first:  # exactly n:m: the priority entries are the mask
        return first.clone()
    if k < n_first:
        return _top_k(magnitude, k, first)
    rest = ~priority if alive is None else alive & ~priority
    return first | _top_k(magnitude, k - n_first, rest)


def magnitude_mask(
    weight: torch.Tensor,
    sparsity: float,
    *,
    alive: torch.Tensor | None = None,
    nm: tuple[int, int] | None = None,
) -> torch.Tensor:
    """Keep the round(numel * (1 - sparsity)) largest |w| of one tensor, never
    more than `alive` holds (a mask never grows).

    With `nm=(n, m)` (n kept in every group of m consecutive weights along the
    last dimension, the input dimension of an (out, in) weight) this is gradual
    n:m: each group's n largest weights rank ahead of all others, the rest are
    pruned by magnitude. At sparsity 1 - n/m the result is exactly n:m; above
    it, a subset of the n:m mask. A weight stored (in, out) is passed transposed."""
    priority = None if nm is None else nm_priority(weight, nm[0], nm[1], alive).flatten()
    flat_alive = None if alive is None else alive.flatten()
    kept = _select(weight.detach().abs().flatten(), n_kept(weight.numel(), sparsity), flat_alive, priority)
    return kept.reshape(weight.shape)


def global_magnitude_masks(
    weights: dict[str, torch.Tensor],
    sparsity: float,
    *,
    alive: dict[str, torch.Tensor] | None = None,
    nm: tuple[int, int] | None = None,
) -> dict[str, torch.Tensor]:
    """One magnitude threshold over all tensors together: keep the
    round(total * (1 - sparsity)) largest |w| of the union (never more than the
    `alive` masks hold). With `nm`, each tensor's n:m priority entries rank
    first (see `magnitude_mask`)."""
    names = list(weights)
    sizes = [weights[k].numel() for k in names]
    magnitude = torch.cat([weights[k].detach().abs().flatten().float() for k in names])
    alive = alive or {}
    flat_alive = None
    if alive:
        flat_alive = torch.cat([
            alive[k].flatten() if k in alive else torch.ones(weights[k].numel(), dtype=torch.bool, device=magnitude.device)
            for k in names
        ])
    priority = None
    if nm is not None:
        priority = torch.cat([nm_priority(weights[k], nm[0], nm[1], alive.get(k)).flatten() for k in names])
    flat = _select(magnitude, n_kept(sum(sizes), sparsity), flat_alive, priority)
    return {k: chunk.reshape(weights[k].shape) for k, chunk in zip(names, flat.split(sizes))}


def erk_sparsities(shapes: dict[str, tuple[int, ...]], sparsity: float) -> dict[str, float]:
    """Erdos-Renyi-Kernel distribution: density of each tensor proportional to
    sum(shape) / prod(shape), scaled so the weighted mean sparsity is `sparsity`;
    tensors that would exceed density 1 stay dense and the rest are rescaled."""
    numel = {k: math.prod(s) for k, s in shapes.items()}
    raw = {k: sum(s) / numel[k] for k, s in shapes.items()}
    budget = (1.0 - sparsity) * sum(numel.values())
    dense: set[str] = set()
    while True:
        free = [k for k in shapes if k not in dense]
        if not free:
            break
        scale = (budget - sum(numel[k] for k in dense)) / sum(numel[k] * raw[k] for k in free)
        over = [k for k in free if scale * raw[k] > 1.0]
        if not over:
            break
        dense.update(over)
    return {k: 0.0 if k in dense else 1.0 - scale * raw[k] for k in shapes}


__all__ = [
    "parse_pattern",
    "n_kept",
    "check_nm_shape",
    "nm_priority",
    "magnitude_mask",
    "global_magnitude_masks",
    "erk_sparsities",
]
