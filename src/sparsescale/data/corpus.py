"""A tokenised corpus: a cached, memory-mapped token array, or a folder of shards.

Text (data/text.py) is tokenised once (data/tokenize.py, streaming, on every
core) with the run's tokenizer (data/tokenizer.py: bytes, a BPE trained on
the corpus, or a tokenizer.json) and cached; a folder with a manifest.json
(data/shards.py) is already tokenised and is read in place. The last few
percent of a text corpus's token stream is the validation split; a shard
folder names its validation shards.

Cache: cache_root()/corpora/<key>/ (~/.cache/sparsescale by default). <key>
hashes the CONTENT of the corpus files (blake2b, streamed in 1 MiB blocks), the
tokenizer (its name, and for a tokenizer.json its content), the text column and
the stripping rules: a corpus copied to another disk or node, or files touched
without a change, reuse the cache, and two corpora with equal content share one.
Hashing reads every byte, so a stat index (each file's path, size and mtime in
nanoseconds -> key) lets later runs skip it: a write to a file changes its size
or mtime, and a miss only costs one re-hash. Builds go to a temporary folder
renamed into place, so concurrent runs never see a half-written cache.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sparsescale.atomic import write_json
from sparsescale.data import shards as shards_lib
from sparsescale.data import text as text_lib
from sparsescale.data.tokenize import tokenize_files
from sparsescale.data.tokenizer import TokenizerSpec, is_file_tokenizer, load_file, resolve
from sparsescale.errors import SparsescaleError
from sparsescale.hashing import file_digest, update_from_file

VAL_FRACTION = 0.05
VAL_MAX_TOKENS = 1 << 19


def cache_root() -> Path:
    """The cache folder: $SPARSESCALE_CACHE; else, on a node given a scratch
    folder ($SPARSESCALE_SCRATCH, see sparsescale.storage), its cache/; else
    ~/.cache/sparsescale."""
    if os.environ.get("SPARSESCALE_CACHE"):
        return Path(os.environ["SPARSESCALE_CACHE"])
    if os.environ.get("SPARSESCALE_SCRATCH"):
        return Path(os.environ["SPARSESCALE_SCRATCH"]) / "cache"
    return Path.home() / ".cache" / "sparsescale"


@dataclass
class TokenCorpus:
    """tokens[:n_train] is training data, tokens[n_train:] validation. `tokens`
    is a memmap of the cache's tokens.bin, or a ShardedTokens over a shard folder."""

    tokens: np.ndarray | shards_lib.ShardedTokens
    n_train: int
    vocab_size: int
    tokenizer: str
    key: str
    source: str
    folder: Path
    tokenizer_file: Path | None = None
    known_fingerprint: str | None = None  # shards: made of the per-shard hashes kept by their check

    @functools.cached_property
    def fingerprint(self) -> str:
        """A hash of the token array itself, read back from the cache (not of its
        sources): two machines whose fingerprints agree train on the same tokens."""
        if self.known_fingerprint is not None:
            return self.known_fingerprint
        h = hashlib.blake2b(digest_size=16)
        h.update(f"{self.tokenizer}|{self.tokens.dtype}|{self.n_train}|".encode())
        h.update(memoryview(np.ascontiguousarray(self.tokens)).cast("B"))
        return h.hexdigest()

    @property
    def n_val(self) -> int:
        return len(self.tokens) - self.n_train

    def decode(self, ids) -> str:
        """Token ids back to text (for looking at samples)."""
        ids = [int(i) for i in ids]
        if self.tokenizer == "byte":
            return bytes(i for i in ids if i < 256).decode("utf-8", errors="replace")
        if self.tokenizer_file is None:
            raise SparsescaleError(
                f"corpus {self.source}: no tokenizer file to decode with "
                '(name one as "tokenizer" in manifest.json)'
            )
        return load_file(self.tokenizer_file).decode(ids)


def _corpus_files(corpus: str | Path | None) -> tuple[list[tuple[Path, Path]], str]:
    """[(root, file)] and a description. None means the built-in default."""
    if corpus is None:
        roots = text_lib.default_corpus_roots()
        files = [
            (r, f) for r in roots for f in text_lib.list_files(r, text_lib.DEFAULT_EXCLUDE_DIRS)
        ]
        return files, " + ".join(str(r) for r in roots)
    root = Path(corpus).expanduser()
    return [(root, f) for f in text_lib.list_files(root)], str(root)


def _settings(spec: TokenizerSpec, text_column: str) -> str:
    # the default column is left out so that caches built before the setting existed keep their keys
    column = "" if text_column == "text" else f"|column={text_column}"
    return f"{spec.name}|{text_lib.STRIP_VERSION}{column}"


