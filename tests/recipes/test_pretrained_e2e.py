"""The pretrained-quick preset end to end, as a user runs it: sweep -> export
-> report -> `from-dense`, each a subprocess, with real training."""

import csv
import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow


def cli(*args, cwd):
    return subprocess.run(
        [sys.executable, "-m", "sparsescale", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=900,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )


def test_pretrained_quick_sweep_report_and_from_dense_plan(tmp_path):
    store = tmp_path / "pq.sqlite"
    done = cli("sweep", "pretrained-quick", "--store", store, "--workers", "2", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    from sparsescale.sweep.store import Store

    with Store(store, readonly=True) as s:
        rows = s.runs()
        trained = [a["config_hash"] for a in s.attempt_log() if a["outcome"] == "finished"]
    assert len(rows) == 29 and sorted(trained) == sorted(
        r["config_hash"] for r in rows
    )  # prefixes once
    by_hash = {r["config_hash"]: r for r in rows}

    export = tmp_path / "pq.csv"
    assert cli("export", store, "--csv", export, cwd=tmp_path).returncode == 0
    table = list(csv.DictReader(export.open()))
    pruned = [r for r in table if float(r["init_from_dense"]) > 0]
    assert len(table) == 24 and len(pruned) == 12
    for r in pruned:  # total compute = own sparse phase + the whole dense prefix
        prefix = by_hash[by_hash[r["config_hash"]]["depends_on"][0]]
        assert float(r["total_flops_sparse"]) == pytest.approx(
            float(r["train_flops_sparse"]) + prefix["train_flops_dense"]
        )

    out = tmp_path / "rep"
    done = cli("report", store, "--out", out, "--bootstrap", "20", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "pruned from dense: 12 runs" in done.stdout
    section = json.loads((out / "summary.json").read_text())["pretrained"]
    assert len(section["table"]) == 12 and (out / "pretrained_compute.png").stat().st_size > 10_000
    measured = {
        (r["sparsity"], r["n_target"], r["data"], r["dense_prefix"]): r["loss"]
        for r in section["table"]
    }
    for r in pruned:
        key = (
            float(r["sparsity"]),
            by_hash[r["config_hash"]]["axes"]["n_nonzero"],
            float(r["tokens"]),
            float(r["dense_prefix"]),
        )
        assert measured[key] == pytest.approx(float(r["loss"]))
    assert (
        section["sweep_total_flops"]["sparse"] < section["alone_total_flops"]
    )  # shared prefixes count once
    assert "Pruning a pretrained dense model" in (out / "report.html").read_text()
    law = json.loads((out / "pruned-law.json").read_text())
    assert law["fit"]["from_dense"]["n_pruned_runs"] == 12 and "uncertainty" in law

    done = cli(
        "from-dense",
        "--law",
        out / "pruned-law.json",
        "--dense",
        "100k,200k",
        "--compute",
        "1x",
        "--json",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    plan = json.loads(done.stdout)
    assert 0 <= plan["sparsity"] < 1 and plan["loss"] <= plan["dense_loss"] + 1e-12
    assert plan["intervals"]["loss"][0] <= plan["loss"] <= plan["intervals"]["loss"][1]
    assert plan["continue_data"] * 6 * 1e5 * (1 - 0.625 * plan["sparsity"]) == pytest.approx(
        6 * 1e5 * 2e5
    )
    text = cli(
        "from-dense",
        "--law",
        out / "pruned-law.json",
        "--dense",
        "100k,200k",
        "--compute",
        "1.2e11",
        cwd=tmp_path,
    )
    assert (
        text.returncode == 0
        and "prune to sparsity S" in text.stdout
        and "or continue dense" in text.stdout
    )
    bad = cli(
        "from-dense",
        "--law",
        out / "law.json",
        "--dense",
        "100k,200k",
        "--compute",
        "1x",
        cwd=tmp_path,
    )
    assert (
        bad.returncode == 2 and "--law" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1
    )
