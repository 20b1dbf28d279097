"""Tokenizing a text corpus into the cache, streaming, on every core.

The result is the same token array as tokenizing the whole corpus in memory
(tests/data/test_tokenize.py checks it against exactly that): the documents
of all files in sorted order, permuted with a fixed seed (so that the held-out
tail is a sample of the corpus, not its last files), each encoded alone, joined
by the tokenizer's separator (data/tokenizer.py). Built in two passes so that
memory stays bounded by one piece per worker, never by the corpus:

1. The files are cut into pieces of about PIECE_BYTES (text.split_file). A pool
   of worker processes encodes the pieces, each writing its documents' tokens,
   back to back, into its own part file and returning their lengths only. A
   trained BPE is trained first, on a stream of the documents (the trainer
   keeps word counts, not text; its result does not depend on document order).
2. The parent draws the document permutation over the global document index
   and copies each document's tokens from its part file into tokens.bin with
   positioned reads (os.pread, not a memmap: mapped pages would count in the
   process's resident set, pread goes through the page cache only), in
   buffered writes of WRITE_BYTES.

Memory: the parent holds 8 bytes per document (lengths, offsets) plus one
write buffer; each worker holds one piece's text and tokens plus its
interpreter (about 100 MB with numpy and tokenizers). benchmarks/tokenize_bench.py
measures MB/s and the peak resident set of the parent and its workers.

Everything is written into a temporary folder beside the cache folder and
renamed into place by the caller (data/corpus.py): a crash or an error leaves
no half-written cache.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sparsescale.data import text as text_lib
from sparsescale.data.tokenizer import Encoder, TokenizerSpec
from sparsescale.errors import SparsescaleError

DOC_SHUFFLE_SEED = 0
PIECE_BYTES = 16 << 20  # text per worker task: bounds each worker's memory
# text per encode_batch call: its Encodings (ids, offsets, token strings and
# masks, ~100 bytes a token of ~4 characters) weigh ~25x the text they encode
ENCODE_BATCH_BYTES = 1 << 20
WRITE_BYTES = 16 << 20  # parent's output buffer in pass 2
MAX_WORKERS = 16


@dataclass(frozen=True)
class Options:
    """How to tokenize: the encoder, the text column and where parts go."""

    kind: str  # Encoder kind: byte | bpe | file
    tokenizer_file: Path | None
    text_column: str
    folder: Path  # the temporary build folder


def default_workers() -> int:
    """Every core this process may run on (the affinity mask, not the machine's count);
    1 inside a daemonic worker process (a multiprocessing pool's), which may not start
    processes of its own: tokenizers' threads then use the cores instead."""
    if multiprocessing.current_process().daemon:
        return 1
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS has no affinity mask
        n = os.cpu_count() or 1
    return max(1, min(n, MAX_WORKERS))


# ---- pass 1: pieces -> part files (runs in the workers) ------------------------
_ENCODER: Encoder | None = None


def _init_worker(kind: str, file: Path | None) -> None:
    # One encoding thread per worker: the pool is the parallelism, and tokenizers'
    # own thread pool in every worker would oversubscribe the cores.
    os.environ["RAYON_NUM_THREADS"] = "1"
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    global _ENCODER
    _ENCODER = Encoder(kind, file)


def _encode_piece(job: tuple[int, text_lib.Piece, Options]) -> tuple[int, np.ndarray]:
    """Encode one piece into part-<index>.bin; return (index, document lengths)."""
    index, piece, opts = job
    enc = _ENCODER
    lengths: list[int] = []
    batch: list[str] = []
    size = 0
    with open(opts.folder / f"part-{index:06d}.bin", "wb") as out:

        def flush() -> None:
            for ids in enc.encode(batch):
                out.write(ids.tobytes())
                lengths.append(len(ids))
            batch.clear()

        for doc in text_lib.read_piece(piece, opts.text_column):
            batch.append(doc)
            size += len(doc)
            if size >= ENCODE_BATCH_BYTES:
                flush()
                size = 0
        flush()
    return index, np.asarray(lengths, dtype=np.int64)


def _progress():
    """A rich progress bar on stderr (MB done, MB/s, time left), shown on a terminal only."""
    if not sys.stderr.isatty():
        return None
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
    )


def encode_pieces(pieces: list[text_lib.Piece], opts: Options, workers: int) -> list[np.ndarray]:
    """Pass 1: every piece encoded to its part file; the document lengths per piece, in piece
    order."""
    global _ENCODER  # the in-process path encodes with this process's own encoder
    jobs = [(i, p, opts) for i, p in enumerate(pieces)]
    lengths: list[np.ndarray | None] = [None] * len(jobs)
    total = sum(p.n_bytes for p in pieces)
    bar = _progress()
    with bar if bar is not None else nullcontext():
        task = (
            bar.add_task(f"tokenizing {len(pieces)} pieces", total=total)
            if bar is not None
            else None
        )
        if workers <= 1 or len(jobs) == 1:
            # in this process: tokenizers' own threads use the cores for one piece
            _ENCODER = Encoder(opts.kind, opts.tokenizer_file)
            results = map(_encode_piece, jobs)
            pool = None
        else:
            # spawn, not fork: a forked child of a process whose tokenizers thread
            # pool has started can deadlock (tokenizers warns about exactly this)
            pool = multiprocessing.get_context("spawn").Pool(
                workers, initializer=_init_worker, initargs=(opts.kind, opts.tokenizer_file)
            )
            results = pool.imap_unordered(_encode_piece, jobs)
        try:
            for index, lens in results:
                lengths[index] = lens
                if bar is not None:
                    bar.advance(task, pieces[index].n_bytes)
        finally:
            _ENCODER = None
            if pool is not None:
                pool.terminate()  # after an error, stop the other pieces at once
                pool.join()
    return lengths  # type: ignore[return-value]


# ---- pass 2: part files -> tokens.bin in document-permutation order -----------
def assemble(
    lengths: list[np.ndarray], separator: np.ndarray, dtype: np.dtype, folder: Path
) -> int:
    """Write tokens.bin: the documents in the seeded permutation, separator between
    them. Removes the part files; returns the number of tokens written."""
    counts = np.array([len(x) for x in lengths], dtype=np.int64)
    n_docs = int(counts.sum())
    if n_docs == 0:
        return 0
    doc_len = np.concatenate(lengths)
    piece_of = np.repeat(np.arange(len(lengths)), counts)
    # each document's offset (in tokens) inside its own part file
    starts = np.concatenate([np.cumsum(x) - x for x in lengths])
    item = dtype.itemsize
    order = np.random.default_rng(DOC_SHUFFLE_SEED).permutation(n_docs)
    sep = separator.astype(dtype).tobytes()
    fds = [os.open(folder / f"part-{i:06d}.bin", os.O_RDONLY) for i in range(len(lengths))]
    n_tokens = 0
    try:
        with open(folder / "tokens.bin", "wb") as out:
            buf = bytearray()
            for k, d in enumerate(order):
                if k:
                    buf += sep
                nbytes = int(doc_len[d]) * item
                buf += os.pread(fds[piece_of[d]], nbytes, int(starts[d]) * item)
                if len(buf) >= WRITE_BYTES:
                    out.write(buf)
                    buf.clear()
            out.write(buf)
            n_tokens = out.tell() // item
    finally:
        for fd in fds:
            os.close(fd)
        for i in range(len(lengths)):
            (folder / f"part-{i:06d}.bin").unlink(missing_ok=True)
    return n_tokens


def train_bpe(files: list[Path], vocab_size: int, text_column: str, folder: Path) -> Path:
    """A byte-level BPE trained on a stream of the corpus's documents; saved as
    folder/tokenizer.json."""
    try:
        from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    except ImportError:
        raise SparsescaleError(
            "--tokenizer bpe needs the 'tokenizers' package (pip install 'sparsescale[bpe]')"
        ) from None
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(
        (doc for f in files for doc in text_lib.read_documents(f, text_column)), trainer=trainer
    )
    tok.save(str(folder / "tokenizer.json"))
    return folder / "tokenizer.json"


def tokenize_files(
    files: list[Path],
    spec: TokenizerSpec,
    text_column: str,
    folder: Path,
    workers: int | None = None,
    piece_bytes: int = PIECE_BYTES,
) -> dict:
    """Tokenize `files` into folder/tokens.bin (and folder/tokenizer.json for a
    BPE or a tokenizer file). Returns meta fields: dtype, vocab_size, n_tokens, n_documents."""
    file = spec.file
    if spec.kind == "bpe":
        file = train_bpe(files, spec.vocab_size, text_column, folder)
    elif spec.kind == "file":
        (folder / "tokenizer.json").write_bytes(Path(spec.file).read_bytes())  # for decode()
    enc = Encoder(spec.kind, file)
    pieces = [p for f in files for p in text_lib.split_file(f, piece_bytes)]
    opts = Options(spec.kind, file, text_column, folder)
    lengths = encode_pieces(pieces, opts, default_workers() if workers is None else workers)
    n_tokens = assemble(lengths, enc.separator, enc.dtype, folder)
    vocab = 256 if enc.tok is None else enc.tok.get_vocab_size(with_added_tokens=True)
    return {
        "dtype": str(enc.dtype),
        "vocab_size": int(vocab),
        "n_tokens": int(n_tokens),
        "n_documents": int(sum(len(x) for x in lengths)),
    }
