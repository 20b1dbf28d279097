"""Tokenizing with a tokenizer.json, streaming on several workers, text columns,
and the cache's keys and atomicity. The reference is the in-memory path written
out here: every document read, permuted with the fixed seed, encoded alone and
joined by the separator."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sparsescale.data import text as text_lib
from sparsescale.data import tokenize as tokenize_lib
from sparsescale.data.corpus import cache_root, load_corpus
from sparsescale.errors import SparsescaleError

WORDS = (
    "the model prunes weights with a cubic schedule while the loss falls and the "
    "sparse network keeps learning tokens from documents"
).split()


def _doc(rng, n) -> str:
    return " ".join(rng.choice(WORDS, size=n)) + "."


def make_tokenizer(path: Path, vocab_size: int = 300, seed: int = 0) -> Path:
    """A real byte-level BPE tokenizer.json with an <|endoftext|> special token."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    rng = np.random.default_rng(seed)
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=["<|endoftext|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator([_doc(rng, 40) for _ in range(200)], trainer=trainer)
    path.parent.mkdir(parents=True, exist_ok=True)
    tok.save(str(path))
    return path


def make_corpus(root: Path, seed: int = 0) -> Path:
    """Text, Markdown and a JSONL file big enough to be cut into many pieces."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True)
    for i in range(4):
        (root / f"a{i}.txt").write_text(_doc(rng, 30 + 10 * i) + " héllo ✓\n")
    (root / "b.md").write_text("# Title\n\n" + _doc(rng, 50) + " [link](http://x)\n")
    with open(root / "c.jsonl", "w") as f:
        for i in range(120):
            f.write(json.dumps({"text": _doc(rng, 5 + i % 17), "id": i}) + "\n")
            if i % 30 == 0:
                f.write("\n")  # blank lines are skipped
    return root


def reference_tokens(root: Path, encode, separator: list[int], dtype) -> np.ndarray:
    docs = [d for f in text_lib.list_files(root) for d in text_lib.read_documents(f)]
    order = np.random.default_rng(tokenize_lib.DOC_SHUFFLE_SEED).permutation(len(docs))
    out: list[int] = []
    for k, i in enumerate(order):
        if k:
            out += separator
        out += encode(docs[i])
    return np.asarray(out, dtype=dtype)


@pytest.mark.parametrize("kind", ["byte", "file"])
def test_streaming_on_two_workers_equals_the_in_memory_path(tmp_path, monkeypatch, kind):
    from tokenizers import Tokenizer

    root = make_corpus(tmp_path / "corpus")
    monkeypatch.setattr(tokenize_lib, "PIECE_BYTES", 1500)  # the JSONL file becomes many pieces
    monkeypatch.setattr(tokenize_lib, "ENCODE_BATCH_BYTES", 300)  # and each piece several batches
    assert len(text_lib.split_file(root / "c.jsonl", 1500)) > 4
    if kind == "byte":
        corpus = load_corpus(root, "byte", workers=2)
        want = reference_tokens(root, lambda d: list(d.encode()), list(b"\n\n"), np.uint8)
        assert corpus.vocab_size == 256
    else:
        tok_file = make_tokenizer(tmp_path / "tok" / "tokenizer.json")
        tok = Tokenizer.from_file(str(tok_file))
        eos = tok.token_to_id("<|endoftext|>")
        corpus = load_corpus(root, str(tok_file), workers=2)
        want = reference_tokens(
            root, lambda d: tok.encode(d, add_special_tokens=False).ids, [eos], np.uint16
        )
        assert corpus.vocab_size == tok.get_vocab_size(with_added_tokens=True)
        assert corpus.decode(corpus.tokens[:20]) == tok.decode([int(i) for i in want[:20]])
    assert corpus.tokens.dtype == want.dtype
    np.testing.assert_array_equal(np.asarray(corpus.tokens), want)
    # one worker (in-process) writes the same bytes
    monkeypatch.setenv("SPARSESCALE_CACHE", str(tmp_path / "cache1"))
    again = load_corpus(
        root, "byte" if kind == "byte" else str(tmp_path / "tok" / "tokenizer.json"), workers=1
    )
    np.testing.assert_array_equal(np.asarray(again.tokens), want)


def test_separator_without_an_eos_token_is_a_blank_line(tmp_path):
    from tokenizers import Tokenizer, models, pre_tokenizers

    tok = Tokenizer(models.WordLevel({"[UNK]": 0, "a": 1, "b": 2, "\n": 3}, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Split("\n", "isolated")
    tok.save(str(tmp_path / "wl.json"))
    root = tmp_path / "c"
    root.mkdir()
    (root / "x.jsonl").write_text('{"text": "a"}\n{"text": "b"}\n')
    corpus = load_corpus(root, str(tmp_path / "wl.json"))
    assert sorted(np.asarray(corpus.tokens).tolist()) == [1, 2, 3, 3]  # a \n \n b (in either order)


def test_cache_is_keyed_by_the_tokenizer_content_and_reused(tmp_path):
    root = make_corpus(tmp_path / "corpus")
    tok_file = make_tokenizer(tmp_path / "tok.json", 270)
    a = load_corpus(root, str(tok_file))
    assert load_corpus(root, str(tok_file)).key == a.key
    make_tokenizer(tok_file, 300)  # same path, other content
    b = load_corpus(root, str(tok_file))
    assert b.key != a.key and a.vocab_size == 270 and b.vocab_size == 300


def test_failed_build_leaves_no_cache_and_a_fixed_corpus_builds(tmp_path, monkeypatch):
    monkeypatch.setenv("SPARSESCALE_CACHE", str(tmp_path / "cache"))
    root = make_corpus(tmp_path / "corpus")
    monkeypatch.setattr(tokenize_lib, "PIECE_BYTES", 1500)
    lines = (root / "c.jsonl").read_text().splitlines()
    bad = list(lines)
    bad[100] = "{not json"
    (root / "c.jsonl").write_text("\n".join(bad) + "\n")
    with pytest.raises(SparsescaleError, match=r"c\.jsonl: line 101 is not JSON"):
        load_corpus(root, "byte", workers=2)
    corpora = cache_root() / "corpora"
    assert (
        not corpora.exists()
        or [p.name for p in corpora.iterdir() if not p.name.startswith("stat-")] == []
    )
    (root / "c.jsonl").write_text("\n".join(lines) + "\n")
    corpus = load_corpus(root, "byte", workers=2)
    assert (corpus.folder / "meta.json").exists() and not list(corpus.folder.glob("part-*"))


def test_text_column_for_jsonl_and_parquet(tmp_path):
    root = tmp_path / "c"
    root.mkdir()
    (root / "a.jsonl").write_text(json.dumps({"content": "first document"}) + "\n")
    pq.write_table(
        pa.table({"content": ["second document", None, "third"], "n": [1, 2, 3]}),
        root / "b.parquet",
        row_group_size=1,
    )
    with pytest.raises(
        SparsescaleError, match=r"a\.jsonl: line 1 has no string 'text' field.*--text-column"
    ):
        load_corpus(root, "byte")
    corpus = load_corpus(root, "byte", text_column="content")
    text = bytes(np.asarray(corpus.tokens)).decode()
    assert sorted(text.split("\n\n")) == ["first document", "second document", "third"]
    (root / "a.jsonl").unlink()
    with pytest.raises(
        SparsescaleError, match=r"b\.parquet: no 'text' column \(columns: content, n\)"
    ):
        load_corpus(root, "byte")


def test_broken_tokenizer_file_is_named(tmp_path):
    (tmp_path / "broken.json").write_text('{"model": 3}')
    with pytest.raises(
        SparsescaleError, match=r"^--tokenizer .*broken\.json: not a tokenizers tokenizer\.json"
    ):
        load_corpus(make_corpus(tmp_path / "c"), str(tmp_path / "broken.json"))


def _cli(*args, cache: Path, cwd: Path):
    env = dict(
        os.environ, SPARSESCALE_CACHE=str(cache), PYTHONPATH=str(Path(__file__).parents[2] / "src")
    )
    return subprocess.run(
        [sys.executable, "-m", "sparsescale", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=300,
    )


@pytest.mark.parametrize(
    "flags, expect",
    [
        (
            ["--tokenizer", "gpt2"],
            "--tokenizer: expected byte, bpe or a path to a tokenizer.json file",
        ),
        (
            ["--tokenizer", "missing/tokenizer.json"],
            "--tokenizer missing/tokenizer.json: no such file",
        ),
        (["--text-column", "body"], "no string 'body' field"),
    ],
)
def test_bad_tokenizer_and_column_flags_are_one_line(tmp_path, flags, expect):
    root = tmp_path / "c"
    root.mkdir()
    (root / "a.jsonl").write_text('{"text": "x y z"}\n')
    (tmp_path / "broken.json").write_text('{"model": 3}')
    out = tmp_path / "run"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    r = _cli(
        "train",
        "--corpus",
        str(root),
        "--params",
        "20k",
        "--tokens",
        "10k",
        "--out",
        str(out),
        "--check",
        *flags,
        cache=tmp_path / "cache",
        cwd=tmp_path,
    )
    assert r.returncode == 2, r.stderr
    assert (
        len(r.stderr.strip().splitlines()) == 1
        and expect in r.stderr
        and "Traceback" not in r.stderr
    )
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
