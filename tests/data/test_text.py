"""Corpus reading, markup stripping, the token cache, and single-pass loaders."""

from __future__ import annotations

import json

import numpy as np
import pytest

from sparsescale.data import text as text_lib
from sparsescale.data.corpus import load_corpus
from sparsescale.data.loaders import LMBatches, T5Batches, lm_capacity, spread_windows
from sparsescale.errors import SparsescaleError


def test_strip_rest():
    src = """.. _label:

Title here
==========

.. toctree::
   :maxdepth: 2

   intro

Use :c:func:`kmalloc` and :ref:`the guide <guide-label>` with ``GFP_KERNEL``.
See `the site <https://kernel.org>`_ for **bold** and *emphasis*. Example::

    code stays
"""
    out = text_lib.strip_rest(src)
    assert (
        "Title here" in out
        and "===" not in out
        and "toctree" not in out
        and ":maxdepth:" not in out
    )
    assert "Use kmalloc and the guide with GFP_KERNEL." in out
    assert "See the site for bold and emphasis. Example:" in out
    assert "code stays" in out and "_label" not in out


def test_strip_markdown():
    src = (
        "# Heading\n\nSome [link text](http://x.y) and ![alt](a.png), `code`, **strong**.\n\n"
        "```py\nx = 1\n```\n"
    )
    out = text_lib.strip_markdown(src)
    assert out.startswith("Heading") and "link text" in out and "http" not in out
    assert (
        "alt" in out and "code" in out and "strong" in out and "**" not in out and "```" not in out
    )
    assert "x = 1" in out


def _write_corpus(folder, n_docs=30, words=400):
    rng = np.random.default_rng(0)
    vocab = [
        "alpha",
        "beta",
        "gamma",
        "delta",
        "kernel",
        "memory",
        "page",
        "lock",
        "queue",
        "driver",
    ]
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n_docs):
        (folder / f"doc{i:03d}.txt").write_text(
            f"Document {i}. " + " ".join(rng.choice(vocab, words)) + "\n"
        )
    return folder


def test_jsonl_and_parquet_and_ignored_files(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    (tmp_path / "a.jsonl").write_text(
        json.dumps({"text": "first row"}) + "\n\n" + json.dumps({"text": "second"}) + "\n"
    )
    pq.write_table(pa.table({"text": ["from parquet"], "id": [1]}), tmp_path / "b.parquet")
    (tmp_path / "image.png").write_bytes(b"\x89PNG")
    files = text_lib.list_files(tmp_path)
    assert [f.name for f in files] == ["a.jsonl", "b.parquet"]
    docs = [d for f in files for d in text_lib.read_documents(f)]
    assert docs == ["first row", "second", "from parquet"]
    (tmp_path / "c.jsonl").write_text('{"title": "no text"}\n')
    with pytest.raises(SparsescaleError, match=r"c.jsonl: line 1 has no string 'text'"):
        list(text_lib.read_documents(tmp_path / "c.jsonl"))


def test_cache_is_keyed_by_content_and_reused(tmp_path):
    folder = _write_corpus(tmp_path / "corpus")
    a = load_corpus(folder)
    assert a.tokens.dtype == np.uint8 and a.vocab_size == 256
    assert load_corpus(folder).key == a.key  # reused
    text = a.decode(a.tokens[:2000])
    assert "Document" in text
    (folder / "doc000.txt").write_text("changed content\n")
    assert load_corpus(folder).key != a.key  # content changed -> new cache


def test_validation_is_disjoint_and_training_never_repeats(tmp_path):
    corpus = load_corpus(_write_corpus(tmp_path / "c2"))
    seq_len, batch = 32, 4
    steps = lm_capacity(corpus, seq_len) // batch
    loader = LMBatches(corpus, seq_len, batch, steps, seed=3)
    starts = np.sort(loader.order * seq_len)
    assert len(np.unique(starts)) == len(starts)  # no window twice
    assert starts[-1] + seq_len + 1 <= corpus.n_train  # training never reaches validation
    x, y = loader.get(0)
    assert x.shape == (batch, seq_len) and np.array_equal(x[:, 1:].numpy(), y[:, :-1].numpy())
    # every target token of the training split appears exactly once as a target
    covered = np.zeros(corpus.n_train, dtype=int)
    for s in starts:
        covered[s + 1 : s + seq_len + 1] += 1
    assert covered.max() == 1
    val = np.concatenate([x.numpy() for x, _ in loader.validation(10**9, batch)])
    n_windows = (corpus.n_val - 1) // seq_len
    assert len(val) == n_windows  # asked for all: every window once
    assert np.array_equal(
        val[0], np.asarray(corpus.tokens[corpus.n_train : corpus.n_train + seq_len])
    )
    with pytest.raises(SparsescaleError, match="data is never repeated"):
        LMBatches(corpus, seq_len, batch, steps + 1, seed=3)


def _topical_corpus(folder, n_docs=200, words=600):
    """Long documents whose statistics differ a lot from one to the next, as
    real documents do: every other one is written in two letters only."""
    rng = np.random.default_rng(1)
    wide = list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.,;:!?()[]{}<>=+-*/")
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n_docs):
        letters = ["a", "b"] if i % 2 else wide
        text = " ".join("".join(rng.choice(letters, 4)) for _ in range(words))
        (folder / f"doc{i:03d}.txt").write_text(text + "\n")
    return folder


