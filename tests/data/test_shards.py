"""Pre-tokenized shard folders: read in place, windows across shards, every
malformed manifest or shard named in one line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sparsescale.data.corpus import load_corpus
from sparsescale.data.loaders import LMBatches, lm_capacity
from sparsescale.data.shards import ShardedTokens
from sparsescale.errors import SparsescaleError


def write_shards(
    folder: Path,
    vocab: int = 500,
    dtype=np.uint16,
    sizes=(3000, 1700, 2500),
    val_size=1200,
    manifest: dict | None = None,
    seed: int = 0,
) -> tuple[Path, np.ndarray, np.ndarray]:
    """nanoGPT-style .bin training shards and one .npy validation shard."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    train = [rng.integers(0, vocab, n).astype(dtype) for n in sizes]
    for i, arr in enumerate(train):
        arr.tofile(folder / f"train_{i:03d}.bin")  # raw ids, as np.memmap(...)[:] = ids writes them
    val = rng.integers(0, vocab, val_size).astype(dtype)
    np.save(folder / "val.npy", val)
    m = {"dtype": np.dtype(dtype).name, "vocab_size": vocab, "val": ["val.npy"]}
    m.update(manifest or {})
    (folder / "manifest.json").write_text(json.dumps(m))
    return folder, np.concatenate(train), val


