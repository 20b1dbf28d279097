"""A tokenised text corpus, cached once as a memory-mapped token array.

The corpus is read (data/text.py), its documents shuffled with a fixed seed
(so that training does not walk the files topic by topic), joined with blank
lines and tokenised to bytes (uint8) or to a BPE trained on the corpus itself
with the `tokenizers` library (uint16). The last few percent of the token
stream is the validation split: fixed, and disjoint from training.

Cache: cache_root()/corpora/<key>/ (~/.cache/sparsescale by default),
where <key> hashes the corpus content, the tokenizer and the stripping rules.
A small stat index (paths, sizes, mtimes -> key) lets later runs skip reading
the files. Builds go to a temporary folder renamed into place, so concurrent
runs never see a half-written cache.
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
from sparsescale.data import text as text_lib
from sparsescale.errors import SparsescaleError

DOC_SHUFFLE_SEED = 0
DOC_SEPARATOR = "\n\n"
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
    """tokens[:n_train] is training data, tokens[n_train:] validation."""

    tokens: np.ndarray
    n_train: int
    vocab_size: int
    tokenizer: str
    key: str
    source: str
    folder: Path

    @functools.cached_property
    def fingerprint(self) -> str:
        """A hash of the token array itself, read back from the cache (not of its
        sources): two machines whose fingerprints agree train on the same tokens."""
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
        from tokenizers import Tokenizer

        return Tokenizer.from_file(str(self.folder / "tokenizer.json")).decode(ids)


def _tokenizer_name(tokenizer: str, vocab_size: int) -> str:
    if tokenizer == "byte":
        return "byte"
    if tokenizer == "bpe":
        if not 256 < vocab_size <= 65535:
            raise SparsescaleError(f"--vocab-size {vocab_size}: a BPE vocabulary must be in 257..65535")
        return f"bpe-{vocab_size}"
    raise SparsescaleError(f"--tokenizer {tokenizer!r}: expected 'byte' or 'bpe'")


def _corpus_files(corpus: str | Path | None) -> tuple[list[tuple[Path, Path]], str]:
    """[(root, file)] and a description. None means the built-in default."""
    if corpus is None:
        roots = text_lib.default_corpus_roots()
        files = [(r, f) for r in roots for f in text_lib.list_files(r, text_lib.DEFAULT_EXCLUDE_DIRS)]
        return files, " + ".join(str(r) for r in roots)
    root = Path(corpus).expanduser()
    return [(root, f) for f in text_lib.list_files(root)], str(root)


def _stat_key(files: list[tuple[Path, Path]], tokenizer_name: str) -> str:
    h = hashlib.blake2b(digest_size=16)
    h.update(f"{tokenizer_name}|{text_lib.STRIP_VERSION}".encode())
    for root, path in files:
        st = os.stat(path)
        h.update(f"|{os.path.abspath(path)}|{st.st_size}|{st.st_mtime_ns}".encode())
    return h.hexdigest()


def _content_key(files: list[tuple[Path, Path]], tokenizer_name: str) -> str:
    h = hashlib.blake2b(digest_size=16)
    h.update(f"{tokenizer_name}|{text_lib.STRIP_VERSION}".encode())
    for root, path in files:
        rel = path.relative_to(root) if path != root else Path(path.name)
        h.update(f"|{rel}|".encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def _train_bpe(documents: list[str], vocab_size: int, folder: Path):
    try:
        from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    except ImportError:
        raise SparsescaleError("--tokenizer bpe needs the 'tokenizers' package (pip install 'sparsescale[bpe]')") from None
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False
    )
    tok.train_from_iterator(documents, trainer=trainer)
    tok.save(str(folder / "tokenizer.json"))
    return tok


def _build(files, tokenizer: str, vocab_size: int, key: str, source: str, final: Path) -> None:
    documents = [doc for _, path in files for doc in text_lib.read_documents(path)]
    if not documents:
        raise SparsescaleError(f"--corpus {source}: the files hold no text")
    order = np.random.default_rng(DOC_SHUFFLE_SEED).permutation(len(documents))
    documents = [documents[i] for i in order]
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=final.parent))
    try:
        if tokenizer == "byte":
            data = np.frombuffer(DOC_SEPARATOR.join(documents).encode("utf-8"), dtype=np.uint8)
            n_vocab = 256
        else:
            tok = _train_bpe(documents, vocab_size, tmp)
            sep = tok.encode(DOC_SEPARATOR).ids
            parts = []
            for enc in tok.encode_batch(documents):
                parts.append(np.asarray(enc.ids, dtype=np.uint16))
                parts.append(np.asarray(sep, dtype=np.uint16))
            data = np.concatenate(parts[:-1])
            n_vocab = tok.get_vocab_size()
        data.tofile(tmp / "tokens.bin")
        n_val = min(max(int(len(data) * VAL_FRACTION), 1), VAL_MAX_TOKENS)
        write_json(tmp / "meta.json", {
            "key": key, "source": source, "tokenizer": _tokenizer_name(tokenizer, vocab_size),
            "vocab_size": int(n_vocab), "dtype": str(data.dtype), "n_tokens": int(len(data)),
            "n_train": int(len(data) - n_val), "n_documents": len(documents), "n_files": len(files),
        })
        try:
            os.rename(tmp, final)
        except OSError:  # another process built the same cache first
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def load_corpus(
    corpus: str | Path | None = None, tokenizer: str = "byte", vocab_size: int = 4096
) -> TokenCorpus:
    """The tokenised corpus (built and cached on first use). `corpus`: a file or
    folder of text, or None for the built-in default (linux-doc-6.1)."""
    name = _tokenizer_name(tokenizer, vocab_size)
    files, source = _corpus_files(corpus)
    root = cache_root() / "corpora"
    stat_file = root / f"stat-{_stat_key(files, name)}.json"
    key = None
    if stat_file.exists():
        try:
            key = json.loads(stat_file.read_text())["key"]
        except (ValueError, KeyError):
            key = None
    if key is None or not (root / key / "meta.json").exists():
        key = _content_key(files, name)
        if not (root / key / "meta.json").exists():
            _build(files, tokenizer, vocab_size, key, source, root / key)
        write_json(stat_file, {"key": key, "source": source})
    folder = root / key
    meta = json.loads((folder / "meta.json").read_text())
    tokens = np.memmap(folder / "tokens.bin", dtype=np.dtype(meta["dtype"]), mode="r", shape=(meta["n_tokens"],))
    return TokenCorpus(
        tokens=tokens, n_train=meta["n_train"], vocab_size=meta["vocab_size"], tokenizer=meta["tokenizer"],
        key=key, source=source, folder=folder,
    )
