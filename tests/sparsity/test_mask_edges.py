"""Edges of the mask functions that the brute-force comparisons do not reach.

Written against the surviving mutants of sparsity/masks.py (see
docs/mutation.md): refusal messages checked word for word, shapes whose last
dimension is not their second, 1-D weights, the rounding tolerance of
`n_kept`, ERK's rescaling. Every expected value is worked out by hand in a
comment or comes from a brute-force reference written here.
"""

from __future__ import annotations

import re

import pytest
import torch

from sparsescale.errors import SparsescaleError
from sparsescale.sparsity.masks import (
    check_nm_shape,
    check_transposable_shape,
    erk_sparsities,
    global_magnitude_masks,
    magnitude_mask,
    n_kept,
    nm_priority,
    parse_pattern,
)


def nm_by_hand(w: torch.Tensor, n: int, m: int, alive: torch.Tensor | None = None) -> torch.Tensor:
    """Brute force: in every group of m along the last dimension, rank by
    (alive first, larger |w| first, lower index first) and keep the first n.
    Dead entries all rank alike (by index only): their |w| does not matter."""
    flat = w.abs().reshape(-1, m).tolist()
    live = [[True] * m] * len(flat) if alive is None else alive.reshape(-1, m).tolist()
    keep = []
    for values, ok in zip(flat, live):
        order = sorted(range(m), key=lambda i: (not ok[i], -values[i] if ok[i] else 0.0, i))
        keep.append([i in order[:n] for i in range(m)])
    return torch.tensor(keep).reshape(w.shape)


def test_a_bad_pattern_is_refused_under_the_name_pattern():
    with pytest.raises(SparsescaleError) as err:
        parse_pattern("4:2")
    assert str(err.value) == "pattern: pattern '4:2': need 0 < n < m (n weights kept in every m)"


def test_transposable_shape_refusal_word_for_word():
    with pytest.raises(SparsescaleError) as err:
        check_transposable_shape("blocks.0.fc", (6, 8), 2, 4)
    assert str(err.value) == (
        "tensor blocks.0.fc with shape (6, 8): transposable pattern 2:4T needs a 2-D weight whose "
        "output and input dimensions are both multiples of 4"
    )


@pytest.mark.parametrize("shape", [(6, 8), (8, 6), (8,), (4, 4, 4)])
def test_transposable_shape_needs_2d_and_both_dimensions_multiples_of_m(shape):
    with pytest.raises(SparsescaleError):
        check_transposable_shape("w", shape, 2, 4)
    check_transposable_shape("w", (8, 12), 2, 4)


def test_nm_shape_refusal_word_for_word():
    with pytest.raises(SparsescaleError) as err:
        check_nm_shape("blocks.1.attn", (8, 6), 2, 4)
    assert str(err.value) == (
        "tensor blocks.1.attn with shape (8, 6): n:m pattern 2:4 needs the input "
        "dimension (last) to be a multiple of 4"
    )


def test_nm_shape_checks_the_last_dimension_not_the_second():
    # 3-D: the second dimension (4) is a multiple of 4 but the last (6) is not -> refused;
    # the other way round (6, then 4 last) is fine
    with pytest.raises(SparsescaleError, match=re.escape("(2, 4, 6)")):
        check_nm_shape("w", (2, 4, 6), 2, 4)
    check_nm_shape("w", (2, 6, 4), 2, 4)


def test_nm_shape_refuses_a_1d_weight_even_of_a_multiple_of_m():
    # a bias of 8 has no (out, in) layout: refused although 8 % 4 == 0
    with pytest.raises(SparsescaleError, match=re.escape("shape (8,)")):
        check_nm_shape("b", (8,), 2, 4)


def test_n_kept_tolerance_absorbs_float_error_only():
    # 10 * (1 - 0.7) = 3.0000000000000004 and 10 * (1 - 0.75) = 2.5 -> 3 (halves up)
    assert n_kept(10, 0.7) == 3 and n_kept(10, 0.75) == 3
    # a real deficit below the half is not float error: 1 * (1 - s) = 0.5 - 1.5e-9
    # rounds to 0, and 0.5 - 0.5e-9 (inside the 1e-9 tolerance) to 1
    assert n_kept(1, 0.5 + 1.5e-9) == 0
    assert n_kept(1, 0.5 + 0.5e-9) == 1


@pytest.mark.parametrize("n,m", [(2, 4), (1, 4), (3, 8), (5, 16), (4, 16)])
def test_nm_priority_ties_go_to_the_lower_index(n, m):
    # small integers: most groups hold ties, and one group is all equal
    w = torch.randint(0, 3, (5, 2 * m), generator=torch.Generator().manual_seed(m + n)).float()
    w[0, :m] = 1.0
    w[1] = -w[1]   # |w| ranks, not w
    assert torch.equal(nm_priority(w, n, m), nm_by_hand(w, n, m))
    # an all-equal group keeps its first n
    assert nm_priority(w, n, m)[0, :m].tolist() == [True] * n + [False] * (m - n)


@pytest.mark.parametrize("n,m", [(2, 4), (5, 16)])
def test_nm_priority_with_alive_ranks_dead_entries_last(n, m):
    gen = torch.Generator().manual_seed(7)
    w = torch.randn(4, 2 * m, generator=gen)
    alive = torch.rand(4, 2 * m, generator=gen) > 0.4
    assert torch.equal(nm_priority(w, n, m, alive), nm_by_hand(w, n, m, alive))
