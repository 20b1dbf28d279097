"""Magnitude masks: unstructured, global, n:m and gradual n:m; ERK distribution.

A mask is a bool tensor shaped like its weight (1 byte per weight): True = kept.
Every mask function takes the previous mask (`alive`) and never revives an entry
that it pruned, so sparsity only grows and pruned weights never come back, even
when many weights tie at zero.

Ordering is deterministic: weights are ranked by (alive, n:m priority, |w|,
lower flat index first), using stable sorts.

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


def _ranked(magnitude: torch.Tensor, *tiers: torch.Tensor) -> torch.Tensor:
    """Indices along the last dim, best first: by the last tier, then earlier
    tiers, then magnitude, then lower index (stable sorts make it lexicographic)."""
    order = torch.argsort(magnitude, dim=-1, descending=True, stable=True)
    for tier in tiers:
        tier_sorted = torch.gather(tier, -1, order)
        order = torch.gather(order, -1, torch.argsort(tier_sorted, dim=-1, descending=True, stable=True))
    return order


def _keep_first(order: torch.Tensor, count: int) -> torch.Tensor:
    mask = torch.zeros(order.shape, dtype=torch.bool, device=order.device)
    mask[order[:count]] = True
    return mask


def nm_priority(weight: torch.Tensor, n: int, m: int, alive: torch.Tensor | None = None) -> torch.Tensor:
    """The exact n:m mask: the n largest |w| (alive first) in every group of m
    consecutive weights along the input (last) dimension, kept = True."""
    check_nm_shape("weight", tuple(weight.shape), n, m)
    groups = weight.detach().abs().reshape(-1, m)
    tiers = () if alive is None else (alive.reshape(-1, m).to(torch.uint8),)
    order = _ranked(groups, *tiers)
    keep = torch.zeros_like(groups, dtype=torch.bool)
    keep.scatter_(-1, order[:, :n], True)
    return keep.reshape(weight.shape)


def _tier(alive: torch.Tensor | None, priority: torch.Tensor | None, numel: int, device) -> torch.Tensor | None:
    if alive is None and priority is None:
        return None
    tier = torch.zeros(numel, dtype=torch.uint8, device=device)
    if alive is not None:
        tier += alive.flatten().to(torch.uint8) * 2  # alive dominates priority
    if priority is not None:
        tier += priority.flatten().to(torch.uint8)
    return tier


def magnitude_mask(
    weight: torch.Tensor,
    sparsity: float,
    *,
    alive: torch.Tensor | None = None,
    nm: tuple[int, int] | None = None,
) -> torch.Tensor:
    """Keep the round(numel * (1 - sparsity)) largest |w| of one tensor.

    With `nm=(n, m)` (n kept in every group of m consecutive weights along the
    input dimension) this is gradual n:m: each group's n largest weights rank
    ahead of all others, the rest are pruned by magnitude. At sparsity 1 - n/m
    the result is exactly n:m; above it, a subset of the n:m mask."""
    numel = weight.numel()
    priority = None if nm is None else nm_priority(weight, nm[0], nm[1], alive)
    tier = _tier(alive, priority, numel, weight.device)
    magnitude = weight.detach().abs().flatten()
    order = _ranked(magnitude) if tier is None else _ranked(magnitude, tier)
    return _keep_first(order, n_kept(numel, sparsity)).reshape(weight.shape)


def global_magnitude_masks(
    weights: dict[str, torch.Tensor],
    sparsity: float,
    *,
    alive: dict[str, torch.Tensor] | None = None,
    nm: tuple[int, int] | None = None,
) -> dict[str, torch.Tensor]:
    """One magnitude threshold over all tensors together: keep the
    round(total * (1 - sparsity)) largest |w| of the union. With `nm`, each
    tensor's n:m priority entries rank first (see `magnitude_mask`)."""
    names = list(weights)
    sizes = [weights[k].numel() for k in names]
    magnitude = torch.cat([weights[k].detach().abs().flatten().float() for k in names])
    tiers = []
    for k in names:
        a = None if alive is None else alive.get(k)
        p = None if nm is None else nm_priority(weights[k], nm[0], nm[1], a)
        t = _tier(a, p, weights[k].numel(), weights[k].device)
        tiers.append(
            t if t is not None else torch.zeros(weights[k].numel(), dtype=torch.uint8, device=weights[k].device)
        )
    tier = torch.cat(tiers)
    order = _ranked(magnitude, tier) if bool(tier.any()) else _ranked(magnitude)
    flat = _keep_first(order, n_kept(sum(sizes), sparsity))
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
