"""A stand-in training function for testing the sweep machinery without torch.

It is test-only: it "trains" for a given number of steps, sleeping a little per
step and checkpointing the step counter, and its final loss is a known
function of (S, N, D), so a sweep's results can be checked exactly. Like the
real runner it resumes from its checkpoint and writes result.json atomically.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from sparsescale.atomic import write_json

STEPS = 10


def toy_loss(sparsity: float, n_nonzero: float, data: float) -> float:
    return (
        (2.0 * (1 - sparsity) ** 0.7 + 1.0) * (n_nonzero / 1e4) ** -0.3 + (2e4 / data) ** 0.4 + 0.5
    )


def run(config: dict, out_dir: str, progress=None) -> dict:
    out = Path(out_dir)
    sleep_s = float(os.environ.get("TOY_STEP_SLEEP", "0.02"))
    ckpt = out / "ckpt.json"
    step = json.loads(ckpt.read_text())["step"] if ckpt.exists() else 0
    resumed_from = step
    if config.get("lr", 0) > 100:  # a learning rate that blows up, as a real run would
        result = {
            "config": config,
            "status": "diverged",
            "diverged_at_step": 3,
            "final_loss": float("nan"),
            "sparsity": config["sparsity"],
            "pattern": config.get("pattern"),
            "curve": [],
        }
        write_json(out / "result.json", result)
        return result
    curve = []
    while step < STEPS:
        time.sleep(sleep_s)
        step += 1
        write_json(ckpt, {"step": step})
        if progress:
            progress({"step": step, "loss": 10.0 / step})
    data = config.get("tokens") or config.get("examples") or config.get("steps")
    loss = toy_loss(config["sparsity"], config["params"], data)
    curve = [
        {
            "step": s,
            "tokens": s * data // STEPS,
            "val_loss": loss + 1.0 / s,
            "train_loss": loss + 1.2 / s,
        }
        for s in range(1, STEPS + 1)
    ]
    result = {
        "config": config,
        "status": "finished",
        "n_nonzero": config["params"],
        "total_params": config["params"] * 2,
        "embedding_params": 1000,
        "sparsity": config["sparsity"],
        "pattern": config.get("pattern"),
        "tokens": data,
        "steps": STEPS,
        "train_flops_dense": 6.0 * config["params"] * data,
        "train_flops_sparse": 6.0 * config["params"] * data,
        "final_loss": loss,
        "curve": curve,
        "wall_s": STEPS * sleep_s,
        "tokens_per_s": data / (STEPS * sleep_s),
        "versions": {},
        "diverged_at_step": None,
        "resumed_from_step": resumed_from,
    }
    write_json(out / "result.json", result)
    with open(out / "completions.log", "a") as f:  # lets tests count how often a run completed
        f.write(f"{os.getpid()}\n")
    return result


def fail(config: dict, out_dir: str, progress=None) -> dict:
    """A run that always raises, as a run with a bad setting would."""
    raise RuntimeError(f"lr {config.get('lr')} is negative")


def devices(config: dict, out_dir: str, progress=None) -> dict:
    """A run that records the GPUs its process was given (CUDA_VISIBLE_DEVICES,
    set by the executor before anything imports torch) and when it ran, so a
    test can check pinning and how many runs overlapped."""
    t0 = time.time()
    time.sleep(float(os.environ.get("TOY_RUN_SLEEP", "1.0")))
    data = config.get("tokens") or config.get("examples") or config.get("steps")
    result = {
        "config": config,
        "status": "finished",
        "n_nonzero": config["params"],
        "sparsity": config["sparsity"],
        "tokens": data,
        "final_loss": toy_loss(config["sparsity"], config["params"], data),
        "curve": [],
        "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
        "pid": os.getpid(),
        "started": t0,
        "ended": time.time(),
    }
    write_json(Path(out_dir) / "result.json", result)
    return result


def most_at_once(results: list[dict]) -> int:
    """The most `devices` runs in flight at one moment."""
    events = sorted([(r["started"], 1) for r in results] + [(r["ended"], -1) for r in results])
    now = most = 0
    for _, d in events:
        now += d
        most = max(most, now)
    return most
