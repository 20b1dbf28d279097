"""A file that is not a sparsescale store, or a store of a newer version,
given as --store (or to export/report) is refused and left byte-identical."""

from __future__ import annotations

import sqlite3

import pytest
from hostile_helpers import cli, digest, one_line


def _spec(tmp_path, corpus):
    spec = tmp_path / "tiny.toml"
    spec.write_text(
        f'name = "tiny2"\nfamily = "gpt"\n[grid]\nsparsity = [0.0]\nn_nonzero = ["10k"]\n'
        f'tokens = ["768"]\n[train]\nbatch = 4\nseq_len = 32\neval_tokens = 256\n'
        f'corpus = "{corpus}"\n'
    )
    return spec


def _foreign(path, with_runs: bool):
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY, amount REAL)")
        conn.execute("INSERT INTO invoices VALUES (1, 9.5)")
        if with_runs:
            conn.execute("CREATE TABLE runs (config_hash TEXT, note TEXT)")
            conn.execute("INSERT INTO runs VALUES ('x', 'mine')")
    conn.close()
    return path


@pytest.mark.parametrize("with_runs", [False, True])
def test_foreign_sqlite_store_is_refused_untouched(tmp_path, corpus, with_runs):
    db = _foreign(tmp_path / "app.db", with_runs)
    before = digest(db)
    one_line(
        cli("sweep", _spec(tmp_path, corpus), "--store", db),
        2,
        str(db),
        "another program",
        "untouched",
    )
    one_line(cli("export", db), 2, str(db))
    one_line(cli("report", db, "--out", tmp_path / "r"), 2, str(db))
    assert digest(db) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "app.db",
        "corpus",
        "tiny.toml",
    ]  # nothing beside it


def test_store_of_a_newer_schema_is_refused_untouched(tmp_path, corpus, store):
    conn = sqlite3.connect(store)
    with conn:
        conn.execute("UPDATE meta SET value='99' WHERE key='schema_version'")
    conn.close()
    before = digest(store)
    one_line(cli("sweep", _spec(tmp_path, corpus), "--store", store), 2, "newer", "schema 99")
    one_line(cli("export", store), 2, "newer")
    assert digest(store) == before


def test_a_text_file_as_store_is_refused_untouched(tmp_path, corpus):
    f = tmp_path / "notes.sqlite"
    f.write_text("my notes\n")
    before = digest(f)
    one_line(cli("sweep", _spec(tmp_path, corpus), "--store", f), 2, "not an SQLite file")
    assert digest(f) == before


def test_store_where_nothing_can_be_written(tmp_path, corpus):
    one_line(
        cli("sweep", _spec(tmp_path, corpus), "--store", "/proc/sparsescale-test/s.sqlite"),
        2,
        "/proc/sparsescale-test",
    )
    f = tmp_path / "file"
    f.write_text("x")
    one_line(cli("sweep", _spec(tmp_path, corpus), "--store", f / "s.sqlite"), 2, str(f))
