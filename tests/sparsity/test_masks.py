import math

import numpy as np
import pytest
import torch

from sparsescale.errors import SparsescaleError
from sparsescale.sparsity.masks import (
    erk_sparsities,
    global_magnitude_masks,
    magnitude_mask,
    n_kept,
    nm_priority,
    parse_pattern,
)


def reference_mask(w: np.ndarray, sparsity: float) -> np.ndarray:
    """Brute force: rank by (-|w|, flat index), keep the first round(numel(1-s))."""
    flat = np.abs(w).ravel()
    ranked = sorted(range(flat.size), key=lambda i: (-flat[i], i))
    keep = np.zeros(flat.size, dtype=bool)
    keep[ranked[: int(math.floor(flat.size * (1 - sparsity) + 0.5))]] = True
    return keep.reshape(w.shape)


@pytest.mark.parametrize("shape", [(7, 13), (1, 5), (31, 17), (4, 3, 6)])
@pytest.mark.parametrize("sparsity", [0.0, 0.3, 0.5, 0.75, 0.875, 0.99])
def test_unstructured_matches_brute_force_with_ties(shape, sparsity):
    gen = torch.Generator().manual_seed(0)
    # Few distinct values: many ties, so tie-breaking is exercised.
    w = torch.randint(-3, 4, shape, generator=gen).float()
    mask = magnitude_mask(w, sparsity)
    assert mask.dtype == torch.bool and mask.shape == w.shape
    np.testing.assert_array_equal(mask.numpy(), reference_mask(w.numpy(), sparsity))


def test_n_kept_rounds_half_up_and_survives_float_error():
    assert n_kept(10, 0.7) == 3  # 10 * 0.30000000000000004
    assert n_kept(10, 0.25) == 8  # 7.5 rounds up
    assert n_kept(1000, 0.875) == 125
    assert n_kept(3, 0.5) == 2


def test_never_revives_pruned_entries():
    w = torch.randn(20, 20, generator=torch.Generator().manual_seed(1))
    alive = magnitude_mask(w, 0.5)
    w2 = torch.randn(20, 20, generator=torch.Generator().manual_seed(2)) * alive  # pruned = 0
    w2[~alive] = 100.0  # even a huge value at a pruned position must stay pruned
    new = magnitude_mask(w2, 0.7, alive=alive)
    assert not (new & ~alive).any()
    assert int(new.sum()) == n_kept(400, 0.7)


@pytest.mark.parametrize("n,m", [(2, 4), (1, 4), (4, 8), (2, 8), (3, 4)])
def test_nm_priority_is_exact_top_n_per_group(n, m):
    w = torch.randn(6, 4 * m, generator=torch.Generator().manual_seed(n * 10 + m))
    keep = nm_priority(w, n, m)
    groups_w, groups_k = w.abs().reshape(-1, m), keep.reshape(-1, m)
    assert (groups_k.sum(1) == n).all()
    smallest_kept = torch.where(groups_k, groups_w, torch.inf).min(1).values
    largest_pruned = torch.where(groups_k, -torch.inf, groups_w).max(1).values
    assert (smallest_kept >= largest_pruned).all()


def test_gradual_nm_priority_then_magnitude():
    # One row, two groups of 4 (2:4). Group A holds the four largest weights.
    w = torch.tensor([[9.0, 8.0, 7.0, 6.0, 0.5, 0.4, 0.3, 0.2]])
    # At 25% sparsity 6 of 8 are kept: the 2+2 priority entries, then the two
    # largest of the rest by magnitude (7 and 6, both in group A).
    mask = magnitude_mask(w, 0.25, nm=(2, 4))
    assert mask.tolist() == [[True, True, True, True, True, True, False, False]]
    assert magnitude_mask(w, 0.5, nm=(2, 4)).tolist() == [
        [True, True, False, False, True, True, False, False]
    ]
    # Beyond 1 - n/m: a subset of the n:m mask, by magnitude.
    assert magnitude_mask(w, 0.75, nm=(2, 4)).tolist() == [
        [True, True, False, False, False, False, False, False]
    ]


def test_global_magnitude_is_one_threshold():
    gen = torch.Generator().manual_seed(3)
    weights = {"a": torch.randn(10, 8, generator=gen) * 3, "b": torch.randn(5, 9, generator=gen)}
    masks = global_magnitude_masks(weights, 0.6)
    total = sum(m.numel() for m in masks.values())
    kept = sum(int(m.sum()) for m in masks.values())
    assert kept == n_kept(total, 0.6)
    smallest_kept = min(float(weights[k].abs()[masks[k]].min()) for k in weights)
    largest_pruned = max(float(weights[k].abs()[~masks[k]].max()) for k in weights)
    assert smallest_kept >= largest_pruned
    # The larger-scale tensor keeps more: distribution is not uniform.
    assert masks["a"].float().mean() > masks["b"].float().mean()


def test_erk_distribution():
    shapes = {"small": (8, 8), "wide": (64, 256), "big": (256, 256)}
    out = erk_sparsities(shapes, 0.8)
    numel = {k: math.prod(s) for k, s in shapes.items()}
    kept = sum(numel[k] * (1 - out[k]) for k in shapes)
    assert kept == pytest.approx(0.2 * sum(numel.values()))
    # Density proportional to (fan_in + fan_out) / (fan_in * fan_out) for non-capped ones.
    ratio = (1 - out["wide"]) / (1 - out["big"])
    assert ratio == pytest.approx((320 / (64 * 256)) / (512 / 256**2))
    # The tiny tensor would exceed density 1: it stays dense.
    assert out["small"] == 0.0


@pytest.mark.parametrize("pattern", ["4:4", "5:4", "0:4", "2-4", "blocky", "n:m"])
def test_bad_patterns(pattern):
    with pytest.raises(SparsescaleError, match="pattern"):
        parse_pattern(pattern)


def test_patterns_parse():
    assert parse_pattern(None) is None and parse_pattern("unstructured") is None
    assert parse_pattern("2:4") == (2, 4) and parse_pattern(" 3 : 8 ") == (3, 8)
