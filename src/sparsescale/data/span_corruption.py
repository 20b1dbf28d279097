"""T5 span corruption: hide random spans, ask the decoder to write them out.

With noise density 15% and mean span length 3 (the T5 recipe), a window of L
tokens gets round(0.15 L) noise tokens split into round(noise / 3) spans. The
encoder input keeps the other tokens and puts one sentinel in place of each
span; the target lists each sentinel followed by the span it hides, then EOS.
Span boundaries are random, but the counts depend only on L, so every window of
a batch gives inputs and targets of the same length (no padding).

Token ids: the base vocabulary (bytes or BPE), then PAD, EOS, and the
sentinels, counted from the end of the base vocabulary.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

NOISE_DENSITY = 0.15
MEAN_SPAN = 3.0
N_SENTINELS = 100


@dataclass(frozen=True)
class SpecialIds:
    """PAD, EOS and sentinel ids placed after a base vocabulary."""

    base_vocab: int
    n_sentinels: int = N_SENTINELS

    @property
    def pad(self) -> int:
        return self.base_vocab

    @property
    def eos(self) -> int:
        return self.base_vocab + 1

    def sentinel(self, i: int) -> int:
        return self.base_vocab + 2 + i

    @property
    def vocab_size(self) -> int:
        return self.base_vocab + 2 + self.n_sentinels


def span_counts(
    length: int, noise_density: float = NOISE_DENSITY, mean_span: float = MEAN_SPAN
) -> tuple[int, int]:
    """(noise tokens, spans) for a window of `length` tokens."""
    n_noise = min(max(int(round(length * noise_density)), 1), length - 1)
    n_spans = max(int(round(n_noise / mean_span)), 1)
    return n_noise, n_spans


def corrupted_lengths(
    length: int, noise_density: float = NOISE_DENSITY, mean_span: float = MEAN_SPAN
) -> tuple[int, int]:
    """(encoder input length, target length) for a window of `length` tokens."""
    n_noise, n_spans = span_counts(length, noise_density, mean_span)
    return length - n_noise + n_spans + 1, n_noise + n_spans + 1


def _random_segments(total: int, n_segments: int, rng: np.random.Generator) -> np.ndarray:
    """Split `total` items into `n_segments` non-empty runs at random cut points."""
    cuts = (
        np.sort(rng.choice(total - 1, size=n_segments - 1, replace=False)) + 1
        if n_segments > 1
        else np.empty(0, int)
    )
    return np.diff(np.concatenate(([0], cuts, [total])))


def noise_mask(
    length: int,
    rng: np.random.Generator,
    noise_density: float = NOISE_DENSITY,
    mean_span: float = MEAN_SPAN,
) -> np.ndarray:
    """Bool mask of the hidden tokens: spans alternate with kept runs, starting
    with a kept run, so no two spans touch."""
    n_noise, n_spans = span_counts(length, noise_density, mean_span)
    n_spans = min(n_spans, length - n_noise)  # each span needs a kept run before it
    noise_runs = _random_segments(n_noise, n_spans, rng)
    kept_runs = _random_segments(length - n_noise, n_spans, rng)
    mask = np.zeros(length, dtype=bool)
    pos = 0
    for kept, noise in zip(kept_runs, noise_runs):
        pos += kept
        mask[pos : pos + noise] = True
        pos += noise
    return mask


def corrupt(tokens: np.ndarray, mask: np.ndarray, ids: SpecialIds) -> tuple[np.ndarray, np.ndarray]:
    """(encoder input, target) of one window given its noise mask."""
    starts = mask & ~np.concatenate(([False], mask[:-1]))  # first token of each span
    span_index = np.cumsum(starts) - 1  # which span a token belongs to
    n_spans = int(starts.sum())
    sentinels = np.array([ids.sentinel(i) for i in range(n_spans)], dtype=np.int64)
    tokens = tokens.astype(np.int64)
    # input: kept tokens, and the span's sentinel where a span starts
    inp = np.where(starts, sentinels[span_index.clip(0)], tokens)[~mask | starts]
    # target: for each span its sentinel then its tokens
    target_starts = np.where(mask)[0]
    tgt = []
    for i, pos in enumerate(target_starts):
        if starts[pos]:
            tgt.append(sentinels[span_index[pos]])
        tgt.append(tokens[pos])
    return np.append(inp, ids.eos), np.append(np.asarray(tgt, dtype=np.int64), ids.eos)


def reconstruct(inp: np.ndarray, tgt: np.ndarray, ids: SpecialIds) -> np.ndarray:
    """Invert `corrupt`: put each sentinel's span back into the input."""
    spans: dict[int, list[int]] = {}
    current = None
    for t in tgt[:-1]:
        t = int(t)
        if t >= ids.sentinel(0):
            current = t
            spans[current] = []
        else:
            spans[current].append(t)
    out: list[int] = []
    for t in inp[:-1]:
        t = int(t)
        out.extend(spans[t] if t >= ids.sentinel(0) else [t])
    return np.asarray(out, dtype=np.int64)


def corrupt_batch(windows: np.ndarray, window_ids: np.ndarray, seed: int, ids: SpecialIds):
    """Span-corrupt a (B, L) batch. Window i's spans depend only on (seed,
    window_ids[i]), so a resumed or re-run job sees exactly the same batch.
    Returns (encoder input, decoder input = target shifted right after PAD, target)."""
    enc, tgt = [], []
    for row, wid in zip(windows, window_ids):
        rng = np.random.default_rng((seed, int(wid)))
        a, b = corrupt(row, noise_mask(len(row), rng), ids)
        enc.append(a)
        tgt.append(b)
    enc, tgt = np.stack(enc), np.stack(tgt)
    dec = np.concatenate([np.full((len(tgt), 1), ids.pad, dtype=np.int64), tgt[:, :-1]], axis=1)
    return enc, dec, tgt
