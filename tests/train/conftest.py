"""Train tests: a private cache and a small real corpus (a subset of linux-doc,
or of Python's own library sources where linux-doc is absent)."""

from __future__ import annotations

import os
import shutil
import sysconfig
from pathlib import Path

import pytest

LINUX_DOC = Path("/usr/share/doc/linux-doc-6.1/html/_sources")


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("cache")
    os.environ["SPARSESCALE_CACHE"] = str(path)
    return path


@pytest.fixture(scope="session")
def small_corpus(tmp_path_factory, cache_dir) -> Path:
    """About 1.5 MB of real text."""
    folder = tmp_path_factory.mktemp("corpus")
    if LINUX_DOC.is_dir():
        files = sorted((LINUX_DOC / "admin-guide").rglob("*.rst.txt")) + sorted(
            (LINUX_DOC / "process").rglob("*.rst.txt")
        )
    else:
        files = sorted(Path(sysconfig.get_paths()["stdlib"]).glob("*.py"))
    size = 0
    for i, f in enumerate(files):
        dest = folder / f"{i:04d}-{f.name}"
        if not dest.name.endswith((".rst.txt", ".txt")):
            dest = dest.with_name(dest.name + ".txt")
        shutil.copyfile(f, dest)
        size += f.stat().st_size
        if size > 1_500_000:
            break
    return folder
