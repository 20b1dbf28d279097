"""The gpu-law preset and its device script (research/gpu-law): the design is
what the protocol says, the 10x run is 10x the compute of the largest fitted
run at a larger N, the preset dry-runs, and the device script's whole path
(sweep, fit, the 10x prediction written before the 10x run, report, targets)
runs on a CPU at toy sizes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sparsescale.recipes.demo import preset_path
from sparsescale.sweep.spec import expand, load_spec

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src"
RESEARCH = ROOT / "research" / "gpu-law"


def _load_targets():
    """research/gpu-law/targets.py (not a package: loaded by path, under its own name)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("gpu_law_targets", RESEARCH / "targets.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


targets = _load_targets()


def _env(tmp_path: Path) -> dict:
    return dict(os.environ, PYTHONPATH=str(SRC), SPARSESCALE_CACHE=str(tmp_path / "cache"))


def test_gpu_law_design_and_its_10x_run():
    spec = load_spec(preset_path("gpu-law"))
    runs = expand(spec)
    assert spec.family == "gpt" and len(runs) == 96
    S = sorted({r.config["sparsity"] for r in runs})
    N = sorted({r.axes["n_nonzero"] for r in runs})
    D = sorted({r.config["tokens"] for r in runs})
    lrs = sorted({r.axes["lr"] for r in runs})
    assert S == [0.0, 0.5, 0.75, 0.875]
    assert N[-1] / N[0] >= 8 and D[-1] / D[0] >= 8 and len(D) >= 3 and len(lrs) >= 2
    # every run is one pass over the corpus's training split (9,363,197 tokens, PROTOCOL.md)
    assert max(D) <= 9_363_197
    t = spec.train
    assert (
        t["seq_len"] == 256
        and t["depth"] == "auto"
        and t["tokenizer"] == "research/gpu-law/tokenizer.json"
    )
    assert 0 < spec.resources.gpus_per_run < 1

    tenx = load_spec(RESEARCH / "tenx.toml")
    (run,) = {(r.config["sparsity"], r.axes["n_nonzero"], r.config["tokens"]) for r in expand(tenx)}
    s, n, d = run
    fitted = [x for x in N if x < N[-1]]  # the largest N is the holdout
    largest_fitted = 6 * max(fitted) * max(D)  # the law's compute, 6 N D
    assert n > N[-1] and 6 * n * d == pytest.approx(10 * largest_fitted)
    assert d <= max(D) and s == 0.5
    # the same recipe as the sweep, so the law speaks of it
    assert tenx.train == spec.train and tenx.grid.lr == spec.grid.lr
    tok = json.loads((RESEARCH / "tokenizer.json").read_text())
    assert len(tok["model"]["vocab"]) == 8192


def _write_summary(
    out: Path,
    *,
    bn=(0.2, 0.3, 0.4),
    holdout=(0.01, 0.02),
    verdicts=("power law",) * 3,
    at_bound=(),
    sopt_low=0.1,
    measured=2.0,
    pred=(1.99, 1.95, 2.05),
):
    (out / "report").mkdir(parents=True)
    summary = {
        "diagnostics": {"at_bound": list(at_bound)},
        "intervals": {
            "bN": dict(zip(("low", "median", "high"), bn)),
            "bS": {"low": 0.4, "median": 0.5, "high": 0.7},
            "equivalent dense size at S=0.5": {"low": 1.5, "median": 1.7, "high": 1.9},
        },
        "holdout": {
            "mean_abs_rel_error": holdout[0],
            "max_abs_rel_error": holdout[1],
            "held_out_n_nonzero": 2e6,
        },
        "regime": [
            {"sparsity": 0.0, "n_nonzero": n, "verdict": v}
            for n, v in zip((2.5e5, 5e5, 1e6), verdicts)
        ]
        + [
            {"sparsity": 0.0, "n_nonzero": 2e6, "verdict": "step"}
        ],  # the holdout's series is not judged
    }
    (out / "report" / "summary.json").write_text(json.dumps(summary))
    (out / "prediction-10x.json").write_text(
        json.dumps({"predictions": [{"loss": pred[0], "low": pred[1], "high": pred[2]}]})
    )
    (out / "optimal-10x.json").write_text(
        json.dumps({"sparsity": 0.6, "intervals": {"sparsity": {"low": sopt_low, "high": 0.8}}})
    )
    (out / "tenx.csv").write_text(
        f"sparsity,n_nonzero,tokens,loss,status\n0.5,1e7,6e6,{measured + 0.1},finished\n"
        f"0.5,1e7,6e6,{measured},finished\n"
    )


def test_targets_pass_and_fail_by_their_thresholds(tmp_path):
    good = tmp_path / "good"
    _write_summary(good)
    r = targets.judge(good)
    assert r["all_pass"] and r["n_passed"] == r["n_judged"] == 9
    assert r["targets"]["bN_spread"]["value"] == pytest.approx((0.4 - 0.2) / 0.3)
    assert r["targets"]["tenx_within_2pct"]["value"] == pytest.approx(
        2.0 / 1.99 - 1
    )  # the better lr
    assert r["targets"]["equivalent_dense_size_S0.5"]["t5"] == 1.77

    bad = tmp_path / "bad"
    _write_summary(
        bad,
        bn=(0.1, 0.3, 0.5),
        holdout=(0.016, 0.031),
        verdicts=("power law", "crash", "power law"),
        at_bound=("c",),
        sopt_low=0.0,
        measured=2.1,
    )
    r = targets.judge(bad)
    failed = {k for k, x in r["targets"].items() if x["pass"] is False}
    assert failed == {
        "no_coefficient_at_bound",
        "bN_spread",
        "holdout_mean",
        "holdout_max",
        "regime",
        "sopt_10x",
        "tenx_within_2pct",
        "tenx_inside_interval",
    }
    assert not r["all_pass"] and r["targets"]["regime"]["value"] == "2 of 3 series a power law"

    # nothing measured: nothing passes
    (tmp_path / "empty").mkdir()
    assert targets.judge(tmp_path / "empty") == {
        "targets": {},
        "all_pass": False,
        "n_judged": 0,
        "n_passed": 0,
    }


@pytest.mark.slow
def test_gpu_law_preset_dry_runs(tmp_path):
    """`sparsescale sweep --dry-run` of the preset as shipped (from the repository
    root, as the preset's relative paths expect), its corpus swapped for shards of
    the same size class so no corpus need be built."""
    shards = tmp_path / "shards"
    shards.mkdir()
    rng = np.random.default_rng(0)
    for i in range(4):  # 4 x 1.6M training tokens: the largest budget, 6M, fits in one pass
        rng.integers(0, 8192, 1_600_000, dtype=np.uint16).tofile(shards / f"train_{i}.bin")
    rng.integers(0, 8192, 200_000, dtype=np.uint16).tofile(shards / "val_0.bin")
    (shards / "manifest.json").write_text(
        json.dumps({"dtype": "uint16", "vocab_size": 8192, "val": ["val_*.bin"]})
    )
    text = (
        preset_path("gpu-law")
        .read_text()
        .replace('corpus = ".corpus/gpu-law"', f'corpus = "{shards}"')
    )
    spec = tmp_path / "gpu-law.toml"
    spec.write_text(text)
    dry = subprocess.run(
        [
            sys.executable,
            "-m",
            "sparsescale",
            "sweep",
            str(spec),
            "--dry-run",
            "--store",
            str(tmp_path / "g.sqlite"),
        ],
        capture_output=True,
        text=True,
        env=dict(_env(tmp_path), COLUMNS="200"),
        timeout=120,
        cwd=ROOT,
    )
    assert dry.returncode == 0, dry.stderr
    assert "96 runs" in dry.stdout and not (tmp_path / "g.sqlite").exists()


@pytest.mark.slow
def test_device_script_cpu_dry_run(tmp_path):
    """The whole device path at toy sizes; the 10x prediction is on disk before the
    10x run trains (2 steps), and targets.json judges what came out."""
    out, work = tmp_path / "out", tmp_path / "work"
    env = dict(_env(tmp_path), OUT=str(out), WORK=str(work), PY=sys.executable, BOOT_DRY="10")
    done = subprocess.run(
        ["bash", str(RESEARCH / "device.sh"), "--cpu-dry-run"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    timeline = (out / "timeline.txt").read_text()
    assert (
        timeline.index("write the 10x prediction")
        < timeline.index("10x run")
        < timeline.index("targets")
    )
    pred = json.loads((out / "prediction-10x.json").read_text())["predictions"][0]
    assert pred["low"] <= pred["loss"] <= pred["high"] and pred["n_nonzero"] == 16_000
    trained = [p for p in (work / "tenx.runs").rglob("*") if p.is_file()]
    assert trained and (out / "prediction-10x.json").stat().st_mtime <= min(
        p.stat().st_mtime for p in trained
    )
    result = json.loads(next((work / "tenx.runs").rglob("result.json")).read_text())
    assert result["status"] == "finished" and result["steps"] == 2
    assert (out / "report" / "summary.json").is_file()
    judged = json.loads((out / "targets.json").read_text())
    assert {"holdout_mean", "regime", "prediction_10x", "tenx_within_2pct", "sopt_10x"} <= set(
        judged["targets"]
    )