def _stat_key(files: list[tuple[Path, Path]], settings: str) -> str:
    h = hashlib.blake2b(digest_size=16)
    h.update(settings.encode())
    for root, path in files:
        st = os.stat(path)
        h.update(f"|{os.path.abspath(path)}|{st.st_size}|{st.st_mtime_ns}".encode())
    return h.hexdigest()


def _content_key(files: list[tuple[Path, Path]], settings: str) -> str:
    h = hashlib.blake2b(digest_size=16)
    h.update(settings.encode())
    for root, path in files:
        rel = path.relative_to(root) if path != root else Path(path.name)
        h.update(f"|{rel}|".encode())
        update_from_file(h, path)
    return h.hexdigest()


def _build(
    files,
    spec: TokenizerSpec,
    text_column: str,
    key: str,
    source: str,
    final: Path,
    workers: int | None,
) -> None:
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=final.parent))
    try:
        meta = tokenize_files([path for _, path in files], spec, text_column, tmp, workers)
        if meta["n_documents"] == 0:
            raise SparsescaleError(f"--corpus {source}: the files hold no text")
        n = meta["n_tokens"]
        n_val = min(max(int(n * VAL_FRACTION), 1), VAL_MAX_TOKENS)
        write_json(
            tmp / "meta.json",
            {
                "key": key,
                "source": source,
                "tokenizer": spec.name,
                **meta,
                "n_train": int(n - n_val),
                "n_files": len(files),
            },
        )
        try:
            os.rename(tmp, final)
        except OSError:  # another process built the same cache first
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def load_corpus(
    corpus: str | Path | None = None,
    tokenizer: str = "byte",
    vocab_size: int = 4096,
    text_column: str = "text",
    workers: int | None = None,
) -> TokenCorpus:
    """The tokenised corpus (built and cached on first use). `corpus`: a file or
    folder of text, a folder of shards with a manifest.json, or None for the
    built-in default (linux-doc-6.1). `tokenizer`: "byte", "bpe" (of
    `vocab_size`) or a tokenizer.json path. `workers`: tokenizing processes
    (default: every core)."""
    if shards_lib.is_shard_folder(corpus):
        return _load_shards(Path(corpus).expanduser(), tokenizer)
    spec = resolve(tokenizer, vocab_size)
    settings = _settings(spec, text_column)
    files, source = _corpus_files(corpus)
    root = cache_root() / "corpora"
    stat_file = root / f"stat-{_stat_key(files, settings)}.json"
    key = None
    if stat_file.exists():
        try:
            key = json.loads(stat_file.read_text())["key"]
        except (ValueError, KeyError):
            key = None
    if key is None or not (root / key / "meta.json").exists():
        key = _content_key(files, settings)
        if not (root / key / "meta.json").exists():
            _build(files, spec, text_column, key, source, root / key, workers)
        write_json(stat_file, {"key": key, "source": source})
    folder = root / key
    meta = json.loads((folder / "meta.json").read_text())
    tokens = np.memmap(
        folder / "tokens.bin", dtype=np.dtype(meta["dtype"]), mode="r", shape=(meta["n_tokens"],)
    )
    tok_file = folder / "tokenizer.json"
    return TokenCorpus(
        tokens=tokens,
        n_train=meta["n_train"],
        vocab_size=meta["vocab_size"],
        tokenizer=meta["tokenizer"],
        key=key,
        source=source,
        folder=folder,
        tokenizer_file=tok_file if tok_file.exists() else None,
    )


def _load_shards(folder: Path, tokenizer: str) -> TokenCorpus:
    """A shard folder as a TokenCorpus. The run's tokenizer setting is byte (the
    default: "not set") or a tokenizer.json whose vocabulary fits the manifest's."""
    if tokenizer == "bpe":
        raise SparsescaleError(
            f"--tokenizer bpe: {folder} holds shards that are already tokenized; "
            "leave --tokenizer unset or name their tokenizer.json"
        )
    got = shards_lib.load_shards(folder, cache_root() / "shards")
    tok_file = got["tokenizer_file"]
    if is_file_tokenizer(tokenizer):
        tok = load_file(tokenizer)
        n = tok.get_vocab_size(with_added_tokens=True)
        if n > got["vocab_size"]:
            raise SparsescaleError(
                f"--tokenizer {tokenizer}: its vocabulary ({n}) is larger than the vocab_size "
                f"{got['vocab_size']} of {folder / shards_lib.MANIFEST}"
            )
        tok_file = Path(tokenizer).expanduser()
    name = f"shards-{got['tokens'].dtype}" + (f"-file-{file_digest(tok_file)}" if tok_file else "")
    return TokenCorpus(
        tokens=got["tokens"],
        n_train=got["n_train"],
        vocab_size=got["vocab_size"],
        tokenizer=name,
        key=got["fingerprint"],
        source=str(folder),
        folder=folder,
        tokenizer_file=tok_file,
        known_fingerprint=got["fingerprint"],
    )
