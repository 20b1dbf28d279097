"""The GPU check script's CPU dry run: every step at tiny sizes, the CUDA-only
ones skipped with a line, every output file written under $OUT."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_device_check_cpu_dry_run(tmp_path):
    env = {
        **os.environ,
        "OUT": str(tmp_path / "out"),
        "WORK": str(tmp_path / "work"),
        "PY": sys.executable,
    }
    proc = subprocess.run(
        ["bash", str(ROOT / "benchmarks" / "device_check.sh"), "--cpu-dry-run"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    text = proc.stdout + proc.stderr
    assert proc.returncode == 0, text[-3000:]
    # the CUDA-only steps say so, one line each; the rest ran
    assert "1. semi-structured parity tests" in text and "skipped: CUDA only" in text
    assert "semi_structured_bench: skipped" in text
    assert (
        "semi_structured: semi-structured 2:4 kernels need a CUDA device" in text
    )  # 2:4T --semi-structured
    out = tmp_path / "out"
    assert json.loads((out / "semi_bench.json").read_text())["skipped"]
    speedups = json.loads((out / "speedups.json").read_text())
    assert "unstructured" in speedups["speedups"] and set(speedups["skipped"]) == {"2:4", "2:4T"}
    optimal = json.loads((out / "optimal.json").read_text())
    assert {o["flops"] for o in optimal} == {"sparse", "dense", "measured"}
    train = json.loads((out / "train.json").read_text())
    # SIGTERM at the first checkpoint, then the same command: the same final loss
    assert train["resume_equal"] is True, train
    assert "steady" in json.dumps(train)
    assert (out / "device_check.log").stat().st_size > 0
