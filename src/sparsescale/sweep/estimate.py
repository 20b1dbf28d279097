"""Rough wall-time estimates for a dry run: training FLOPs over a measured speed.

CPU training runs dense matrix products with masks applied, so time follows
the DENSE FLOPs of a run. The speed comes from finished runs in the store when
there are any, else from a default measured on a 2-core laptop-class CPU.
"""

from __future__ import annotations

import statistics
from typing import Any

# Seconds per dense training FLOP for one 1-thread run of a small GPT on CPU,
# two runs side by side on a 2-core machine, evaluation included (measured on
# the quick preset's runs: 1.5e-10 at N=50k dense, 4.5e-11 at 800k dense).
DEFAULT_S_PER_FLOP = 6e-11
# Per-run cost outside the training loop: worker start-up, data and model
# set-up, writing the result (measured ~10 s on the quick preset).
RUN_OVERHEAD_S = 10.0


def seconds_per_flop(finished: list[dict[str, Any]] | None = None) -> tuple[float, str]:
    """(seconds per dense FLOP, where the figure comes from)."""
    samples = [r["wall_s"] / r["train_flops_dense"] for r in finished or []
               if r.get("wall_s") and r.get("train_flops_dense")]
    if samples:
        return statistics.median(samples), f"median of {len(samples)} finished runs in the store"
    return DEFAULT_S_PER_FLOP, "default CPU speed (no finished runs to calibrate on)"


def run_seconds(plan: dict[str, Any], s_per_flop: float) -> float:
    return RUN_OVERHEAD_S + float(plan.get("train_flops_dense") or 0.0) * s_per_flop


def sweep_seconds(run_seconds_list: list[float], workers: int) -> float:
    """Wall time of running these runs `workers` at a time, longest first."""
    lanes = [0.0] * max(1, workers)
    for t in sorted(run_seconds_list, reverse=True):
        i = lanes.index(min(lanes))
        lanes[i] += t
    return max(lanes)
