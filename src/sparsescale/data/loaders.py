"""Batches for one run: each training example is read once, in a seeded order.

A loader is a pure function of (step, rank): batch `step` is the slice
[step * batch, (step + 1) * batch) of a seeded permutation of the training
windows (or images), so a resumed run, or a run split over several DDP ranks,
reads exactly the same examples as an uninterrupted single-process run, and no
example is read twice. Asking for more than the training split holds is an
error, never a silent second epoch.

Validation is a fixed, unbiased sample of the WHOLE held-out split at any
size: `spread_windows` takes evenly strided windows across the split rather
than its first eval_tokens. The split is a run of whole documents, so its
first 16k tokens are two or three documents, and a loss measured on them
describes those documents, not held-out text (measured: one run scored 2.45
on the first 16k tokens and 2.86 on the first 262k).
"""

from __future__ import annotations

import numpy as np
import torch

from sparsescale.data.corpus import TokenCorpus
from sparsescale.data.images import ImageData
from sparsescale.data.span_corruption import SpecialIds, corrupt_batch
from sparsescale.errors import SparsescaleError

VAL_SPAN_SEED = 1_000_003  # fixed: validation spans do not depend on the run's seed


def _order(n_available: int, n_needed: int, seed: int, what: str, flag: str) -> np.ndarray:
    if n_needed > n_available:
        raise SparsescaleError(
            f"{flag}: the run needs {n_needed} {what} but the training split holds only "
            f"{n_available}; "
            "ask for less data or use a larger --corpus (data is never repeated)"
        )
    return np.random.default_rng(seed).permutation(n_available)[:n_needed]


def _shard(rows: np.ndarray, rank: int, world: int) -> np.ndarray:
    per = len(rows) // world
    return rows[rank * per : (rank + 1) * per]


def spread_windows(n_available: int, n_wanted: int) -> np.ndarray:
    """n_wanted window indices spread evenly over range(n_available): the middle
    of each of n_wanted equal strata. Deterministic (every run and every size
    of evaluation sees the same windows for the same n_wanted) and, asked for
    everything, exactly range(n_available)."""
    n = max(1, min(n_wanted, n_available))
    return ((np.arange(n) + 0.5) * n_available / n).astype(np.int64)


def lm_capacity(corpus: TokenCorpus, seq_len: int) -> int:
    """Training windows of seq_len + 1 tokens (stride seq_len: every token is a target once)."""
    return (corpus.n_train - 1) // seq_len


class LMBatches:
    """Packed next-token windows for a decoder-only LM."""

    def __init__(
        self,
        corpus: TokenCorpus,
        seq_len: int,
        batch: int,
        steps: int,
        seed: int,
        rank: int = 0,
        world: int = 1,
    ):
        self.corpus, self.seq_len, self.batch, self.rank, self.world = (
            corpus,
            seq_len,
            batch,
            rank,
            world,
        )
        self.order = _order(
            lm_capacity(corpus, seq_len), steps * batch, seed, "windows", "--tokens"
        )
        self._offsets = np.arange(seq_len + 1)

    def _windows(self, starts: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(
            self.corpus.tokens[starts[:, None] + self._offsets].astype(np.int64)
        )

    def get(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        rows = _shard(
            self.order[step * self.batch : (step + 1) * self.batch], self.rank, self.world
        )
        w = self._windows(rows * self.seq_len)
        return w[:, :-1], w[:, 1:]

    def validation(self, eval_tokens: int, batch: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """The fixed validation windows: about eval_tokens tokens in windows
        spread evenly over the whole validation split (see spread_windows)."""
        if self.corpus.n_val - 1 < self.seq_len:
            raise SparsescaleError(
                f"--corpus {self.corpus.source}: the validation split is shorter than --seq-len"
            )
        ids = spread_windows((self.corpus.n_val - 1) // self.seq_len, eval_tokens // self.seq_len)
        starts = self.corpus.n_train + ids * self.seq_len
        out = []
        for i in range(0, len(starts), batch):
            w = self._windows(starts[i : i + batch])
            out.append((w[:, :-1], w[:, 1:]))
        return out


class SkippedLoader:
    """A loader whose step 0 is the inner loader's step `skip`: a pruned
    continuation of a dense run with the same seed reads the seeded order
    from where the dense run stopped, so no example is read twice."""

    def __init__(self, inner, skip: int):
        self.inner, self.skip = inner, skip

    def get(self, step: int):
        return self.inner.get(self.skip + step)

    def validation(self, n: int, batch: int):
        return self.inner.validation(n, batch)


def t5_capacity(corpus: TokenCorpus, seq_len: int) -> int:
    return corpus.n_train // seq_len


class T5Batches:
    """Span-corrupted windows of seq_len raw tokens for an encoder-decoder."""

    def __init__(
        self,
        corpus: TokenCorpus,
        seq_len: int,
        batch: int,
        steps: int,
        seed: int,
        rank: int = 0,
        world: int = 1,
    ):
        self.corpus, self.seq_len, self.batch, self.seed, self.rank, self.world = (
            corpus,
            seq_len,
            batch,
            seed,
            rank,
            world,
        )
        self.ids = SpecialIds(corpus.vocab_size)
        self.order = _order(
            t5_capacity(corpus, seq_len), steps * batch, seed, "windows", "--tokens"
        )
        self._offsets = np.arange(seq_len)

    def _make(self, window_ids: np.ndarray, base: int, seed: int):
        windows = self.corpus.tokens[base + window_ids[:, None] * self.seq_len + self._offsets]
        return tuple(
            torch.from_numpy(a) for a in corrupt_batch(windows, window_ids, seed, self.ids)
        )

    def get(self, step: int):
        rows = _shard(
            self.order[step * self.batch : (step + 1) * self.batch], self.rank, self.world
        )
        return self._make(rows, 0, self.seed)

    def validation(self, eval_tokens: int, batch: int):
        """Span-corrupted validation windows spread over the whole split (see spread_windows)."""
        if self.corpus.n_val < self.seq_len:
            raise SparsescaleError(
                f"--corpus {self.corpus.source}: the validation split is shorter than --seq-len"
            )
        ids = spread_windows(self.corpus.n_val // self.seq_len, eval_tokens // self.seq_len)
        return [
            self._make(ids[i : i + batch], self.corpus.n_train, VAL_SPAN_SEED)
            for i in range(0, len(ids), batch)
        ]


def _to_float(images: np.ndarray) -> torch.Tensor:
    """uint8 (B, H, W, C) -> float (B, C, H, W) in [-1, 1]."""
    return torch.from_numpy(np.array(images)).permute(0, 3, 1, 2).float().div_(127.5).sub_(1.0)


class ImageBatches:
    """Shuffled single-pass image batches; validation is the fixed test split."""

    def __init__(
        self, data: ImageData, batch: int, steps: int, seed: int, rank: int = 0, world: int = 1
    ):
        self.data, self.batch, self.rank, self.world = data, batch, rank, world
        self.order = _order(len(data.train_labels), steps * batch, seed, "examples", "--examples")

    def get(self, step: int):
        rows = _shard(
            self.order[step * self.batch : (step + 1) * self.batch], self.rank, self.world
        )
        return _to_float(self.data.train_images[rows]), torch.from_numpy(
            self.data.train_labels[rows]
        )

    def validation(self, eval_examples: int, batch: int):
        n = min(eval_examples, len(self.data.test_labels))
        return [
            (
                _to_float(self.data.test_images[i : min(i + batch, n)]),
                torch.from_numpy(self.data.test_labels[i : min(i + batch, n)]),
            )
            for i in range(0, n, batch)
        ]
