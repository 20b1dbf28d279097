"""Wall-time and device-hour estimates for a dry run.

A run's time is modelled per training step as

    t_step = a + b * f,    f = dense block training FLOPs per step (plan.train_flops_dense / steps)

plus its evaluation (forward passes only: about a third of a training step per
example evaluated) and a fixed start-up cost. The intercept a is the part of a
step that does not grow with the block FLOPs: the output head and attention
(which N does not count, train/throughput.py), the embedding, the optimizer's
per-tensor loop and the pruner. A cost proportional to f alone, with no evaluation
term (the model up to 0.2), had its one constant from other runs than the
quick preset's and announced 14 min for a sweep that takes 7.3.

(a, b) come from, in order of preference:
- `--calibrate`: a few timed steps of the sweep's smallest and largest runs on
  the device the runs would use (sweep/calibrate.py), the line through them;
- finished runs in the store: the median seconds per dense FLOP (b, a = 0);
- a guess measured on a 2-core laptop-class CPU, one 1-thread run per core
  (DEFAULT_STEP_S, DEFAULT_S_PER_FLOP): on any other device, and on any GPU,
  only a guess, and the dry run says so.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Any

# The CPU guess: seconds per step, and per dense block training FLOP of a
# step, of one 1-thread run of a small GPT (batch 32 x 64 tokens), two runs
# side by side on a 2-core laptop-class CPU. The ratio of the two is what
# `sweep quick --dry-run --calibrate` measured (0.0315 s + 4.15e-11 s/FLOP,
# on a machine shared with other jobs, hence slow); the scale is set so that
# the quick preset's estimate is the 7.3 min its demo takes on the 2-core
# reference machine. The earlier constant (6e-11 s/FLOP, no intercept, no
# evaluation) came from an older quick preset's larger runs (N 50k-800k) and
# announced 14 min.
DEFAULT_S_PER_FLOP = 1.3e-11
DEFAULT_STEP_S = 0.0098
# Per-run cost outside the training loop: worker start-up, data and model
# set-up, writing the result (measured ~10 s on the quick preset).
RUN_OVERHEAD_S = 10.0
EVAL_COST = 1.0 / 3.0  # an evaluated example costs a forward pass: a third of a training step


@dataclass(frozen=True)
class StepCost:
    """t_step = step_s + s_per_flop * (dense block FLOPs per step); `source` says where from."""

    step_s: float
    s_per_flop: float
    source: str
    guess: bool = False  # True: not measured on the runs' device


def default_cost(finished: list[dict[str, Any]] | None = None) -> StepCost:
    """The cost model without --calibrate: the store's finished runs, else the CPU guess."""
    samples = [
        r["wall_s"] / r["train_flops_dense"]
        for r in finished or []
        if r.get("wall_s") and r.get("train_flops_dense")
    ]
    if samples:
        return StepCost(
            0.0, statistics.median(samples), f"median of {len(samples)} finished runs in the store"
        )
    return StepCost(
        DEFAULT_STEP_S,
        DEFAULT_S_PER_FLOP,
        "a CPU-derived guess from a 2-core laptop CPU, not measured on this sweep's device; "
        "--calibrate times its runs",
        guess=True,
    )


def seconds_per_flop(finished: list[dict[str, Any]] | None = None) -> tuple[float, str]:
    """(seconds per dense FLOP, where the figure comes from): the progress bars' rough rate."""
    cost = default_cost(finished)
    return cost.s_per_flop, cost.source


def _evaluated_examples(plan: dict[str, Any], config: dict[str, Any]) -> float:
    """Examples a run evaluates: its curve points' samples plus the final one (train/run.py)."""
    steps, seq_len = plan.get("steps") or 0, plan.get("seq_len") or 0
    every = config.get("eval_every") or max(1, steps // 8)
    points = max(1, steps // every)
    if seq_len:  # text: eval_tokens per point, final_eval_tokens (else eval_tokens) at the end
        per_point = (config.get("eval_tokens") or 32768) / seq_len
        final = (config.get("final_eval_tokens") or config.get("eval_tokens") or 32768) / seq_len
    else:
        per_point = final = config.get("eval_examples") or 2000
    return (points - 1) * per_point + final


def run_seconds(
    plan: dict[str, Any], cost: StepCost | float, config: dict[str, Any] | None = None
) -> float:
    """Estimated wall time of one run: start-up, its steps and its evaluation."""
    if not isinstance(cost, StepCost):  # a bare seconds-per-FLOP figure
        cost = StepCost(0.0, float(cost), "")
    steps = plan.get("steps") or 0
    flops = float(plan.get("train_flops_dense") or 0.0)
    if not steps:
        return RUN_OVERHEAD_S + flops * cost.s_per_flop
    step_s = cost.step_s + cost.s_per_flop * flops / steps
    batch = plan.get("batch") or 1
    eval_s = EVAL_COST * step_s * _evaluated_examples(plan, config or {}) / batch
    return RUN_OVERHEAD_S + steps * step_s + eval_s


def sweep_seconds(run_seconds_list: list[float], workers: int) -> float:
    """Wall time of running these runs `workers` at a time, longest first."""
    lanes = [0.0] * max(1, workers)
    for t in sorted(run_seconds_list, reverse=True):
        i = lanes.index(min(lanes))
        lanes[i] += t
    return max(lanes)
