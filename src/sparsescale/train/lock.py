"""One process per run folder: an exclusive advisory lock on <out>/.run.lock.

Both `sparsescale train` and the sweep workers take it, so two processes never
train into the same folder at once (one result would silently replace the
other). flock is released by the kernel when the holder exits for any reason,
SIGKILL included, so a crashed run never leaves a stale lock.
"""

from __future__ import annotations

import os
from pathlib import Path

from sparsescale.locks import PidLock

LOCK = ".run.lock"


class RunFolderLock(PidLock):
    """Hold `<folder>/.run.lock` for as long as the object is open. `wait`: block
    until the holder is done (a sweep worker re-dispatched while an orphan
    finishes) instead of refusing at once (a user's second `train`)."""

    def __init__(self, folder: str | os.PathLike, wait: bool = False, what: str = "out_dir"):
        self.folder, self.what = Path(folder), what
        super().__init__(
            self.folder / LOCK, wait=wait,
            busy=lambda pid: (f"{what} {folder}: another process (pid {pid}) is training in this folder;"
                              " wait for it to finish or use another folder"),
            unwritable=lambda err: f"{what} {folder}: cannot write there ({err})")
