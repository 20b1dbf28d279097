"""One run end to end: loss falls for every family, determinism, divergence,
resume after a real kill, SIGTERM checkpoints, DDP with gloo, bad configs."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from train_cli import cli

from sparsescale.data.images import FASHION_MNIST_DIR
from sparsescale.errors import SparsescaleError
from sparsescale.train.config import RunConfig
from sparsescale.train.result import RunResult
from sparsescale.train.run import check_config, train

TINY = {"model": "gpt", "params": "10k", "sparsity": 0.5, "batch": 16, "seq_len": 32, "threads": 1}


def _flags(cfg: dict) -> list[str]:
    out = []
    for k, v in cfg.items():
        out += [f"--{k.replace('_', '-')}", str(v)]
    return out


def test_check_config_plans_sizes_and_flops(small_corpus):
    plan = check_config(RunConfig(**TINY, tokens="100k", corpus=str(small_corpus)))
    assert plan["steps"] == 100_000 // (16 * 32) and plan["tokens"] == plan["steps"] * 16 * 32
    assert abs(plan["n_nonzero"] / 10_000 - 1) < 0.05
    # dense FLOPs: 6 x dense block params x tokens; sparse: times the mean density of the cubic ramp
    assert plan["train_flops_dense"] == pytest.approx(
        6 * plan["n_nonzero"] / 0.5 * plan["tokens"], rel=1e-9
    )
    assert plan["train_flops_sparse"] / plan["train_flops_dense"] == pytest.approx(
        1 - 0.625 * 0.5, abs=0.02
    )
    assert set(plan) >= {"width", "total_params", "embedding_params"}


@pytest.mark.parametrize("family", ["gpt", "t5", "vit"])
def test_loss_falls_on_real_data(family, small_corpus, tmp_path):
    if family == "vit":
        if not FASHION_MNIST_DIR.is_dir():
            pytest.skip("dataset-fashion-mnist is not installed")
        cfg = RunConfig(
            model="vit",
            params="10k",
            sparsity=0.5,
            steps=200,
            batch=32,
            threads=1,
            eval_examples=1000,
        )
        chance = math.log(10) * 1.1  # 200 steps of a 10k ViT: clearly learning, not converged
    else:
        cfg = RunConfig(
            **{**TINY, "model": family, "params": "10k" if family == "gpt" else "20k"},
            steps=250,
            corpus=str(small_corpus),
            eval_tokens=8192,
        )
        chance = math.log(256)
    result = train(cfg, tmp_path / "run", quiet=True)
    assert result.status == "finished"
    curve = result.curve
    assert curve[-1]["step"] == cfg.steps and len(curve) >= 8
    assert result.final_loss == curve[-1]["val_loss"]
    assert result.final_loss < curve[0]["val_loss"] and result.final_loss < 0.7 * chance
    assert result.measured_sparsity == pytest.approx(0.5, abs=1e-3)
    assert abs(result.n_nonzero / result.target_n_nonzero - 1) < 0.05
    on_disk = json.loads((tmp_path / "run" / "result.json").read_text())
    assert on_disk["final_loss"] == result.final_loss
    assert RunResult.from_dict(on_disk) == result
    for key in (
        "config",
        "total_params",
        "embedding_params",
        "pattern",
        "steps",
        "train_flops_dense",
        "train_flops_sparse",
        "wall_s",
        "tokens_per_s",
        "versions",
    ):
        assert key in on_disk


def test_same_seed_same_loss_and_rerun_is_a_noop(small_corpus, tmp_path):
    cfg = RunConfig(**TINY, steps=30, corpus=str(small_corpus), eval_tokens=4096)
    a = train(cfg, tmp_path / "a", quiet=True)
    b = train(cfg, tmp_path / "b", quiet=True)
    assert a.final_loss == b.final_loss and a.curve == b.curve
    c = train(cfg.model_copy(update={"seed": 1}), tmp_path / "c", quiet=True)
    assert c.final_loss != a.final_loss
    again = train(cfg, tmp_path / "a", quiet=True)  # finished: returned as is, not retrained
    assert again.wall_s == a.wall_s
    # A different run pointed at a folder holding another run's checkpoint is refused.
    (tmp_path / "a" / "result.json").unlink()
    with pytest.raises(SparsescaleError, match="different run"):
        train(cfg.model_copy(update={"steps": 31}), tmp_path / "a", quiet=True)


def test_final_point_uses_the_larger_final_evaluation(small_corpus, tmp_path):
    """final_eval_tokens changes only the last curve point: the intermediate
    points (and the trained model) are those of the run without it."""
    cfg = RunConfig(**TINY, steps=20, corpus=str(small_corpus), eval_every=10, eval_tokens=1024)
    small = train(cfg, tmp_path / "small", quiet=True)
    big = train(cfg.model_copy(update={"final_eval_tokens": 32768}), tmp_path / "big", quiet=True)
    assert small.curve[0] == big.curve[0]
    assert big.final_loss == big.curve[-1]["val_loss"] != small.final_loss


def test_divergence_is_recorded(small_corpus, tmp_path):
    cfg = RunConfig(
        **TINY, steps=40, corpus=str(small_corpus), optimizer="adamw", lr=1e30, eval_tokens=2048
    )
    result = train(cfg, tmp_path / "d", quiet=True)
    assert result.status == "diverged" and result.final_loss is None
    assert 0 <= result.diverged_at_step < 40
    assert json.loads((tmp_path / "d" / "result.json").read_text())["status"] == "diverged"


# ---- resume after a real kill ------------------------------------------------------
RESUME = {**TINY, "steps": 150, "ckpt_every": 10, "eval_every": 50, "eval_tokens": 4096}


@pytest.fixture(scope="module")
def uninterrupted(small_corpus, tmp_path_factory):
    return train(
        RunConfig(**RESUME, corpus=str(small_corpus)), tmp_path_factory.mktemp("ref"), quiet=True
    )


def _start_and_interrupt(out: Path, corpus: Path, sig: int) -> tuple[int, int]:
    proc = subprocess.Popen(
        cli("train", *_flags(RESUME), "--corpus", str(corpus), "--out", str(out), "--quiet"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    deadline = time.time() + 120
    while not (out / "checkpoint.pt").exists():
        assert proc.poll() is None, proc.stderr.read().decode()
        assert time.time() < deadline
        time.sleep(0.01)
    proc.send_signal(sig)
    proc.wait(timeout=60)
    import torch

    step = torch.load(out / "checkpoint.pt", weights_only=True)["state"]["step"]
    return proc.returncode, step


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_resume_after_kill_matches_uninterrupted(sig, uninterrupted, small_corpus, tmp_path):
    out = tmp_path / "run"
    returncode, step = _start_and_interrupt(out, small_corpus, sig)
    assert returncode == -sig
    assert 0 < step < RESUME["steps"] and not (out / "result.json").exists()
    if sig == signal.SIGKILL:
        assert step % RESUME["ckpt_every"] == 0  # the last periodic checkpoint
    # Re-running the same command resumes and lands on the same loss.
    done = subprocess.run(
        cli("train", *_flags(RESUME), "--corpus", str(small_corpus), "--out", str(out), "--quiet"),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads((out / "result.json").read_text())
    assert abs(result["final_loss"] - uninterrupted.final_loss) < 1e-6
    assert [c["val_loss"] for c in result["curve"]] == pytest.approx(
        [c["val_loss"] for c in uninterrupted.curve], abs=1e-6
    )
    # the curve point after the resume averages the training loss since the last point, as
    # uninterrupted
    assert [c["train_loss"] for c in result["curve"]] == pytest.approx(
        [c["train_loss"] for c in uninterrupted.curve], abs=1e-6
    )


@pytest.mark.slow
def test_ddp_gloo_two_processes_match_one(small_corpus, tmp_path):
    cfg = {**TINY, "steps": 40, "eval_every": 20, "eval_tokens": 4096}
    single = train(RunConfig(**cfg, corpus=str(small_corpus)), tmp_path / "one", quiet=True)
    script = tmp_path / "entry.py"
    script.write_text("from sparsescale.cli import main\nmain()\n")
    env = dict(os.environ, OMP_NUM_THREADS="1")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node=2",
            str(script),
            "train",
            *_flags(cfg),
            "--corpus",
            str(small_corpus),
            "--out",
            str(tmp_path / "two"),
            "--quiet",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads((tmp_path / "two" / "result.json").read_text())
    assert result["world_size"] == 2 and result["status"] == "finished"
    assert result["final_loss"] == pytest.approx(single.final_loss, abs=2e-3)


# ---- bad configs: clear one-line errors, exit status 2 ------------------------------
def test_nm_that_does_not_divide_the_width(small_corpus, tmp_path):
    dense = train(
        RunConfig(**{**TINY, "sparsity": 0.0}, steps=2, corpus=str(small_corpus), eval_tokens=1024),
        tmp_path / "dense",
        quiet=True,
    )
    assert dense.width % 64 != 0
    cfg = RunConfig(
        **{**TINY, "sparsity": None},
        pattern="1:64",
        steps=5,
        corpus=str(small_corpus),
        init_from=str(tmp_path / "dense" / "checkpoint.pt"),
    )
    with pytest.raises(SparsescaleError, match="--pattern 1:64: m=64 does not divide the width"):
        check_config(cfg)


@pytest.mark.parametrize(
    "flags,message",
    [
        (["--params", "10k", "--sparsity", "1.0", "--tokens", "10k"], "--sparsity"),
        (["--model", "bert", "--params", "10k", "--tokens", "10k"], "--model"),
        (["--params", "100", "--tokens", "10k"], "below the gpt minimum"),
        (["--params", "10k", "--tokens", "1G"], "data is never repeated"),
        (
            ["--params", "10k", "--tokens", "10k", "--corpus", "/no/such/folder"],
            "--corpus /no/such/folder",
        ),
    ],
)
def test_bad_config_exits_2_with_one_line(flags, message, small_corpus, tmp_path):
    if "--corpus" not in flags:
        flags = flags + ["--corpus", str(small_corpus)]
    done = subprocess.run(
        cli("train", *flags, "--out", str(tmp_path / "x")),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in done.stderr


def test_progress_reports_real_steps_and_loss(small_corpus, tmp_path):
    """What the sweep's per-run bars show: the steps done of the total, and the loss."""
    reports = []
    cfg = RunConfig(**TINY, steps=12, corpus=str(small_corpus), eval_tokens=1024)
    result = train(cfg, tmp_path / "p", quiet=True, progress=reports.append)
    assert reports and all(r["steps"] == 12 and 1 <= r["step"] <= 12 for r in reports)
    assert reports[0]["loss"] == pytest.approx(math.log(256), rel=0.3)  # step 1: about chance
    assert result.status == "finished"


