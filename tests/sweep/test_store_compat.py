"""A store written by sparsescale 0.1 (before the family registry and the typed
run result) is still read by `export` and `report`.

tests/fixtures/store-v0.1-tiny.sqlite is the real output of
`sparsescale sweep tests/fixtures/store-v0.1-tiny.toml` with the code of commit
9933ca5 (8 tiny GPT runs); store-v0.1-tiny.csv is what that code's `export`
printed for it. Neither may be regenerated with newer code."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
CLI = [str(Path(sys.executable).with_name("sparsescale"))]


def _copy(tmp_path: Path) -> Path:
    store = tmp_path / "old.sqlite"
    shutil.copy(FIXTURES / "store-v0.1-tiny.sqlite", store)
    return store


def test_export_reads_an_old_store_unchanged(tmp_path):
    store = _copy(tmp_path)
    out = tmp_path / "old.csv"
    proc = subprocess.run(
        [*CLI, "export", str(store), "--csv", str(out)], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    import pandas as pd

    # Every 0.1 column and value as 0.1 exported them; new columns name the sweep and
    # add the compute of dense prefixes (none here: the totals are the runs' own).
    got, old = pd.read_csv(out), pd.read_csv(FIXTURES / "store-v0.1-tiny.csv")
    assert set(got["sweep"]) == {"tiny"}
    assert (got["total_flops_sparse"] == got["train_flops_sparse"]).all() and (
        got["prefix_flops"] == 0
    ).all()
    new = [
        "sweep",
        "dense_prefix",
        "prefix_flops",
        "total_flops_dense",
        "total_flops_sparse",
        "amortised_flops_sparse",
        "lr",
    ]
    assert got.drop(columns=new).to_csv(index=False) == old.to_csv(index=False)


def test_report_reads_an_old_store(tmp_path):
    store = _copy(tmp_path)
    out = tmp_path / "report"
    proc = subprocess.run(
        [*CLI, "report", str(store), "--out", str(out), "--bootstrap", "3"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n_points"] == 8
    assert "<html" in (out / "report.html").read_text().lower()


def test_a_sweep_worker_forwards_real_training_progress(tmp_path):
    """The per-run bars of a sweep follow what train() reports (steps done of the total, loss)."""
    from sparsescale.sweep.worker import RunTask, execute

    reports = []
    config = {
        "model": "gpt",
        "params": 8000,
        "steps": 6,
        "batch": 4,
        "seq_len": 32,
        "eval_tokens": 512,
        "threads": 1,
    }
    result, attempt = execute(RunTask("h" * 64, config, str(tmp_path / "run")), reports.append)
    assert attempt["resumed"] is False and attempt["pid"] > 0
    assert result["status"] == "finished"
    assert reports and all(
        r["steps"] == 6 and 1 <= r["step"] <= 6 and r["loss"] > 0 for r in reports
    )
