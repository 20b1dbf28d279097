"""Reading a text corpus from local files, with markup stripped.

A corpus is a file or a folder (searched recursively, in sorted path order).
Recognised files:
  .txt .text            plain text
  .rst .rst.txt         reStructuredText: directives, roles, section rules removed
  .md .markdown         Markdown: headings marks, links, emphasis, fences removed
  .jsonl                one JSON object per line; its text field (`text_column`, default "text")
  .parquet              a text column (`text_column`, default "text")
Other files are ignored. The built-in default is the English reST sources of
Debian's linux-doc-6.1 (plus python3.11-doc where installed).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from sparsescale.errors import SparsescaleError

# Bump when the stripping rules change: it is part of the cache key.
STRIP_VERSION = 1

DEFAULT_CORPORA = (
    Path("/usr/share/doc/linux-doc-6.1/html/_sources"),
    Path("/usr/share/doc/python3.11-doc/html/_sources"),
)
# Translations are not English; the default corpus leaves them out.
DEFAULT_EXCLUDE_DIRS = ("translations",)

TEXT_SUFFIXES = (".txt", ".text")
REST_SUFFIXES = (".rst", ".rst.txt")
MARKDOWN_SUFFIXES = (".md", ".markdown")


def default_corpus_roots() -> list[Path]:
    """The installed default corpora, or a SparsescaleError saying how to get one."""
    roots = [p for p in DEFAULT_CORPORA if p.is_dir()]
    if not roots:
        raise SparsescaleError(
            "no default corpus: Debian's linux-doc-6.1 is not installed (apt-get install "
            "linux-doc-6.1); "
            "or point --corpus at any folder of .txt/.md/.rst/.jsonl/.parquet files"
        )
    return roots


def file_kind(path: Path) -> str | None:
    """'text' | 'rest' | 'markdown' | 'jsonl' | 'parquet', or None to skip."""
    name = path.name.lower()
    if name.endswith(REST_SUFFIXES):
        return "rest"
    if name.endswith(MARKDOWN_SUFFIXES):
        return "markdown"
    if name.endswith(TEXT_SUFFIXES):
        return "text"
    if name.endswith(".jsonl"):
        return "jsonl"
    if name.endswith(".parquet"):
        return "parquet"
    return None


def list_files(root: Path, exclude_dirs: tuple[str, ...] = ()) -> list[Path]:
    """Corpus files under `root` (or `root` itself), sorted for a stable order."""
    root = Path(root)
    if not root.exists():
        raise SparsescaleError(f"--corpus {root}: no such file or folder")
    if root.is_file():
        if file_kind(root) is None:
            raise SparsescaleError(f"--corpus {root}: not a .txt/.md/.rst/.jsonl/.parquet file")
        return [root]
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in exclude_dirs and not d.startswith(".")]
        for name in filenames:
            if not name.startswith(".") and file_kind(Path(name)) is not None:
                found.append(os.path.join(dirpath, name))
    found.sort()
    found = [Path(f) for f in found]
    if not found:
        raise SparsescaleError(
            f"--corpus {root}: no .txt/.md/.rst/.jsonl/.parquet files in this folder"
        )
    return found


# ---- markup stripping --------------------------------------------------------
_REST_RULES = [
    # explicit markup: directives, comments, targets, footnotes (`.. x::`, `.. _x:`)
    (re.compile(r"^\s*\.\.(\s.*)?$", re.M), ""),
    # directive options such as `   :maxdepth: 2`
    (re.compile(r"^\s+:[\w -]+:.*$", re.M), ""),
    # section adornment lines (=====, -----, ~~~~, ^^^^, ****, ####)
    (re.compile(r"^([=\-~^*#+`'\".:_])\1{2,}\s*$", re.M), ""),
    # roles with explicit titles  :ref:`title <target>` -> title
    (re.compile(r":[\w:+-]+:`([^`<]*?)\s*<[^`>]*>`"), r"\1"),
    # plain roles  :c:func:`foo` -> foo
    (re.compile(r":[\w:+-]+:`([^`]*)`"), r"\1"),
    # hyperlinks  `text <url>`_ -> text
    (re.compile(r"`([^`<]+?)\s*<[^`>]+>`__?"), r"\1"),
    # inline literals and interpreted text  ``x`` / `x`_ / `x`
    (re.compile(r"``([^`]+)``"), r"\1"),
    (re.compile(r"`([^`]+)`__?"), r"\1"),
    (re.compile(r"`([^`]+)`"), r"\1"),
    # strong / emphasis
    (re.compile(r"\*\*([^*\n]+)\*\*"), r"\1"),
    (re.compile(r"(?<![\w*])\*([^*\s][^*\n]*)\*(?![\w*])"), r"\1"),
    # literal-block marker at a line end: "like this::" -> "like this:"
    (re.compile(r"::\s*$", re.M), ":"),
    # substitution references |name|
    (re.compile(r"\|([\w -]+)\|"), r"\1"),
]

_MARKDOWN_RULES = [
    (re.compile(r"^```.*$", re.M), ""),  # code fences (keep the code)
    (re.compile(r"!\[([^\]]*)\]\([^)]*\)"), r"\1"),  # images -> alt text
    (re.compile(r"\[([^\]]+)\]\([^)]*\)"), r"\1"),  # links -> text
    (re.compile(r"^\[[^\]]+\]:\s*\S+.*$", re.M), ""),  # reference definitions
    (re.compile(r"^\s{0,3}#{1,6}\s*", re.M), ""),  # heading marks
    (re.compile(r"^\s{0,3}>\s?", re.M), ""),  # block quotes
    (re.compile(r"<[^>\n]+>"), ""),  # inline HTML tags
    (re.compile(r"(\*\*|__)([^*_\n]+)\1"), r"\2"),  # strong
    (re.compile(r"(?<![\w*])\*([^*\s][^*\n]*)\*(?![\w*])"), r"\1"),
    (re.compile(r"`([^`\n]+)`"), r"\1"),  # inline code
    (re.compile(r"^([=\-])\1{2,}\s*$", re.M), ""),  # setext underlines / rules
]

_BLANK_RUNS = re.compile(r"\n{3,}")


def _apply(rules, text: str) -> str:
    for pattern, repl in rules:
        text = pattern.sub(repl, text)
    return _BLANK_RUNS.sub("\n\n", text).strip()


def strip_rest(text: str) -> str:
    """reStructuredText -> plain prose (directives, roles and adornments removed)."""
    return _apply(_REST_RULES, text)


def strip_markdown(text: str) -> str:
    """Markdown -> plain prose (marks removed, link texts kept)."""
    return _apply(_MARKDOWN_RULES, text)


@dataclass(frozen=True)
class Piece:
    """A part of one corpus file that one worker reads: a whole text file, a byte
    range of whole lines of a JSONL file, or a range of row groups of a Parquet
    file. `n_bytes` (on disk) drives the progress bar."""

    path: Path
    start: int = 0
    stop: int | None = None
    n_bytes: int = 0


def split_file(path: Path, piece_bytes: int) -> list[Piece]:
    """A corpus file cut into pieces of about piece_bytes, in file order, so that
    no worker holds more than about that much text: JSONL at line starts,
    Parquet at row-group boundaries; other files are one document each, whole."""
    size = os.path.getsize(path)
    kind = file_kind(path)
    if kind == "jsonl" and size > piece_bytes:
        cuts = [0]
        with open(path, "rb") as f:
            while cuts[-1] + piece_bytes < size:
                f.seek(cuts[-1] + piece_bytes)
                f.readline()  # to the start of the next line
                if f.tell() >= size:
                    break
                cuts.append(f.tell())
        cuts.append(size)
        return [Piece(path, a, b, b - a) for a, b in zip(cuts, cuts[1:])]
    if kind == "parquet":
        import pyarrow.parquet as pq

        try:
            meta = pq.ParquetFile(path).metadata
        except Exception as exc:  # pyarrow raises ArrowInvalid and OSError subclasses alike
            # a torn or foreign file: the user's to fix (pyarrow's message may span lines)
            raise SparsescaleError(
                f"{path}: not a readable Parquet file ({' '.join(str(exc).split())[:160]})"
            ) from None
        pieces, start, acc = [], 0, 0
        for g in range(meta.num_row_groups):
            acc += meta.row_group(g).total_byte_size
            if acc >= piece_bytes or g == meta.num_row_groups - 1:
                pieces.append(Piece(path, start, g + 1, acc))
                start, acc = g + 1, 0
        return pieces or [Piece(path, 0, 0, size)]
    return [Piece(path, 0, None, size)]


def read_piece(piece: Piece, text_column: str = "text") -> Iterator[str]:
    """The documents of one piece (see split_file), markup stripped."""
    path = piece.path
    kind = file_kind(path)
    if kind == "jsonl":
        yield from _jsonl_documents(path, piece.start, piece.stop, text_column)
    elif kind == "parquet":
        yield from _parquet_documents(path, text_column, range(piece.start, piece.stop))
    else:
        yield from read_documents(path, text_column)


def _jsonl_documents(path: Path, start: int, stop: int | None, text_column: str) -> Iterator[str]:
    with open(path, "rb") as f:
        line_no = 1
        # line numbers in errors count from the file's start: count the lines before `start`
        remaining = start
        while remaining:
            block = f.read(min(1 << 20, remaining))
            line_no += block.count(b"\n")
            remaining -= len(block)
        while stop is None or f.tell() < stop:
            raw = f.readline()
            if not raw:
                break
            line = raw.decode("utf-8", errors="replace")
            if line.strip():
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise SparsescaleError(
                        f"{path}: line {line_no} is not JSON ({exc.msg})"
                    ) from None
                if not isinstance(row, dict) or not isinstance(row.get(text_column), str):
                    raise SparsescaleError(
                        f"{path}: line {line_no} has no string {text_column!r} field "
                        "(the text field is --text-column)"
                    )
                if row[text_column].strip():
                    yield row[text_column]
            line_no += 1


def _parquet_documents(path: Path, text_column: str, groups: range | None = None) -> Iterator[str]:
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
    except Exception as exc:
        # a torn or foreign file: the user's to fix (pyarrow's message may span lines)
        raise SparsescaleError(
            f"{path}: not a readable Parquet file ({' '.join(str(exc).split())[:160]})"
        ) from None
    names = pf.schema_arrow.names
    if text_column not in names:
        raise SparsescaleError(
            f"{path}: no {text_column!r} column (columns: {', '.join(names)}); "
            "name the text column with --text-column"
        )
    groups = range(pf.metadata.num_row_groups) if groups is None else groups
    for batch in pf.iter_batches(batch_size=1024, row_groups=list(groups), columns=[text_column]):
        for value in batch.column(0).to_pylist():
            if isinstance(value, str) and value.strip():
                yield value


def read_documents(path: Path, text_column: str = "text") -> Iterator[str]:
    """The documents of one corpus file (one per file for text formats, one per
    row for JSONL and Parquet), markup stripped."""
    kind = file_kind(path)
    if kind in ("text", "rest", "markdown"):
        text = path.read_bytes().decode("utf-8", errors="replace")
        if kind == "rest":
            text = strip_rest(text)
        elif kind == "markdown":
            text = strip_markdown(text)
        if text.strip():
            yield text
    elif kind == "jsonl":
        yield from _jsonl_documents(path, 0, None, text_column)
    elif kind == "parquet":
        yield from _parquet_documents(path, text_column)
