"""Content hashes of files, read in 1 MiB blocks: one pass, bounded memory
(a 2 GB corpus file or checkpoint is never in memory whole)."""

from __future__ import annotations

import hashlib
from pathlib import Path

BLOCK_BYTES = 1 << 20


def update_from_file(h, path: Path) -> None:
    """Feed a file's bytes into the hash object `h`."""
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(BLOCK_BYTES), b""):
            h.update(block)


def file_digest(path: Path) -> str:
    """blake2b (16 bytes, hex) of a file's bytes."""
    h = hashlib.blake2b(digest_size=16)
    update_from_file(h, path)
    return h.hexdigest()
