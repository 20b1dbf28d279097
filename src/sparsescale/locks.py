"""Exclusive advisory locks on files that name their holder's pid.

flock is released by the kernel when the holder exits for any reason, SIGKILL
included, so a crashed process never leaves a stale lock behind. Two locks are
this one PidLock with their own file and message:

- `StoreLock`: one sweep coordinator per store (`<store>.lock`);
- `RunFolderLock`: one trainer per run folder (`<folder>/.run.lock`), taken by
  `sparsescale train` and by the sweep workers alike, so two processes never
  train into the same folder at once (one result would silently replace the other).
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import Callable

from sparsescale.errors import SparsescaleError


class PidLock:
    """Hold `path` exclusively while open. `wait`: block until the holder is done
    instead of refusing at once; `busy(holder_pid)` is the refusal message;
    `unwritable(strerror)`, when given, turns a lock file that cannot be created
    into one line instead of an OSError."""

    def __init__(
        self,
        path: str | os.PathLike,
        busy: Callable[[str], str],
        wait: bool = False,
        unwritable: Callable[[str], str] | None = None,
    ):
        self.path, self.busy, self.wait, self.unwritable = Path(path), busy, wait, unwritable
        self._fd: int | None = None

    def _open(self) -> int:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            return os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            if self.unwritable is None:
                raise
            raise SparsescaleError(self.unwritable(exc.strerror)) from None

    def acquire(self) -> "PidLock":
        fd = self._open()
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if self.wait else fcntl.LOCK_NB))
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise SparsescaleError(self.busy(holder)) from None
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

    def __enter__(self) -> "PidLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


class StoreLock(PidLock):
    """Hold `<store>.lock` exclusively for as long as the object is open."""

    def __init__(self, store_path: str | os.PathLike):
        store = Path(store_path)
        super().__init__(
            Path(str(store_path) + ".lock"),
            busy=lambda pid: (
                f"{store}: another sweep coordinator (pid {pid}) is using this store;"
                " wait for it to finish or stop it, or pass a different --store"
            ),
        )


RUN_LOCK = ".run.lock"


class RunFolderLock(PidLock):
    """Hold `<folder>/.run.lock` for as long as the object is open. `wait`: block
    until the holder is done (a sweep worker re-dispatched while an orphan
    finishes) instead of refusing at once (a user's second `train`)."""

    def __init__(self, folder: str | os.PathLike, wait: bool = False, what: str = "out_dir"):
        self.folder, self.what = Path(folder), what
        super().__init__(
            self.folder / RUN_LOCK,
            wait=wait,
            busy=lambda pid: (
                f"{what} {folder}: another process (pid {pid}) is training in this folder;"
                " wait for it to finish or use another folder"
            ),
            unwritable=lambda err: f"{what} {folder}: cannot write there ({err})",
        )
