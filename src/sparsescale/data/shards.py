"""A folder of pre-tokenized shards, read in place as memory maps.

A corpus folder holding a `manifest.json` is a shard folder. Shards are
`.bin` files of raw little-endian token ids (what nanoGPT's prepare.py writes
with np.memmap, uint16 for GPT-2) or `.npy` arrays (1-D). The manifest:

    {
      "dtype": "uint16",             # uint16 or uint32; a .npy shard must hold this dtype
      "vocab_size": 50304,           # the model's vocabulary; every token id must be below it
      "val": ["val.bin"],            # validation shards: file names or globs, at least one
      "train": ["train_*.bin"],      # optional; default: every other .bin/.npy in the folder
      "header_bytes": 0,             # optional; bytes to skip at the start of each .bin
                                     #   (1024 for llm.c's shards, whose header is 256 int32)
      "tokenizer": "tokenizer.json"  # optional; the tokenizer file, for decoding samples
    }

The shards are never concatenated: `ShardedTokens` is one virtual token stream
over them (training shards in manifest order, then validation shards), and a
window of the stream may cross from one shard into the next, as nanoGPT's
windows cross document boundaries. The training split is the training
shards, the validation split the validation shards.

Each shard is checked once (its size a whole number of tokens, every id
below vocab_size) and its content hash kept, in the cache keyed by its path,
size and mtime: a later run skips the scan, and the hashes make the corpus
fingerprint that every sweep node compares with the coordinator's.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from sparsescale.atomic import write_json
from sparsescale.errors import SparsescaleError

MANIFEST = "manifest.json"
DTYPES = ("uint16", "uint32")
SHARD_SUFFIXES = (".bin", ".npy")
_KEYS = {"dtype", "vocab_size", "val", "train", "header_bytes", "tokenizer", "description"}
SCAN_TOKENS = 1 << 24  # tokens read per block while checking a shard


def is_shard_folder(path: str | Path | None) -> bool:
    return path is not None and (Path(path).expanduser() / MANIFEST).is_file()


class ShardedTokens:
    """A read-only 1-D token stream over several arrays (memmaps), indexable by
    integer arrays of any shape, as the loaders index a token array."""

    def __init__(self, arrays: list[np.ndarray]):
        self.arrays = arrays
        self.bounds = np.concatenate([[0], np.cumsum([len(a) for a in arrays])]).astype(np.int64)
        self.dtype = arrays[0].dtype

    def __len__(self) -> int:
        return int(self.bounds[-1])

    @property
    def shape(self) -> tuple[int]:
        return (len(self),)

    def __getitem__(self, index):
        if isinstance(index, slice):
            index = np.arange(*index.indices(len(self)))
        idx = np.asarray(index, dtype=np.int64)
        flat = idx.ravel()
        if flat.size and (flat.min() < 0 or flat.max() >= len(self)):
            raise IndexError(f"token index out of range 0..{len(self) - 1}")
        shard = np.searchsorted(self.bounds, flat, side="right") - 1
        out = np.empty(flat.shape, dtype=self.dtype)
        for s in np.unique(shard):
            mask = shard == s
            out[mask] = self.arrays[s][flat[mask] - self.bounds[s]]
        return out.reshape(idx.shape) if idx.ndim else out[0]


def read_manifest(folder: Path) -> dict[str, Any]:
    """The validated manifest; errors are one line naming the manifest and its key."""
    path = folder / MANIFEST
    where = str(path)
    try:
        m = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise SparsescaleError(f"{where}: cannot read ({exc})") from None
    except json.JSONDecodeError as exc:
        raise SparsescaleError(
            f"{where}: not valid JSON ({exc.msg} at line {exc.lineno})"
        ) from None
    if not isinstance(m, dict):
        raise SparsescaleError(f"{where}: expected a JSON object")
    unknown = sorted(set(m) - _KEYS)
    if unknown:
        raise SparsescaleError(
            f"{where}: unknown key {unknown[0]!r} (known: {', '.join(sorted(_KEYS))})"
        )
    if m.get("dtype") not in DTYPES:
        raise SparsescaleError(
            f"{where}: dtype must be one of {', '.join(DTYPES)}, got {m.get('dtype')!r}"
        )
    vocab = m.get("vocab_size")
    if (
        not isinstance(vocab, int)
        or isinstance(vocab, bool)
        or not 1 < vocab <= np.iinfo(m["dtype"]).max + 1
    ):
        raise SparsescaleError(
            f"{where}: vocab_size must be an integer in 2..{np.iinfo(m['dtype']).max + 1} "
            f"for {m['dtype']}, got {vocab!r}"
        )
    header = m.get("header_bytes", 0)
    if not isinstance(header, int) or isinstance(header, bool) or header < 0:
        raise SparsescaleError(f"{where}: header_bytes must be an integer >= 0, got {header!r}")
    for key in ("val", "train"):
        if key in m and (
            not isinstance(m[key], list) or not all(isinstance(x, str) for x in m[key])
        ):
            raise SparsescaleError(f"{where}: {key} must be a list of file names or globs")
    if not m.get("val"):
        raise SparsescaleError(
            f"{where}: val is missing or empty: name at least one validation shard"
        )
    if "tokenizer" in m and not isinstance(m["tokenizer"], str):
        raise SparsescaleError(f"{where}: tokenizer must be a file name")
    return m


def _expand(folder: Path, patterns: list[str], where: str, key: str) -> list[Path]:
    out: list[Path] = []
    for pat in patterns:
        if os.path.isabs(pat) or ".." in Path(pat).parts:
            raise SparsescaleError(f"{where}: {key}: {pat!r} must name a file inside the folder")
        hits = sorted(Path(p) for p in glob.glob(str(folder / pat)))
        hits = [p for p in hits if p.is_file() and p.name.endswith(SHARD_SUFFIXES)]
        if not hits:
            raise SparsescaleError(f"{where}: {key}: no .bin/.npy shard matches {pat!r}")
        out += [p for p in hits if p not in out]
    return out


def shard_lists(folder: Path, m: dict[str, Any]) -> tuple[list[Path], list[Path]]:
    """(training shards, validation shards), disjoint, in manifest order."""
    where = str(folder / MANIFEST)
    val = _expand(folder, m["val"], where, "val")
    if "train" in m:
        train = _expand(folder, m["train"], where, "train")
    else:
        train = sorted(
            p for p in folder.iterdir() if p.is_file() and p.name.endswith(SHARD_SUFFIXES)
        )
        train = [p for p in train if p not in val]
    both = set(train) & set(val)
    if both:
        raise SparsescaleError(
            f"{where}: {sorted(both)[0].name} is both a training and a validation shard"
        )
    if not train:
        raise SparsescaleError(f"{where}: no training shards (every .bin/.npy is listed under val)")
    return train, val


def open_shard(path: Path, dtype: str, header: int) -> np.ndarray:
    """A shard as a read-only memmap; a one-line error naming the file when it is malformed."""
    dt = np.dtype(dtype)
    if path.name.endswith(".npy"):
        try:
            arr = np.load(path, mmap_mode="r", allow_pickle=False)
        except (ValueError, OSError) as exc:
            raise SparsescaleError(f"{path}: not a readable .npy array ({exc})") from None
        if arr.dtype != dt or arr.ndim != 1:
            raise SparsescaleError(
                f"{path}: holds a {arr.ndim}-D {arr.dtype} array; the manifest says 1-D {dtype}"
            )
    else:
        size = path.stat().st_size - header
        if size < 0 or size % dt.itemsize:
            raise SparsescaleError(
                f"{path}: {size + header} bytes after a {header}-byte header is not a whole "
                f"number of {dtype} tokens ({dt.itemsize} bytes each); wrong dtype in the manifest?"
            )
        if size == 0:
            raise SparsescaleError(f"{path}: holds no tokens")
        arr = np.memmap(
            path, dtype=dt.newbyteorder("<"), mode="r", offset=header, shape=(size // dt.itemsize,)
        )
    if len(arr) == 0:
        raise SparsescaleError(f"{path}: holds no tokens")
    return arr


def _check(path: Path, arr: np.ndarray, vocab: int, stamp_dir: Path) -> str:
    """The shard's content hash, after checking every id is below vocab (cached by path, size,
    mtime)."""
    st = path.stat()
    key = hashlib.blake2b(
        f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}|{arr.dtype}|{vocab}".encode(),
        digest_size=16,
    ).hexdigest()
    stamp = stamp_dir / f"{key}.json"
    if stamp.exists():
        try:
            return json.loads(stamp.read_text())["digest"]
        except (ValueError, KeyError, OSError):
            pass
    h = hashlib.blake2b(digest_size=16)
    for start in range(0, len(arr), SCAN_TOKENS):
        # np.array copies one block: the scan's resident memory is one block, not the shard
        block = np.array(arr[start : start + SCAN_TOKENS])
        top = int(block.max())
        if top >= vocab:
            pos = start + int(np.argmax(block >= vocab))
            raise SparsescaleError(
                f"{path}: token {top} at position {pos} is not below the manifest's "
                f"vocab_size {vocab}"
            )
        h.update(memoryview(block).cast("B"))
    digest = h.hexdigest()
    write_json(stamp, {"path": str(path), "digest": digest})
    return digest


def load_shards(folder: Path, stamp_dir: Path) -> dict[str, Any]:
    """The shard folder as TokenCorpus fields: tokens, n_train, vocab_size, fingerprint,
    tokenizer_file."""
    m = read_manifest(folder)
    train, val = shard_lists(folder, m)
    header = m.get("header_bytes", 0)
    arrays = [open_shard(p, m["dtype"], header) for p in train + val]
    h = hashlib.blake2b(digest_size=16)
    h.update(f"shards|{m['dtype']}|{m['vocab_size']}|{len(train)}|".encode())
    for p, arr in zip(train + val, arrays):
        h.update(f"{p.name}:{_check(p, arr, m['vocab_size'], stamp_dir)}|".encode())
    tok_file = None
    if "tokenizer" in m:
        tok_file = folder / m["tokenizer"]
        if not tok_file.is_file():
            raise SparsescaleError(f"{folder / MANIFEST}: tokenizer: no such file {tok_file}")
    return {
        "tokens": ShardedTokens(arrays),
        "n_train": sum(len(a) for a in arrays[: len(train)]),
        "vocab_size": m["vocab_size"],
        "fingerprint": h.hexdigest(),
        "tokenizer_file": tok_file,
    }
