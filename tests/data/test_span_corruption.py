"""Span corruption: round trip, noise density, span count, fixed shapes."""

from __future__ import annotations

import numpy as np
import pytest

from sparsescale.data.span_corruption import (
    SpecialIds,
    corrupt,
    corrupt_batch,
    corrupted_lengths,
    noise_mask,
    reconstruct,
    span_counts,
)


@pytest.mark.parametrize("length", [10, 64, 128, 500])
def test_round_trip_and_counts(length):
    ids = SpecialIds(256)
    rng = np.random.default_rng(length)
    for _ in range(30):
        tokens = rng.integers(0, 256, length)
        mask = noise_mask(length, rng)
        n_noise, n_spans = span_counts(length)
        assert mask.sum() == n_noise
        starts = mask & ~np.concatenate(([False], mask[:-1]))
        assert starts.sum() == n_spans and not mask[0]
        inp, tgt = corrupt(tokens, mask, ids)
        assert (len(inp), len(tgt)) == corrupted_lengths(length)
        assert np.array_equal(reconstruct(inp, tgt, ids), tokens)
        assert inp[-1] == ids.eos and tgt[-1] == ids.eos
        # the kept tokens appear in order in the input, the hidden ones in the target
        assert np.array_equal(inp[inp < 256], tokens[~mask])
        assert np.array_equal(tgt[tgt < 256], tokens[mask])
        sentinels = inp[inp >= ids.sentinel(0)]
        assert np.array_equal(sentinels, ids.sentinel(0) + np.arange(n_spans))


def test_paper_noise_and_mean_span():
    n_noise, n_spans = span_counts(1000)
    assert n_noise == 150 and n_spans == 50  # 15% noise, mean span 3


def test_hand_example():
    ids = SpecialIds(10, n_sentinels=5)
    tokens = np.arange(8)
    mask = np.array([0, 1, 1, 0, 0, 1, 0, 0], dtype=bool)
    inp, tgt = corrupt(tokens, mask, ids)
    assert inp.tolist() == [0, 12, 3, 4, 13, 6, 7, 11]
    assert tgt.tolist() == [12, 1, 2, 13, 5, 11]


def test_batch_depends_only_on_seed_and_window():
    ids = SpecialIds(256)
    windows = np.random.default_rng(0).integers(0, 256, (4, 64))
    a = corrupt_batch(windows, np.arange(4), 7, ids)
    b = corrupt_batch(windows[2:], np.arange(2, 4), 7, ids)
    assert np.array_equal(a[0][2:], b[0])
    c = corrupt_batch(windows, np.arange(4), 8, ids)
    assert not np.array_equal(a[0], c[0])
