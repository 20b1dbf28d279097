"""One coordinator per store: an exclusive advisory lock on STORE.lock."""

from __future__ import annotations

from pathlib import Path

from sparsescale.locks import PidLock


class StoreLock(PidLock):
    """Hold `<store>.lock` exclusively for as long as the object is open."""

    def __init__(self, store_path: str | Path):
        store = Path(store_path)
        super().__init__(
            Path(str(store_path) + ".lock"),
            busy=lambda pid: (f"{store}: another sweep coordinator (pid {pid}) is using this store;"
                              " wait for it to finish or stop it, or pass a different --store"))