def _window_losses(corpus, loader, eval_tokens):
    """Per-window cross-entropy of a unigram model fitted on the training split."""
    counts = np.bincount(corpus.tokens[: corpus.n_train], minlength=256) + 1.0
    nll = -np.log(counts / counts.sum())
    return np.concatenate(
        [nll[y.numpy()].mean(axis=1) for _, y in loader.validation(eval_tokens, 8)]
    )


def test_small_validation_agrees_with_the_whole_split(tmp_path):
    """A small evaluation is an unbiased sample of the whole held-out split:
    its mean loss is within 3 standard errors of the full split's, for every
    size; the split's first windows alone (the old sampling) are not."""
    corpus = load_corpus(_topical_corpus(tmp_path / "topical"))
    seq_len = 32
    loader = LMBatches(corpus, seq_len, 4, 1, seed=0)
    full = _window_losses(corpus, loader, 10**9)
    assert len(full) == (corpus.n_val - 1) // seq_len and len(full) >= 200
    for n_windows in (8, 16, 32, 64, 128):
        small = _window_losses(corpus, loader, n_windows * seq_len)
        assert len(small) == n_windows
        # standard error of a sample of n from a finite population of len(full)
        se = full.std(ddof=1) / np.sqrt(n_windows) * np.sqrt(1 - n_windows / len(full))
        assert abs(small.mean() - full.mean()) <= 3 * se, (n_windows, small.mean(), full.mean(), se)
    first = full[:32]  # the split's first 32 windows: one document
    se32 = full.std(ddof=1) / np.sqrt(32)
    assert abs(first.mean() - full.mean()) > 3 * se32  # what the old sampling measured


def test_spread_windows_is_even_and_exact():
    assert np.array_equal(spread_windows(10, 10), np.arange(10))
    assert np.array_equal(spread_windows(10, 99), np.arange(10))
    assert np.array_equal(spread_windows(100, 4), [12, 37, 62, 87])
    assert len(spread_windows(7, 0)) == 1


def test_same_seed_same_batches_other_seed_other_order(tmp_path):
    corpus = load_corpus(_write_corpus(tmp_path / "c3"))
    a = LMBatches(corpus, 16, 4, 10, seed=1).get(5)[0]
    b = LMBatches(corpus, 16, 4, 10, seed=1).get(5)[0]
    c = LMBatches(corpus, 16, 4, 10, seed=2).get(5)[0]
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    # DDP shards of one step are the halves of the single-process batch
    full = LMBatches(corpus, 16, 4, 10, seed=1).get(7)[0]
    halves = [LMBatches(corpus, 16, 4, 10, seed=1, rank=r, world=2).get(7)[0] for r in (0, 1)]
    assert np.array_equal(np.concatenate(halves), full)


def test_t5_batches_are_deterministic(tmp_path):
    corpus = load_corpus(_write_corpus(tmp_path / "c4"))
    enc, dec, tgt = T5Batches(corpus, 40, 3, 5, seed=0).get(2)
    enc2, _, _ = T5Batches(corpus, 40, 3, 5, seed=0).get(2)
    assert np.array_equal(enc, enc2) and enc.shape[0] == 3
    assert np.array_equal(dec[:, 1:], tgt[:, :-1]) and (dec[:, 0] == 256).all()


def test_t5_validation_is_spread_over_the_split(tmp_path):
    """A small T5 evaluation is the full one's windows at evenly spread
    positions, corrupted identically (the noise is seeded per window)."""
    corpus = load_corpus(_write_corpus(tmp_path / "c5"))
    loader = T5Batches(corpus, 40, 3, 5, seed=0)
    full = np.concatenate([b[0].numpy() for b in loader.validation(10**9, 2)])
    small = np.concatenate([b[0].numpy() for b in loader.validation(4 * 40, 2)])
    m = corpus.n_val // 40
    assert len(full) == m and len(small) == 4
    assert np.array_equal(small, full[spread_windows(m, 4)])


def test_missing_corpus_errors(tmp_path):
    with pytest.raises(SparsescaleError, match="no such file or folder"):
        load_corpus(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(SparsescaleError, match="no .txt/.md/.rst"):
        load_corpus(tmp_path / "empty")


def test_default_corpus_is_linux_doc():
    if not text_lib.DEFAULT_CORPORA[0].is_dir():
        with pytest.raises(SparsescaleError, match="--corpus"):
            text_lib.default_corpus_roots()
        pytest.skip("linux-doc-6.1 is not installed")
    files = text_lib.list_files(text_lib.DEFAULT_CORPORA[0], text_lib.DEFAULT_EXCLUDE_DIRS)
    assert len(files) > 1000 and not any("translations" in str(f) for f in files)


def test_bpe_tokenizer(tmp_path):
    pytest.importorskip("tokenizers")
    corpus = load_corpus(_write_corpus(tmp_path / "c5", n_docs=10), tokenizer="bpe", vocab_size=300)
    assert corpus.tokens.dtype == np.uint16 and corpus.vocab_size <= 300
    assert corpus.tokens.max() < corpus.vocab_size
    assert "Document" in corpus.decode(corpus.tokens[:200])
