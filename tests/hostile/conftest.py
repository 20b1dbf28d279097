"""Hostile-input suite: every case is a real subprocess of the CLI, checked for
its exit status, exactly one line on stderr, no traceback, and (for data
cases) the byte-identical survival of what the command was given."""

from __future__ import annotations

import os
import shutil
import sqlite3
import sysconfig
from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


@pytest.fixture(scope="session", autouse=True)
def private_cache(tmp_path_factory) -> Path:
    """Corpus caches and crash logs of these tests stay in a private folder."""
    path = tmp_path_factory.mktemp("hostile-cache")
    os.environ["SPARSESCALE_CACHE"] = str(path)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    return path


@pytest.fixture()
def corpus(tmp_path) -> Path:
    """About 200 KB of real text (Python's own library sources), a fresh copy per
    test so that a test may edit it."""
    folder = tmp_path / "corpus"
    folder.mkdir()
    size = 0
    for f in sorted(Path(sysconfig.get_paths()["stdlib"]).glob("*.py")):
        shutil.copyfile(f, folder / (f.name + ".txt"))
        size += f.stat().st_size
        if size > 200_000:
            break
    return folder


@pytest.fixture()
def store(tmp_path) -> Path:
    """A copy of a real store (8 finished tiny GPT runs of one sweep, 'tiny')."""
    path = tmp_path / "q.sqlite"
    shutil.copy(FIXTURES / "store-v0.1-tiny.sqlite", path)
    return path


@pytest.fixture()
def two_sweeps(store) -> Path:
    """The store with a second sweep, 'other', holding two of its runs again."""
    conn = sqlite3.connect(store)
    with conn:
        conn.execute(
            "INSERT INTO sweeps (name, spec_json, spec_hash, note, created_at) "
            "VALUES ('other', '{}', 'h-other', '', 0)"
        )
        sid = conn.execute("SELECT id FROM sweeps WHERE name='other'").fetchone()[0]
        for (h,) in conn.execute("SELECT config_hash FROM runs ORDER BY rowid LIMIT 2").fetchall():
            conn.execute("INSERT INTO sweep_runs VALUES (?, ?)", (sid, h))
    conn.close()
    return store
