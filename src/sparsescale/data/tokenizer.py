"""The tokenizer setting of a run: what `tokenizer = ...` names, and how it encodes.

Three kinds:
  "byte"                UTF-8 bytes (vocabulary 256, uint8 tokens).
  "bpe"                 a byte-level BPE trained on the corpus itself with the
                        `tokenizers` library (vocabulary `vocab_size`, uint16).
  "PATH/tokenizer.json" any Hugging Face `tokenizers` file (GPT-2, Llama, ...),
                        loaded offline with Tokenizer.from_file; the vocabulary
                        size is the file's, added tokens included.

Documents are encoded without the tokenizer's own special tokens (no BOS that
a post-processor would add to each "sentence") and joined by one separator.
For a tokenizer file the separator is its end-of-text token when it has one
(the first of EOS_CANDIDATES found in the vocabulary, as nanoGPT's GPT-2
preparation appends <|endoftext|>), else the encoding of a blank line, which
is also the byte and trained-BPE separator.

Token dtype: uint16 while every id fits (vocabulary <= 65536), else uint32.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sparsescale.errors import SparsescaleError
from sparsescale.hashing import file_digest

DOC_SEPARATOR = "\n\n"
# End-of-text tokens of common tokenizer files, most specific first:
# GPT-2/GPT-NeoX/Pythia, Llama 3, Llama 2/Mistral/T5, Gemma, BERT-style.
EOS_CANDIDATES = ("<|endoftext|>", "<|end_of_text|>", "</s>", "<eos>", "[SEP]")


def is_file_tokenizer(name: str) -> bool:
    """A tokenizer setting that names a tokenizer.json file (not byte or bpe)."""
    return name not in ("byte", "bpe")


def check_setting(name: str) -> str:
    """The config-time check of a tokenizer setting (no file access)."""
    if name in ("byte", "bpe") or name.lower().endswith(".json"):
        return name
    raise ValueError(f"expected byte, bpe or a path to a tokenizer.json file, got {name!r}")


def token_dtype(vocab_size: int) -> np.dtype:
    return np.dtype(np.uint16 if vocab_size <= 1 << 16 else np.uint32)


def load_file(path: str | Path, label: str = "--tokenizer"):
    """A `tokenizers.Tokenizer` from a tokenizer.json; every failure is one line naming it."""
    try:
        from tokenizers import Tokenizer
    except ImportError:
        raise SparsescaleError(
            f"{label} {path}: needs the 'tokenizers' package (pip install 'sparsescale[bpe]')"
        ) from None
    p = Path(path).expanduser()
    if not p.is_file():
        raise SparsescaleError(f"{label} {path}: no such file")
    try:
        return Tokenizer.from_file(str(p))
    except Exception as exc:  # tokenizers raises a bare Exception on malformed files
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise SparsescaleError(f"{label} {path}: not a tokenizers tokenizer.json ({msg})") from None


@dataclass(frozen=True)
class TokenizerSpec:
    """A resolved tokenizer setting: `name` goes into cache keys and records;
    `file` is the tokenizer.json to encode with (None for bytes; for "bpe" it is
    trained first, see data/tokenize.py)."""

    kind: str  # "byte" | "bpe" | "file"
    name: str  # "byte", "bpe-4096", "file-<content hash>"
    vocab_size: int  # bpe: the requested size; the trained one is in the cache's meta.json
    file: Path | None = None

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(np.uint8) if self.kind == "byte" else token_dtype(self.vocab_size)


def resolve(tokenizer: str, vocab_size: int) -> TokenizerSpec:
    """The TokenizerSpec of a run's `tokenizer` and `vocab_size` settings."""
    if tokenizer == "byte":
        return TokenizerSpec("byte", "byte", 256)
    if tokenizer == "bpe":
        if not 256 < vocab_size <= 65535:
            raise SparsescaleError(
                f"--vocab-size {vocab_size}: a BPE vocabulary must be in 257..65535"
            )
        return TokenizerSpec("bpe", f"bpe-{vocab_size}", vocab_size)
    try:
        check_setting(tokenizer)
    except ValueError as exc:
        raise SparsescaleError(f"--tokenizer: {exc}") from None
    tok = load_file(tokenizer)
    path = Path(tokenizer).expanduser().resolve()
    return TokenizerSpec(
        "file", f"file-{file_digest(path)}", tok.get_vocab_size(with_added_tokens=True), path
    )


class Encoder:
    """Documents -> token arrays for one TokenizerSpec (a trained BPE passes its file).
    Built inside each tokenizing worker: a `tokenizers.Tokenizer` is not shared
    across processes."""

    def __init__(self, kind: str, file: Path | None):
        self.kind = kind
        if kind == "byte":
            self.tok = None
            self.dtype = np.dtype(np.uint8)
            self.separator = np.frombuffer(DOC_SEPARATOR.encode(), dtype=np.uint8)
            return
        self.tok = load_file(file)
        vocab = self.tok.get_vocab_size(with_added_tokens=True)
        self.dtype = token_dtype(vocab)
        eos = next(
            (
                self.tok.token_to_id(t)
                for t in EOS_CANDIDATES
                if kind == "file" and self.tok.token_to_id(t) is not None
            ),
            None,
        )
        sep = (
            [eos]
            if eos is not None
            else self.tok.encode(DOC_SEPARATOR, add_special_tokens=False).ids
        )
        self.separator = np.asarray(sep, dtype=self.dtype)

    def encode(self, documents: list[str]) -> list[np.ndarray]:
        if self.tok is None:
            return [np.frombuffer(d.encode("utf-8"), dtype=np.uint8) for d in documents]
        encs = self.tok.encode_batch(documents, add_special_tokens=False)
        return [np.asarray(e.ids, dtype=self.dtype) for e in encs]
