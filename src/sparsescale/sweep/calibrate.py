"""`sweep --dry-run --calibrate`: time a few steps of a sweep's runs on their device.

The smallest and the largest run (by dense block FLOPs per step) each train
WARMUP_STEPS + TIMED_STEPS steps in a scratch folder, in this process, on the
device their config names (a GPU sweep's runs name "cuda"); the steady-state
seconds per step of the two give the line t_step = a + b f of
sweep/estimate.py, which then prices every run. A DDP run (gpus_per_run k >= 2)
is timed on one device with its whole batch and charged 1/k of that per step:
ideal scaling, an optimistic bound that the dry run states.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from sparsescale.errors import SparsescaleError
from sparsescale.models.registry import BUDGET_AXES
from sparsescale.sweep.estimate import StepCost
from sparsescale.sweep.spec import PlannedRun

TIMED_STEPS = 10


def _flops_per_step(run: PlannedRun) -> float:
    return float(run.plan.get("train_flops_dense") or 0.0) / max(1, run.plan.get("steps") or 1)


def _timing_config(run: PlannedRun, steps: int) -> dict[str, Any]:
    """The run's config, trained for `steps` steps with one small evaluation (not timed)."""
    # (data_skip: dense_tokens' name in runs planned by older versions)
    config = {k: v for k, v in run.config.items() if k not in (*BUDGET_AXES, "data_skip")}
    config.update(
        steps=steps,
        eval_every=steps,
        eval_tokens=1,
        eval_examples=1,
        final_eval_tokens=0,
        ckpt_every=steps,
        dense_tokens=0,
    )
    if str(config.get("init_from") or "").startswith("@"):
        config["init_from"] = (
            None  # a continued run has its dense prefix's width, which sizing gives too
        )
    return config


def step_seconds(run: PlannedRun, world: int = 1) -> float:
    """Steady-state seconds per step of this run on its device (over `world` devices: /world)."""
    from sparsescale.train.config import RunConfig
    from sparsescale.train.run import train
    from sparsescale.train.throughput import WARMUP_STEPS, WARMUP_STEPS_COMPILE

    warm = WARMUP_STEPS_COMPILE if run.config.get("compile") else WARMUP_STEPS
    cfg = RunConfig(**_timing_config(run, warm + TIMED_STEPS))
    try:
        with tempfile.TemporaryDirectory(prefix="sparsescale-calibrate-") as tmp:
            result = train(cfg, Path(tmp), quiet=True)
    except SparsescaleError as exc:
        raise SparsescaleError(
            f"--calibrate: cannot train the runs here ({exc}); calibrate on the machine "
            "that will run them"
        ) from None
    if not result.steady_examples_per_s:
        raise SparsescaleError("--calibrate: the timed steps recorded no steady-state rate")
    return result.batch / result.steady_examples_per_s / world


def calibrate(runs: list[PlannedRun], world: int = 1, progress=None) -> StepCost:
    """The step-cost line through the smallest and largest runs of `runs`, timed here.
    `progress(message)` is told which run is being timed."""
    todo = [r for r in runs if r.plan.get("steps")]
    if not todo:
        raise SparsescaleError("--calibrate: no run to time (plan the sweep with its check)")
    devices = {r.config.get("device", "cpu") for r in todo}
    if "cuda" in devices:
        import torch

        if not torch.cuda.is_available():
            raise SparsescaleError(
                "--calibrate: the runs train on cuda but no GPU is visible here; calibrate on "
                "the machine that will run them"
            )
    small = min(todo, key=_flops_per_step)
    large = max(todo, key=_flops_per_step)
    timed = []
    for run in (small, large) if large is not small else (small,):
        if progress:
            progress(
                f"timing {TIMED_STEPS} steps of N={run.axes.get('n_nonzero')} "
                f"S={run.config.get('sparsity')}"
            )
        timed.append((_flops_per_step(run), step_seconds(run, world)))
    device = small.config.get("device", "cpu")
    scaling = f", 1/{world} of one device's step time (ideal DDP scaling)" if world > 1 else ""
    source = (
        f"calibrated: {TIMED_STEPS} timed steps of the smallest and largest runs on {device}"
        f"{scaling}"
    )
    if len(timed) == 1 or timed[1][0] <= timed[0][0]:
        return StepCost(timed[0][1], 0.0, source)
    (f0, t0), (f1, t1) = timed
    slope = max(0.0, (t1 - t0) / (f1 - f0))  # timing noise must not make larger runs cheaper
    return StepCost(max(0.0, t0 - slope * f0), slope, source)
