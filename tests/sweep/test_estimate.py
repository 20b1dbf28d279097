"""The dry run's cost model (sweep/estimate.py) and `--dry-run --calibrate`."""

from __future__ import annotations

import subprocess
import sys

import pytest

from sparsescale.sweep.estimate import (
    EVAL_COST,
    RUN_OVERHEAD_S,
    StepCost,
    default_cost,
    run_seconds,
)


def test_run_seconds_is_start_up_plus_steps_plus_evaluation():
    plan = {"steps": 100, "train_flops_dense": 100 * 2e9, "batch": 8, "seq_len": 32}
    config = {"eval_every": 50, "eval_tokens": 256, "final_eval_tokens": 1024}
    cost = StepCost(0.01, 1e-11, "test")
    step_s = 0.01 + 1e-11 * 2e9
    evaluated = 1 * 256 / 32 + 1024 / 32  # one intermediate point, then the final one
    want = RUN_OVERHEAD_S + 100 * step_s + EVAL_COST * step_s * evaluated / 8
    assert run_seconds(plan, cost, config) == pytest.approx(want)


def test_without_calibration_the_estimate_says_it_is_a_guess():
    assert default_cost().guess and "CPU-derived guess" in default_cost().source
    store_based = default_cost([{"wall_s": 10.0, "train_flops_dense": 1e11}])
    assert not store_based.guess and store_based.s_per_flop == pytest.approx(1e-10)


@pytest.mark.slow
def test_calibrated_dry_run_times_the_runs_and_prints_device_hours(tmp_path):
    spec = tmp_path / "s.toml"
    spec.write_text(
        'name = "s"\nfamily = "gpt"\n[grid]\nn_nonzero = ["8k", "32k"]\ntokens = ["20k"]\n'
        "[train]\nbatch = 8\nseq_len = 32\neval_tokens = 256\nthreads = 1\n"
    )
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "from sparsescale.cli import main; main()",
            "sweep",
            spec,
            "--dry-run",
            "--calibrate",
            "--store",
            tmp_path / "s.sqlite",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    out = " ".join(done.stdout.split())
    assert "calibrated: 10 timed steps of the smallest and largest runs on cpu" in out
    assert "core-h in total" in out and "GUESS" not in out
    assert done.stderr.count("timing 10 steps") == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.toml"]  # a dry run writes nothing
