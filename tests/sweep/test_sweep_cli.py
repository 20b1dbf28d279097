"""The sweep commands through the real CLI, with real (tiny) training runs."""

import csv
import io
import json
import random
import signal
import subprocess
import sys
import time

import pytest

from sparsescale.sweep.store import Store

# Tiny real runs: the narrowest GPT, a few thousand tokens each.
TINY = """
name = "tiny"
family = "gpt"
[grid]
sparsity = {sparsity}
n_nonzero = {sizes}
tokens = {tokens}
[train]
batch = 8
seq_len = 32
eval_tokens = 2048
eval_every = 8
"""


def tiny_spec(
    tmp_path,
    sparsity="[0.0, 0.5, 0.75]",
    sizes='["8k", "16k", "32k"]',
    tokens='["6k", "12k"]',
    name="tiny.toml",
):
    p = tmp_path / name
    p.write_text(TINY.format(sparsity=sparsity, sizes=sizes, tokens=tokens))
    return p


def run_cli(*args, timeout=300):
    return subprocess.run(
        [sys.executable, "-c", "from sparsescale.cli import main; main()", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.mark.parametrize(
    "grid_line, message",
    [
        ("sparsity = [0.0, 1.0]", "grid.sparsity: sparsity 1.0 is outside [0, 1)"),
        ("sparsity = []", "grid.sparsity is empty"),
    ],
)
def test_bad_grid_exits_2_with_one_line_before_training(tmp_path, grid_line, message):
    spec = tiny_spec(tmp_path)
    spec.write_text(spec.read_text().replace("sparsity = [0.0, 0.5, 0.75]", grid_line))
    r = run_cli("sweep", spec, "--store", tmp_path / "s.sqlite")
    assert r.returncode == 2 and message in r.stderr and r.stderr.count("\n") == 1, r.stderr
    assert not (tmp_path / "s.sqlite").exists()


def test_unknown_family_exits_2(tmp_path):
    spec = tiny_spec(tmp_path)
    spec.write_text(spec.read_text().replace('family = "gpt"', 'family = "bert"'))
    r = run_cli("sweep", spec, "--store", tmp_path / "s.sqlite")
    assert r.returncode == 2 and "family: unknown family 'bert' (choose gpt, t5, vit" in r.stderr
    assert not (tmp_path / "s.sqlite").exists()


@pytest.mark.parametrize(
    "edit, message",
    [
        (('["8k", "16k", "32k"]', '["8k", "2k"]'), "below the gpt minimum"),
        (('["6k", "12k"]', '["6k", "50G"]'), "tokens"),
    ],
)
def test_impossible_runs_exit_2_naming_the_run_before_training(tmp_path, edit, message):
    spec = tiny_spec(tmp_path)
    spec.write_text(spec.read_text().replace(*edit))
    r = run_cli("sweep", spec, "--store", tmp_path / "s.sqlite")
    assert r.returncode == 2, r.stderr
    assert "tiny.toml: run (" in r.stderr and message in r.stderr and r.stderr.count("\n") == 1, (
        r.stderr
    )
    assert "Traceback" not in r.stderr
    assert not (tmp_path / "s.sqlite").exists()


def test_dry_run_prints_the_plan_and_trains_nothing(tmp_path):
    spec = tiny_spec(tmp_path)
    r = run_cli("sweep", spec, "--store", tmp_path / "s.sqlite", "--dry-run")
    assert r.returncode == 0, r.stderr
    assert "18 runs of gpt" in r.stdout and "FLOPs" in r.stdout and "estimated time" in r.stdout
    assert not (tmp_path / "s.sqlite").exists() and not (tmp_path / "s.runs").exists()


@pytest.mark.slow
def test_real_sweep_export_fit_and_report(tmp_path):
    spec = tiny_spec(tmp_path)
    store = tmp_path / "s.sqlite"
    r = run_cli("sweep", spec, "--store", store, "--workers", "2")
    assert r.returncode == 0, r.stderr
    assert "18 finished" in r.stdout
    with Store(store, readonly=True) as s:
        rows = s.runs()
    assert all(r["status"] == "finished" and r["final_loss"] > 0 for r in rows)
    # idempotent: a second invocation trains nothing
    again = run_cli("sweep", spec, "--store", store)
    assert again.returncode == 0 and "(18 already in the store)" in again.stdout

    table = tmp_path / "runs.csv"
    r = run_cli("export", store, "--csv", table)
    assert r.returncode == 0, r.stderr
    got = list(csv.DictReader(io.StringIO(table.read_text())))
    assert len(got) == 18 and {"sparsity", "n_nonzero", "tokens", "loss"} <= set(got[0])
    assert {float(g["loss"]) for g in got} == {r["final_loss"] for r in rows}
    r = run_cli("export", store, "--parquet", tmp_path / "runs.parquet")
    assert r.returncode == 0 and (tmp_path / "runs.parquet").exists()

    fit = run_cli(
        "fit",
        table,
        "--sparsity",
        "sparsity",
        "--params",
        "n_nonzero",
        "--data",
        "tokens",
        "--loss",
        "loss",
        "--json",
    )
    assert fit.returncode == 0, fit.stderr  # `sparsescale fit` reads the export directly
    assert json.loads(fit.stdout)["n_points"] == 18

    out = tmp_path / "report"
    r = run_cli("report", store, "--out", out, "--bootstrap", "10")
    assert r.returncode == 0, r.stderr
    assert "holdout" in r.stdout and ("train at S" in r.stdout or "train dense" in r.stdout)
    page = (out / "report.html").read_text()
    figures = json.loads((out / "summary.json").read_text())[
        "figures"
    ]  # 5 when the laws' S_opt maps disagree
    assert page.count('<img src="data:image/png;base64,') == len(figures) >= 4


@pytest.mark.slow
def test_real_training_coordinator_killed_three_times(tmp_path):
    """SIGKILL the coordinator (and with it its training workers) at random
    points; the restarted sweeps resume and end with the results of an
    uninterrupted sweep (CPU training is deterministic, resume exact)."""
    spec = tiny_spec(tmp_path, sparsity="[0.0, 0.5]", sizes='["8k"]', tokens='["12k", "24k"]')
    ref = run_cli("sweep", spec, "--store", tmp_path / "ref.sqlite", "--workers", "2")
    assert ref.returncode == 0, ref.stderr
    store = tmp_path / "crash.sqlite"
    rng = random.Random(7)
    for _ in range(3):
        p = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "from sparsescale.cli import main; main()",
                "sweep",
                str(spec),
                "--store",
                str(store),
                "--workers",
                "2",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(rng.uniform(2.0, 4.0))
        p.send_signal(signal.SIGKILL)
        p.wait()
    final = run_cli("sweep", spec, "--store", store, "--workers", "2")
    assert final.returncode == 0, final.stderr
    with Store(tmp_path / "ref.sqlite", readonly=True) as a, Store(store, readonly=True) as b:
        ref_rows, rows = a.runs(), b.runs()
        ref_curves, curves = a.curves(), b.curves()
    assert len(rows) == len(ref_rows) == 4 and all(r["status"] == "finished" for r in rows)
    assert {r["config_hash"]: r["final_loss"] for r in rows} == pytest.approx(
        {r["config_hash"]: r["final_loss"] for r in ref_rows}, abs=1e-6
    )
    assert {h: [p["step"] for p in c] for h, c in curves.items()} == {
        h: [p["step"] for p in c] for h, c in ref_curves.items()
    }
