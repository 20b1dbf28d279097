"""Reading a file a user gave: any failure is one line naming the file.

The read-side counterpart of `atomic.write_json`. Laws, speedup tables, result
tables, pattern-law files, run configs and sweep specs all come from users, so
a missing file, a folder, bytes that are not UTF-8 or a typo in the JSON must
each become a SparsescaleError that says which file and what is wrong, never a
traceback. Callers add their own context (the CLI its flag) around the message.
"""

from __future__ import annotations

import json
import os
from typing import Any, Callable

from sparsescale.errors import SparsescaleError


def read_text(path: str | os.PathLike, what: str = "file", label: str | None = None) -> str:
    """The UTF-8 text at `path`. `what` names the file in messages ("law file":
    "x.json: no such law file"); `label` leads them (default: the path as the
    user spelled it, so "./law.json" stays "./law.json")."""
    name = str(path) if label is None else label
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        raise SparsescaleError(f"{name}: no such {what}") from None
    except IsADirectoryError:
        raise SparsescaleError(f"{name}: is a folder, not a {what}") from None
    except OSError as exc:
        raise SparsescaleError(
            f"{name}: cannot read {what} ({type(exc).__name__}: {exc.strerror or exc})"
        ) from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise SparsescaleError(
            f"{name}: {what} is not UTF-8 text (byte 0x{raw[exc.start]:02x} on line {line})"
        ) from None


def read_json(
    path: str | os.PathLike,
    what: str = "file",
    object_pairs_hook: Callable[[list[tuple[str, Any]]], Any] | None = None,
) -> Any:
    """The parsed JSON at `path` (errors as read_text's); `object_pairs_hook`
    goes to json.loads (to see keys a plain dict would merge)."""
    text = read_text(path, what)
    name = str(path)
    try:
        return json.loads(text, object_pairs_hook=object_pairs_hook)
    except json.JSONDecodeError as exc:
        raise SparsescaleError(
            f"{name}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
        ) from None
    except RecursionError:  # json's decoder recurses once per nested [ or {
        raise SparsescaleError(f"{name}: not valid JSON (nested too deeply to read)") from None
    except ValueError as exc:  # e.g. an integer past Python's digit limit
        raise SparsescaleError(f"{name}: not valid JSON ({str(exc).splitlines()[0]})") from None
