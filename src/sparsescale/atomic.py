"""Atomic file output: write to a temporary file beside the target, then rename.

A crash or an error half way never leaves a half-written file under the final
name, and readers never see a partial file.

The output rule, in one place: a command writes only a path that does not
exist yet or that holds what this command wrote before (recognised by its
content: a law JSON by its keys, a figure by the tag `save_figure` puts in
its metadata, a report folder by its summary.json, ...), never one of its
inputs, and it checks every output before any work starts. `check_output`
checks one path (not an input by resolved path or inode, not a folder, its
folder writable, and not someone else's file); `check_outputs` checks all of
a command's outputs at once, and that no two of them are the same path.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from sparsescale.errors import SparsescaleError


def _same_file(a: Path, b: Path) -> bool:
    if a.resolve() == b.resolve():
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist: not the same file
        return False


def check_output(
    path: str | os.PathLike,
    inputs: Iterable[str | os.PathLike] = (),
    what: str = "output",
    folder: bool = False,
    ours: Callable[[Path], bool] | None = None,
) -> Path:
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
        companions = [src] + [
            src.with_name(src.name + s) for s in ("-wal", "-shm", "-journal", ".lock")
        ]
        if any(_same_file(target, c) for c in companions):
            raise SparsescaleError(
                f"{what} {target}: is an input of this command ({src}); choose another output path"
            )
        if src.is_dir() and target.resolve().is_relative_to(src.resolve()):
            raise SparsescaleError(
                f"{what} {target}: is inside an input folder of this command ({src}); "
                "choose another output path"
            )
    if folder:
        if target.exists() and not target.is_dir():
            raise SparsescaleError(f"{what} {target}: exists and is not a folder")
    elif target.is_dir():
        raise SparsescaleError(f"{what} {target}: is a folder; give a file path")
    if ours is not None and _occupied(target) and not ours(target):
        kind = "folder" if target.is_dir() else "file"
        raise SparsescaleError(
            f"{what} {target}: an existing {kind} that this command did not write; "
            "move it away or choose another path"
        )
    _check_writable(target if folder and target.is_dir() else target.parent, what, target)
    return target


@dataclass(frozen=True)
class Output:
    """One path a command will write: the flag that names it, the recogniser of
    this command's own earlier output there (see `check_output`), and whether
    it is a folder."""

    path: str | os.PathLike
    what: str
    ours: Callable[[Path], bool]
    folder: bool = False


def check_outputs(
    outputs: Iterable[Output], inputs: Iterable[str | os.PathLike] = ()
) -> list[Path]:
    """`check_output` for each of a command's outputs, then refuse two outputs
    that are the same path (the second would replace the first). Returns the
    paths, in order."""
    inputs = list(inputs)
    seen: list[tuple[str, Path]] = []
    for out in outputs:
        path = check_output(out.path, inputs, what=out.what, folder=out.folder, ours=out.ours)
        for what, other in seen:
            if path.resolve() == other.resolve():
                raise SparsescaleError(
                    f"{out.what} {path}: is also the output of {what}; give different paths"
                )
        seen.append((out.what, path))
    return [p for _, p in seen]


def json_with_keys(*keys: str, **values: Any) -> Callable[[Path], bool]:
    """A recogniser of a JSON document this project wrote: an object with all
    `keys`, and these `values` under theirs (e.g. format="...")."""

    def ours(path: Path) -> bool:
        try:
            with open(path, "rb") as f:
                obj = json.loads(f.read(64 << 20))
        except (OSError, ValueError):
            return False
        return (
            isinstance(obj, dict)
            and all(k in obj for k in keys)
            and all(obj.get(k) == v for k, v in values.items())
        )

    return ours


# What `save_figure` puts in each format's metadata so that `is_figure` can
# tell our figures from someone's image (svgz, pgf and raw carry no readable
# tag: an existing file of those is never replaced).
FIGURE_TAG = "sparsescale"
_TAG_ARGS = {
    "png": {"metadata": {"Software": FIGURE_TAG}},
    **{fmt: {"metadata": {"Creator": FIGURE_TAG}} for fmt in ("pdf", "svg", "eps", "ps")},
    **{fmt: {"pil_kwargs": {"comment": FIGURE_TAG.encode()}} for fmt in ("jpg", "jpeg")},
    **{fmt: {"pil_kwargs": {"description": FIGURE_TAG}} for fmt in ("tif", "tiff")},
    "webp": {"pil_kwargs": {"exif": FIGURE_TAG.encode()}},
}


def is_figure(path: Path) -> bool:
    """Whether an image file carries `save_figure`'s tag. The formats keep
    metadata near the start (PNG text chunks, SVG, PostScript, JPEG comment,
    TIFF) or the end (the PDF info dictionary, WebP's EXIF), so those are read."""
    tag = FIGURE_TAG.encode()
    try:
        with open(path, "rb") as f:
            head = f.read(1 << 16)
            f.seek(max(0, os.fstat(f.fileno()).st_size - (1 << 16)))
            tail = f.read()
    except OSError:
        return False
    return tag in head or tag in tail


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
        raise SparsescaleError(
            f"{what} {target}: cannot write in {probe} ({exc.strerror})"
        ) from None


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; rename it over `path` on
    success, delete it on error. `suffix` keeps the extension for writers that
    infer the format from it (matplotlib's savefig, pyarrow)."""
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(
            prefix=f".{target.name}.",
            suffix=suffix if suffix is not None else target.suffix + ".tmp",
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
        raise SparsescaleError(
            f"{target}: cannot write ({exc.strerror or exc}); any previous file is unchanged"
        ) from None
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
    """Save a matplotlib figure atomically (format taken from the extension),
    tagged as ours (see `is_figure`)."""
    target = Path(path)
    fmt = target.suffix.lstrip(".").lower() or "png"
    with atomic_path(target, suffix=target.suffix or ".png") as tmp:
        fig.savefig(tmp, format=fmt, **_TAG_ARGS.get(fmt, {}), **kwargs)
