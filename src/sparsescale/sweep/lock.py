"""One coordinator per store: an exclusive advisory lock on STORE.lock.

flock is released by the kernel when the holder exits for any reason, SIGKILL
included, so a crashed coordinator never leaves a stale lock behind.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from sparsescale.errors import SparsescaleError


class StoreLock:
    """Hold `<store>.lock` exclusively for as long as the object is open."""

    def __init__(self, store_path: str | Path):
        self.path = Path(str(store_path) + ".lock")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd: int | None = None

    def acquire(self) -> "StoreLock":
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise SparsescaleError(
                f"{self.path.with_suffix('')}: another sweep coordinator (pid {holder}) is using this store;"
                " wait for it to finish or stop it, or pass a different --store") from None
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

    def __enter__(self) -> "StoreLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
