"""Atomic file output: write to a temporary file beside the target, then rename.

A crash or an error half way never leaves a half-written file under the final
name, and readers never see a partial file. `check_output` is the one check
every writing command makes before it starts: the output is not one of its
inputs (by resolved path and by inode), not a folder, and its folder is
writable, so no command ever writes over what it reads or fails late.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from sparsescale.errors import SparsescaleError


def _same_file(a: Path, b: Path) -> bool:
    if a.resolve() == b.resolve():
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:   # one of them does not exist: not the same file
        return False


def check_output(path: str | os.PathLike, inputs: Iterable[str | os.PathLike] = (), what: str = "output",
                 folder: bool = False, ours: Callable[[Path], bool] | None = None) -> Path:
    """Refuse an output path that is one of `inputs` (or their SQLite -wal/-shm
    companions) or inside an input folder, that is a folder where a file is
    meant (or a file where a folder is meant, with `folder`), whose folder
    cannot be written, or (given `ours`, which recognises this command's own
    earlier output) an existing non-empty file or folder that `ours` does not
    recognise: a command replaces what it wrote before, never someone's file.
    `what` names it in the message (the CLI passes its flag). Returns the path."""
    target = Path(path).expanduser()
    for src in inputs:
        src = Path(src).expanduser()
        companions = [src] + [src.with_name(src.name + s) for s in ("-wal", "-shm", "-journal", ".lock")]
        if any(_same_file(target, c) for c in companions):
            raise SparsescaleError(f"{what} {target}: is an input of this command ({src}); "
                                   "choose another output path")
        if src.is_dir() and target.resolve().is_relative_to(src.resolve()):
            raise SparsescaleError(f"{what} {target}: is inside an input folder of this command ({src}); "
                                   "choose another output path")
    if folder:
        if target.exists() and not target.is_dir():
            raise SparsescaleError(f"{what} {target}: exists and is not a folder")
    elif target.is_dir():
        raise SparsescaleError(f"{what} {target}: is a folder; give a file path")
    if ours is not None and _occupied(target) and not ours(target):
        kind = "folder" if target.is_dir() else "file"
        raise SparsescaleError(f"{what} {target}: an existing {kind} that this command did not write; "
                               "move it away or choose another path")
    _check_writable(target if folder and target.is_dir() else target.parent, what, target)
    return target


def _occupied(p: Path) -> bool:
    if p.is_dir():
        return any(p.iterdir())
    return p.exists() and p.stat().st_size > 0


def _check_writable(folder: Path, what: str, target: Path) -> None:
    """The nearest existing ancestor must be a writable folder (root ignores
    mode bits, so also try: a read-only mount answers EROFS only to a write)."""
    probe = folder
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if not probe.is_dir():
        raise SparsescaleError(f"{what} {target}: {probe} is not a folder")
    try:
        fd, tmp = tempfile.mkstemp(prefix=".sparsescale-probe.", dir=probe)
        os.close(fd)
        os.unlink(tmp)
    except OSError as exc:
        raise SparsescaleError(f"{what} {target}: cannot write in {probe} ({exc.strerror})") from None


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; rename it over `path` on
    success, delete it on error. `suffix` keeps the extension for writers that
    infer the format from it (matplotlib's savefig, pyarrow)."""
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(
            prefix=f".{target.name}.", suffix=suffix if suffix is not None else target.suffix + ".tmp",
            dir=target.parent,
        )
    except OSError as exc:
        raise SparsescaleError(f"{target}: cannot write ({exc.strerror})") from None
    os.close(fd)
    tmp_path = Path(tmp)
    # mkstemp creates 0600; give the final file the permissions a plain open() would
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp_path, 0o666 & ~umask)
    try:
        yield tmp_path
        os.replace(tmp_path, target)
    except OSError as exc:
        # Disk full, quota, a folder in the way: the old file is untouched; say so in one line.
        tmp_path.unlink(missing_ok=True)
        raise SparsescaleError(f"{target}: cannot write ({exc.strerror or exc}); any previous file is unchanged") from None
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())


def write_json(path: str | os.PathLike, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def save_figure(fig, path: str | os.PathLike, **kwargs) -> None:
    """Save a matplotlib figure atomically (format taken from the extension)."""
    target = Path(path)
    with atomic_path(target, suffix=target.suffix or ".png") as tmp:
        fig.savefig(tmp, format=(target.suffix.lstrip(".") or "png"), **kwargs)
