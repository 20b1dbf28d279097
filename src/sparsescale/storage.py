"""Durable storage for a sweep's run folders, and each node's local scratch.

A storage location is a local or network path (trained in place: every node
sees the same folder) or an fsspec URI such as `s3://bucket/sweep`,
`gs://...` or `file:///...` (needs `fsspec`, plus the
package of the protocol, e.g. `s3fs`). A URI is treated as object storage:
a run trains in this node's scratch folder and a `RunMirror` copies its files
to the URI as they change and once more when the run ends, so that the last
checkpoint survives the node. This is what Ray Train's `storage_path` does,
for the same reason. (`memory://` is refused as a sweep's storage: it dies
with the process; the tests use it only for the mirror itself.)

Scratch: $SPARSESCALE_SCRATCH, default <tmp>/sparsescale-scratch-<uid>. It
holds what a node can rebuild: staged run folders and the corpus cache.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from pathlib import Path

from sparsescale.errors import SparsescaleError

# Files a run folder holds that are per-process bookkeeping, never durable.
LOCAL_ONLY = (".run.lock", "worker.pid")


def is_uri(location: str | os.PathLike) -> bool:
    """Whether a location names an fsspec protocol (`s3://...`) rather than a path."""
    return "://" in str(location)


def join(base: str | os.PathLike, name: str) -> str:
    """`base`/`name` for a path or a URI (Path would fold the `//` of a URI)."""
    if is_uri(base):
        return f"{str(base).rstrip('/')}/{name}"
    return str(Path(base) / name)


def scratch_root() -> Path:
    """This node's scratch folder: $SPARSESCALE_SCRATCH, default <tmp>/sparsescale-scratch-<uid>."""
    given = os.environ.get("SPARSESCALE_SCRATCH")
    if given:
        return Path(given)
    return Path(tempfile.gettempdir()) / f"sparsescale-scratch-{os.getuid()}"


def filesystem(uri: str, what: str = "storage"):
    """(fsspec filesystem, path inside it) for a URI; SparsescaleError naming
    `what` when fsspec or the protocol's package is missing."""
    try:
        import fsspec
    except ImportError:
        raise SparsescaleError(
            f"{what} {uri}: a URI needs the 'fsspec' package (pip install fsspec)"
        ) from None
    try:
        return fsspec.core.url_to_fs(uri)
    except (ImportError, ValueError) as exc:
        raise SparsescaleError(f"{what} {uri}: cannot open this URI ({_first_line(exc)})") from None
    except Exception as exc:  # noqa: BLE001 -- backends that connect at once (ftp, sftp) raise their own errors
        raise SparsescaleError(
            f"{what} {uri}: cannot reach it ({type(exc).__name__}: {_first_line(exc)})"
        ) from None


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [""])[0][:200]


def is_run_storage(folder: Path) -> bool:
    """Whether an existing local folder is a sweep's storage (only run folders,
    named by the first 16 hex digits of their hash, and dot files): a sweep puts
    its run folders only in a new folder or in one of these."""

    def ours(p: Path) -> bool:
        return p.name.startswith(".") or (
            p.is_dir() and len(p.name) == 16 and all(c in "0123456789abcdef" for c in p.name)
        )

    return all(ours(p) for p in folder.iterdir())


def check_location(location: str | os.PathLike, what: str = "storage", create: bool = True) -> None:
    """Fail early, naming `what`, for a location nobody can write to, that
    cannot be reached, or that does not outlive this process (memory://: every
    checkpoint and result would be lost at exit). `create=False` checks without
    creating anything (a dry run, and every check before a sweep starts); a
    local folder must then also be new or a sweep's storage (`is_run_storage`)."""
    if is_uri(location):
        fs, path = filesystem(str(location), what)
        protocols = (fs.protocol,) if isinstance(fs.protocol, str) else tuple(fs.protocol)
        if "memory" in protocols:
            raise SparsescaleError(
                f"{what} {location}: memory storage ends with this process and every checkpoint "
                "and result with it; give a folder or a durable URI (s3://, gs://, file://...)"
            )
        try:
            if create:
                fs.makedirs(path, exist_ok=True)
            else:
                fs.exists(path)  # reachable at all (a host that does not resolve, a closed port)
        except Exception as exc:  # noqa: BLE001 -- each backend has its own network errors
            verb = "create" if create else "reach"
            raise SparsescaleError(
                f"{what} {location}: cannot {verb} it ({type(exc).__name__}: {_first_line(exc)})"
            ) from None
        return
    if not create:
        from sparsescale.atomic import check_output

        check_output(location, what=what, folder=True, ours=is_run_storage)
        return
    try:
        Path(location).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SparsescaleError(f"{what} {location}: cannot create it ({exc.strerror})") from None


def read_bytes(uri: str, what: str = "storage") -> bytes:
    fs, path = filesystem(uri, what)
    try:
        return fs.cat_file(path)
    except FileNotFoundError:
        raise SparsescaleError(f"{what} {uri}: no such file") from None


def exists(location: str) -> bool:
    if is_uri(location):
        fs, path = filesystem(location)
        return fs.exists(path)
    return Path(location).exists()


class RunMirror:
    """A run folder staged in local scratch and mirrored to a durable URI folder.

    `pull()` replaces the local folder with the durable one (storage is the
    truth: a node's older or newer leftovers are dropped). `push()` copies
    every file changed since the last push; each upload goes to a `.part`
    name first and is moved over the old file, so a reader (a retry on
    another node) never finds a half-written checkpoint. `start(every_s)`
    pushes from a background thread while the run trains; `stop()` ends it
    and pushes once more."""

    def __init__(self, uri: str, local: Path):
        self.uri, self.local = uri, Path(local)
        self.fs, self.path = filesystem(uri)
        self._pushed: dict[str, tuple[int, int]] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def pull(self) -> list[str]:
        """Copy the durable files into a fresh local folder; returns their names."""
        shutil.rmtree(self.local, ignore_errors=True)
        self.local.mkdir(parents=True, exist_ok=True)
        names = []
        if self.fs.exists(self.path):
            for info in self.fs.ls(self.path, detail=True):
                name = info["name"].rstrip("/").rsplit("/", 1)[-1]
                if info.get("type") != "file" or name.endswith(".part") or name in LOCAL_ONLY:
                    continue
                tmp = self.local / f".{name}.pull"
                self.fs.get_file(info["name"], str(tmp))
                os.replace(tmp, self.local / name)
                names.append(name)
        for name in names:  # what came from storage needs no push back
            st = (self.local / name).stat()
            self._pushed[name] = (st.st_mtime_ns, st.st_size)
        return names

    def push(self) -> None:
        with self._lock:  # the background thread and stop() never upload at once
            self.fs.makedirs(self.path, exist_ok=True)
            for f in sorted(self.local.iterdir()):
                # dot files are atomic writes in progress (atomic.py) or locks
                if not f.is_file() or f.name.startswith(".") or f.name in LOCAL_ONLY:
                    continue
                st = f.stat()
                if self._pushed.get(f.name) == (st.st_mtime_ns, st.st_size):
                    continue
                target = f"{self.path.rstrip('/')}/{f.name}"
                self.fs.put_file(str(f), target + ".part")
                self.fs.mv(target + ".part", target)
                self._pushed[f.name] = (st.st_mtime_ns, st.st_size)

    def start(self, every_s: float = 1.0) -> None:
        def loop() -> None:
            while not self._stop.wait(every_s):
                try:
                    self.push()
                except OSError:
                    pass  # a storage hiccup: the next round or stop() tries again

        self._thread = threading.Thread(target=loop, daemon=True, name="run-mirror")
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.push()