def test_shards_are_one_stream_with_windows_across_shards(tmp_path):
    folder, train, val = write_shards(tmp_path / "s")
    corpus = load_corpus(folder)
    assert isinstance(corpus.tokens, ShardedTokens)
    assert corpus.n_train == len(train) and corpus.n_val == len(val) and corpus.vocab_size == 500
    whole = np.concatenate([train, val])
    idx = np.random.default_rng(1).integers(0, len(whole), size=(7, 33))
    np.testing.assert_array_equal(corpus.tokens[idx], whole[idx])
    np.testing.assert_array_equal(
        corpus.tokens[2990:3010], whole[2990:3010]
    )  # across train_000 | train_001
    # the loader's windows, every one of them, equal the concatenation's
    seq = 64
    loader = LMBatches(corpus, seq, batch=8, steps=lm_capacity(corpus, seq) // 8, seed=0)
    crossed = False
    for step in range(lm_capacity(corpus, seq) // 8):
        x, y = loader.get(step)
        rows = loader.order[step * 8 : (step + 1) * 8]
        for r, row in enumerate(rows):
            np.testing.assert_array_equal(x[r].numpy(), whole[row * seq : row * seq + seq])
            crossed |= row * seq < 3000 < row * seq + seq + 1
    assert crossed
    # validation reads the validation shard only
    for vx, vy in loader.validation(10_000, 4):
        assert vx.numel() and all(np.isin(vx.numpy().ravel(), val).tolist()[:5])
    assert corpus.fingerprint == load_corpus(folder).fingerprint


def test_uint32_bin_with_a_header_and_train_globs(tmp_path):
    folder = tmp_path / "s"
    folder.mkdir()
    rng = np.random.default_rng(0)
    a = rng.integers(0, 100_000, 900).astype(np.uint32)
    b = rng.integers(0, 100_000, 500).astype(np.uint32)
    for name, arr in (("tr_a.bin", a), ("tr_b.bin", b), ("va.bin", b[:300])):
        (folder / name).write_bytes(b"\0" * 1024 + arr.tobytes())  # llm.c-style 1024-byte header
    (folder / "other.bin").write_bytes(b"\0" * 4)  # not named by the manifest: ignored
    (folder / "manifest.json").write_text(
        json.dumps(
            {
                "dtype": "uint32",
                "vocab_size": 100_000,
                "header_bytes": 1024,
                "train": ["tr_*.bin"],
                "val": ["va.bin"],
            }
        )
    )
    corpus = load_corpus(folder)
    np.testing.assert_array_equal(corpus.tokens[np.arange(corpus.n_train)], np.concatenate([a, b]))
    assert corpus.vocab_size == 100_000 and corpus.n_val == 300


BAD = [
    ({"dtype": "int8"}, None, "manifest.json: dtype must be one of uint16, uint32"),
    ({"vocab_size": 70_000}, None, "manifest.json: vocab_size must be an integer in 2..65536"),
    ({"val": []}, None, "manifest.json: val is missing or empty"),
    ({"spam": 1}, None, "manifest.json: unknown key 'spam'"),
    ({"val": ["nope_*.bin"]}, None, "manifest.json: val: no .bin/.npy shard matches 'nope_*.bin'"),
    ({"train": ["val.npy"]}, None, "val.npy is both a training and a validation shard"),
    ({"val": ["../x.bin"]}, None, "must name a file inside the folder"),
    (
        {},
        lambda f: (f / "train_001.bin").write_bytes(b"\1\0\2"),
        "train_001.bin: 3 bytes after a 0-byte header is not a whole number of uint16 tokens",
    ),
    (
        {},
        lambda f: np.array([1, 2, 999], np.uint16).tofile(f / "train_001.bin"),
        "train_001.bin: token 999 at position 2 is not below the manifest's vocab_size 500",
    ),
    (
        {},
        lambda f: np.save(f / "val.npy", np.zeros(5, np.int64)),
        "val.npy: holds a 1-D int64 array; the manifest says 1-D uint16",
    ),
    ({}, lambda f: (f / "manifest.json").write_text("{"), "manifest.json: not valid JSON"),
    ({"tokenizer": "tok.json"}, None, "manifest.json: tokenizer: no such file"),
]


@pytest.mark.parametrize("manifest, damage, expect", BAD)
def test_bad_manifests_and_shards_are_named(tmp_path, manifest, damage, expect):
    folder, _, _ = write_shards(tmp_path / "s", manifest=manifest)
    if damage is not None:
        damage(folder)
    with pytest.raises(SparsescaleError) as err:
        load_corpus(folder)
    assert expect in str(err.value) and "\n" not in str(err.value)


def test_a_changed_shard_is_checked_again(tmp_path):
    folder, _, _ = write_shards(tmp_path / "s")
    first = load_corpus(folder).fingerprint
    arr = np.fromfile(folder / "train_000.bin", dtype=np.uint16)
    arr[5] = 777
    arr.tofile(folder / "train_000.bin")
    os.utime(folder / "train_000.bin", ns=(1, 1))  # a new mtime, whatever the clock's resolution
    with pytest.raises(SparsescaleError, match="train_000.bin: token 777 at position 5"):
        load_corpus(folder)
    arr[5] = 7
    arr.tofile(folder / "train_000.bin")
    assert load_corpus(folder).fingerprint != first


@pytest.mark.slow
def test_train_on_shards_and_a_bad_shard_from_the_cli(tmp_path):
    """A tiny GPT trains a few steps on shards with their tokenizer.json; a shard
    holding an out-of-vocabulary id is one line and exit 2, the run folder untouched."""
    from tests.data.test_tokenize import make_tokenizer

    tok = make_tokenizer(tmp_path / "s" / "tokenizer.json")
    folder, _, _ = write_shards(
        tmp_path / "s",
        vocab=300,
        sizes=(20_000, 20_000),
        val_size=5000,
        manifest={"tokenizer": "tokenizer.json"},
    )
    env = dict(
        os.environ,
        SPARSESCALE_CACHE=str(tmp_path / "cache"),
        PYTHONPATH=str(Path(__file__).parents[2] / "src"),
    )
    base = [
        sys.executable,
        "-m",
        "sparsescale",
        "train",
        "--corpus",
        str(folder),
        "--params",
        "30k",
        "--tokens",
        "4096",
        "--batch",
        "4",
        "--seq-len",
        "64",
        "--eval-tokens",
        "512",
        "--quiet",
    ]
    ok = subprocess.run(
        base + ["--out", str(tmp_path / "run"), "--tokenizer", str(tok)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert ok.returncode == 0, ok.stderr
    result = json.loads((tmp_path / "run" / "result.json").read_text())
    assert result["status"] == "finished" and np.isfinite(result["final_loss"])
    assert result["model_config"]["vocab_size"] == 300
    np.array([1, 300], np.uint16).tofile(folder / "train_001.bin")
    (tmp_path / "run2").mkdir()
    bad = subprocess.run(
        base + ["--out", str(tmp_path / "run2")],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1, bad.stderr
    assert "train_001.bin: token 300 at position 1" in bad.stderr
    assert not (tmp_path / "run2" / "result.json").exists()
