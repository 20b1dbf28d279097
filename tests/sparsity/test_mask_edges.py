"""Edges of the mask functions that the brute-force comparisons do not reach.

Written against the surviving mutants of sparsity/masks.py (see
docs/mutation.md): refusal messages checked word for word, shapes whose last
dimension is not their second, 1-D weights, the rounding tolerance of
`n_kept`, ERK's rescaling. Every expected value is worked out by hand in a
comment or comes from a brute-force reference written here.
"""

from __future__ import annotations

import math
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
    w[1] = -w[1]  # |w| ranks, not w
    assert torch.equal(nm_priority(w, n, m), nm_by_hand(w, n, m))
    # an all-equal group keeps its first n
    assert nm_priority(w, n, m)[0, :m].tolist() == [True] * n + [False] * (m - n)


@pytest.mark.parametrize("n,m", [(2, 4), (5, 16)])
def test_nm_priority_with_alive_ranks_dead_entries_last(n, m):
    gen = torch.Generator().manual_seed(7)
    w = torch.randn(4, 2 * m, generator=gen)
    alive = torch.rand(4, 2 * m, generator=gen) > 0.4
    assert torch.equal(nm_priority(w, n, m, alive), nm_by_hand(w, n, m, alive))


def test_priority_functions_name_the_weight_in_their_refusals():
    from sparsescale.sparsity.masks import transposable_priority

    with pytest.raises(
        SparsescaleError, match=re.escape("tensor weight with shape (3, 6): n:m pattern 2:4 needs")
    ):
        nm_priority(torch.ones(3, 6), 2, 4)
    with pytest.raises(
        SparsescaleError,
        match=re.escape("tensor weight with shape (6, 8): transposable pattern 2:4T"),
    ):
        transposable_priority(torch.ones(6, 8), 2, 4)


def magnitude_by_hand(
    weights: list[torch.Tensor],
    sparsity: float,
    alive: list[torch.Tensor | None],
    nm: tuple[int, int] | None,
) -> list[torch.Tensor]:
    """Brute force over the union of tensors: keep k = round(total (1 - s)) (halves up),
    never more than the live entries, ranked by (live first, n:m priority entries first,
    larger |w|, lower flat index)."""
    flat_w = torch.cat([w.abs().flatten() for w in weights]).tolist()
    flat_alive = torch.cat(
        [
            torch.ones(w.numel(), dtype=torch.bool) if a is None else a.flatten()
            for w, a in zip(weights, alive)
        ]
    ).tolist()
    if nm is None:
        prio = [False] * len(flat_w)
    else:
        prio = torch.cat([nm_by_hand(w, *nm, a).flatten() for w, a in zip(weights, alive)]).tolist()
    total = len(flat_w)
    k = min(int(math.floor(total * (1 - sparsity) + 0.5 + 1e-9)), sum(flat_alive))
    order = sorted(
        range(total),
        key=lambda i: (not flat_alive[i], not (prio[i] and flat_alive[i]), -flat_w[i], i),
    )
    keep = torch.zeros(total, dtype=torch.bool)
    keep[order[:k]] = True
    out, at = [], 0
    for w in weights:
        out.append(keep[at : at + w.numel()].reshape(w.shape))
        at += w.numel()
    return out


@pytest.mark.parametrize("sparsity", [0.0, 0.3, 0.5, 0.6, 0.75, 0.9])
@pytest.mark.parametrize("nm", [None, (2, 4), (1, 4)])
@pytest.mark.parametrize("with_alive", [False, True])
def test_magnitude_mask_matches_brute_force(sparsity, nm, with_alive):
    gen = torch.Generator().manual_seed(int(sparsity * 100) + 7 * with_alive)
    w = torch.randint(-4, 5, (6, 16), generator=gen).float()  # many ties, zeros included
    alive = (torch.rand(6, 16, generator=gen) > 0.35) if with_alive else None
    if nm is not None and sparsity < 1 - nm[0] / nm[1] - 1e-9:
        sparsity = 1 - nm[0] / nm[1]  # below the pattern's own sparsity: not asked of gradual n:m
    expected = magnitude_by_hand([w], sparsity, [alive], nm)[0]
    assert torch.equal(magnitude_mask(w, sparsity, alive=alive, nm=nm), expected)