def test_precision_bf16_rounds_but_trains_the_same_run(small_corpus, tmp_path):
    """precision is an execution setting: bf16 autocast on the CPU changes the loss by
    rounding only (here under 1%), and fp32 is what 'auto' gives on a CPU, bit for bit."""
    cfg = RunConfig(**TINY, steps=30, corpus=str(small_corpus), eval_tokens=4096)
    auto = train(cfg, tmp_path / "auto", quiet=True)
    fp32 = train(cfg.model_copy(update={"precision": "fp32"}), tmp_path / "fp32", quiet=True)
    bf16 = train(cfg.model_copy(update={"precision": "bf16"}), tmp_path / "bf16", quiet=True)
    assert fp32.final_loss == auto.final_loss
    assert bf16.final_loss != auto.final_loss
    assert abs(bf16.final_loss - auto.final_loss) / auto.final_loss < 0.01


@pytest.mark.skipif(not __import__("torch").cuda.is_available(), reason="needs a CUDA device")
def test_fp32_on_cuda_reproduces_the_cpu_run(small_corpus, tmp_path):
    """With precision fp32 a GPU run is the CPU run up to kernel rounding (the quick recipe's
    runs agreed to 8 digits); auto on CUDA is bf16 autocast, which moves the loss by rounding."""
    cfg = RunConfig(**TINY, steps=60, corpus=str(small_corpus), eval_tokens=4096)
    cpu = train(cfg, tmp_path / "cpu", quiet=True)
    gpu = train(
        cfg.model_copy(update={"device": "cuda", "precision": "fp32"}), tmp_path / "gpu", quiet=True
    )
    auto = train(cfg.model_copy(update={"device": "cuda"}), tmp_path / "auto", quiet=True)
    assert gpu.final_loss == pytest.approx(cpu.final_loss, rel=1e-5)
    assert auto.final_loss != gpu.final_loss
    assert auto.final_loss == pytest.approx(cpu.final_loss, rel=0.01)
