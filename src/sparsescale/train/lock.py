"""One process per run folder: an exclusive advisory lock on <out>/.run.lock.

Both `sparsescale train` and the sweep workers take it, so two processes never
train into the same folder at once (one result would silently replace the
other). flock is released by the kernel when the holder exits for any reason,
SIGKILL included, so a crashed run never leaves a stale lock.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from sparsescale.errors import SparsescaleError

LOCK = ".run.lock"


class RunFolderLock:
    """Hold `<folder>/.run.lock` for as long as the object is open. `wait`: block
    until the holder is done (a sweep worker re-dispatched while an orphan
    finishes) instead of refusing at once (a user's second `train`)."""

    def __init__(self, folder: str | os.PathLike, wait: bool = False, what: str = "out_dir"):
        self.folder, self.wait, self.what = Path(folder), wait, what
        self._fd: int | None = None

    def acquire(self) -> "RunFolderLock":
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.folder / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise SparsescaleError(f"{self.what} {self.folder}: cannot write there ({exc.strerror})") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if self.wait else fcntl.LOCK_NB))
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise SparsescaleError(
                f"{self.what} {self.folder}: another process (pid {holder}) is training in this folder;"
                " wait for it to finish or use another folder") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> "RunFolderLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