@pytest.mark.parametrize("sparsity", [0.5, 0.7, 0.8])
@pytest.mark.parametrize("nm", [None, (2, 4)])
def test_global_masks_match_brute_force_with_a_partial_alive(sparsity, nm):
    gen = torch.Generator().manual_seed(11)
    weights = {
        "a": torch.randint(-5, 6, (4, 8), generator=gen).float(),
        "b": torch.randn(3, 8, generator=gen) * 3,
        "c": torch.randint(-2, 3, (2, 4), generator=gen).float(),
    }
    alive = {"a": torch.rand(4, 8, generator=gen) > 0.3}  # b and c: everything alive
    got = global_magnitude_masks(weights, sparsity, alive=alive, nm=nm)
    expected = magnitude_by_hand(
        list(weights.values()), sparsity, [alive.get(k) for k in weights], nm
    )
    assert list(got) == ["a", "b", "c"]
    for (name, mask), exp in zip(got.items(), expected):
        assert torch.equal(mask, exp), name
    # without alive: the same as alive everywhere
    plain = global_magnitude_masks(weights, sparsity, nm=nm)
    everywhere = global_magnitude_masks(
        weights,
        sparsity,
        alive={k: torch.ones_like(v, dtype=torch.bool) for k, v in weights.items()},
        nm=nm,
    )
    assert all(torch.equal(plain[k], everywhere[k]) for k in weights)


def test_erk_by_hand():
    # a (4x4): raw density (4+4)/16 = 1/2; b (2x8): (2+8)/16 = 5/8. Budget at 0.5: 16 of 32.
    # scale = 16 / (16/2 + 16*5/8) = 8/9 -> densities 4/9 and 5/9 -> sparsities 5/9 and 4/9
    got = erk_sparsities({"a": (4, 4), "b": (2, 8)}, 0.5)
    assert got == {"a": pytest.approx(5 / 9, rel=1e-12), "b": pytest.approx(4 / 9, rel=1e-12)}
    # small (2x2): raw 1; big (100x100): raw 0.02. Budget at 0.5: 5002. scale = 5002 / (4 + 200) =
    # 24.5
    # makes small's density 24.5 > 1: dense; then scale = (5002 - 4) / 200 -> big density 0.4998
    got = erk_sparsities({"small": (2, 2), "big": (100, 100)}, 0.5)
    assert got == {"small": 0.0, "big": pytest.approx(1 - 4998 / 10000, rel=1e-12)}
    # sparsity 0: everything dense
    assert erk_sparsities({"a": (4, 4), "b": (2, 8)}, 0.0) == {
        "a": pytest.approx(0.0, abs=1e-12),
        "b": pytest.approx(0.0, abs=1e-12),
    }
    # three tensors, two of them pushed dense in turn: t (1x1, raw 2), u (2x2, raw 1), v (10x10, raw
    # 0.2)
    # at 0.2: budget 0.8 * 105 = 84; scale = 84 / (2 + 4 + 20) = 3.23 -> t and u dense (6.46, 3.23 >
    # 1);
    # then scale = (84 - 5) / 20 = 3.95 -> v density 0.79
    got = erk_sparsities({"t": (1, 1), "u": (2, 2), "v": (10, 10)}, 0.2)
    assert got == {"t": 0.0, "u": 0.0, "v": pytest.approx(0.21, rel=1e-12)}


def test_erk_ends_when_rounding_pushes_every_tensor_dense():
    # at sparsity 0 the budget is every weight; for these shapes float rounding puts the last
    # tensor's density a hair above 1 (found by search), so the loop runs out of tensors:
    # both dense, and the function returns instead of looping
    assert erk_sparsities({"a": (7, 50), "b": (5, 30)}, 0.0) == {"a": 0.0, "b": 0.0}
