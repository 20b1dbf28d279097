"""export and report: never over their own store, never a traceback on an
output path, one sweep at a time, and a clean stderr on success."""

from __future__ import annotations

import os
import resource
import signal
import sqlite3
import subprocess

import pandas as pd
import pytest
from hostile_helpers import cli, cli_argv, default_sigint, digest, one_line


@pytest.mark.parametrize("flag", ["--csv", "--parquet"])
def test_export_over_its_own_store_is_refused(store, flag):
    before = digest(store)
    one_line(cli("export", store, flag, store), 2, flag, "input")
    assert digest(store) == before
    # the store still reads
    assert cli("export", store).returncode == 0


def test_export_over_another_name_of_its_store_is_refused(store, tmp_path):
    alias = tmp_path / "alias.csv"
    os.link(store, alias)  # same inode, another name
    before = digest(store)
    one_line(cli("export", store, "--csv", alias), 2, "--csv", "input")
    one_line(cli("export", store, "--csv", tmp_path / "." / "q.sqlite"), 2, "--csv")
    assert digest(store) == before


def test_export_to_a_folder_or_under_a_file(store, tmp_path):
    one_line(cli("export", store, "--csv", tmp_path), 2, "--csv", "folder")
    one_line(cli("export", store, "--csv", store / "x.csv"), 2, "--csv")


def test_report_out_that_is_a_file_or_the_store(store, tmp_path):
    f = tmp_path / "notes.txt"
    f.write_text("mine\n")
    before = digest(store, f)
    one_line(cli("report", store, "--out", f, "--bootstrap", "0"), 2, "--out", "not a folder")
    one_line(cli("report", store, "--out", store, "--bootstrap", "0"), 2, "--out")
    assert digest(store, f) == before


def _fsize_limit(limit: int):
    def apply():
        # A file-size limit makes writes fail like a full disk (EFBIG instead of ENOSPC):
        # the same OSError path, without needing a small filesystem.
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


def test_export_when_the_disk_is_full_keeps_the_old_file(store, tmp_path):
    out = tmp_path / "old.csv"
    out.write_text("sparsity,n_nonzero,tokens,loss\n0.5,1000,2000,3.0\n")  # an earlier export
    before = digest(store, out)
    done = subprocess.run(
        cli_argv("export", store, "--csv", out),
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=_fsize_limit(600),
    )
    one_line(done, 2, str(out), "cannot write", "unchanged")
    assert digest(store, out) == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".old.csv")]  # no temp file left


def test_report_when_the_disk_is_full(store, tmp_path):
    out = tmp_path / "rep"
    before = digest(store)
    done = subprocess.run(
        cli_argv("report", store, "--out", out, "--bootstrap", "0"),
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=_fsize_limit(2000),
    )
    one_line(done, 2, "cannot write")
    assert digest(store) == before


def test_two_sweeps_need_a_name(two_sweeps, tmp_path):
    before = digest(two_sweeps)
    one_line(cli("export", two_sweeps), 2, "2 sweeps", "other", "tiny", "--sweep")
    one_line(cli("report", two_sweeps, "--out", tmp_path / "r"), 2, "other", "tiny", "--sweep")
    one_line(cli("export", two_sweeps, "--sweep", "nosuch"), 2, "--sweep nosuch", "other, tiny")
    done = cli("export", two_sweeps, "--sweep", "other", "--csv", tmp_path / "o.csv")
    assert done.returncode == 0, done.stderr
    other = pd.read_csv(tmp_path / "o.csv")
    assert len(other) == 2 and set(other["sweep"]) == {"other"}
    done = cli("export", two_sweeps, "--sweep", "tiny", "--csv", tmp_path / "t.csv")
    tiny = pd.read_csv(tmp_path / "t.csv")
    assert len(tiny) == 8 and set(tiny["sweep"]) == {"tiny"}
    assert digest(two_sweeps) == before


def test_report_success_prints_no_numpy_warnings(store, tmp_path):
    done = cli(
        "report", store, "--out", tmp_path / "r", "--bootstrap", "50"
    )  # 5 showed none on 0.1
    assert done.returncode == 0, done.stderr
    assert "Warning" not in done.stderr and "warn" not in done.stderr, done.stderr


def test_report_on_a_damaged_store(store, tmp_path):
    data = bytearray(store.read_bytes())
    page = 4096
    # overwrite every page but the header page with junk: the schema reads, the rows do not
    for i in range(page, len(data)):
        data[i] = 0xA5
    store.write_bytes(bytes(data))
    before = digest(store)
    for cmd in (("report", store, "--out", tmp_path / "r", "--bootstrap", "0"), ("export", store)):
        one_line(cli(*cmd), 2, str(store))
    assert digest(store) == before


def test_corrupt_row_page_in_report(store, tmp_path):
    """A damaged page discovered while reading rows (not at open)."""
    conn = sqlite3.connect(store)
    root = conn.execute("SELECT rootpage FROM sqlite_master WHERE name='curves'").fetchone()[0]
    page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    conn.close()
    data = bytearray(store.read_bytes())
    start = (root - 1) * page_size
    data[start : start + page_size] = b"\xff" * page_size
    store.write_bytes(bytes(data))
    one_line(cli("report", store, "--out", tmp_path / "r", "--bootstrap", "0"), 2, str(store))


def test_export_and_report_never_replace_files_they_did_not_write(store, tmp_path):
    notes = tmp_path / "notes.csv"
    notes.write_text("name,amount\nrent,900\n")
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("chapter 1\n")
    before = digest(store, notes, mine / "thesis.tex")
    one_line(cli("export", store, "--csv", notes), 2, "--csv", "did not write")
    one_line(cli("report", store, "--out", mine, "--bootstrap", "0"), 2, "--out", "did not write")
    assert digest(store, notes, mine / "thesis.tex") == before
    # their own earlier output is replaced as before
    out = tmp_path / "q.csv"
    assert cli("export", store, "--csv", out).returncode == 0
    assert cli("export", store, "--csv", out).returncode == 0
    rep = tmp_path / "rep"
    assert cli("report", store, "--out", rep, "--bootstrap", "0").returncode == 0
    assert cli("report", store, "--out", rep, "--bootstrap", "0").returncode == 0


@pytest.mark.parametrize(
    "flag, value",
    [
        ("--bootstrap", "1000000000"),
        ("--bootstrap", "-1"),
        ("--seed", "-5"),
        ("--bootstrap", "1e9"),
    ],
)
def test_report_numbers_without_meaning(store, tmp_path, flag, value):
    before = digest(store)
    one_line(cli("report", store, "--out", tmp_path / "r", flag, value), 2, flag)
    assert digest(store) == before
    assert not (tmp_path / "r").exists()


@pytest.mark.slow
def test_ctrl_c_during_the_report_bootstrap(store, tmp_path):
    import time

    p = subprocess.Popen(
        cli_argv("report", store, "--out", tmp_path / "r", "--bootstrap", "10000"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=default_sigint,
    )
    time.sleep(8)
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=60)
    one_line(subprocess.CompletedProcess(p.args, p.returncode, "", err), 130, "interrupted")
    assert not (tmp_path / "r" / "report.html").exists()
