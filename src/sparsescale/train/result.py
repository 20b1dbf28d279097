"""RunResult: the record one training run leaves (result.json, the store's result_json).

Torch-free, so the store, export and report read it without the training
layer. `from_dict` accepts any older or partial record (fields it lacks are
None) and ignores keys it does not know, so stores written by earlier versions
and results of custom runners still load.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

RESULT = "result.json"
TERMINAL = ("finished", "diverged")
# Absent from the dict rather than null when they do not apply (as written since 0.1).
_OMIT_IF_NONE = ("tokens", "diverged_at_step", "examples_per_s")


@dataclass
class RunResult:
    status: str  # "finished" or "diverged"
    config: dict[str, Any] = field(default_factory=dict)  # the RunConfig fields
    identity: dict[str, Any] = field(default_factory=dict)  # RunConfig.identity()
    family: str | None = None
    n_nonzero: int | None = None  # N: non-zeros of the pruned set, measured at the end
    target_n_nonzero: int | None = None
    n_block_params: int | None = None
    total_params: int | None = None
    embedding_params: int | None = None
    width: int | None = None
    model_config: dict[str, Any] | None = None
    # S asked for beside S measured over the pruned set from the final masks:
    # each tensor keeps a whole number of weights, so the two can differ slightly
    sparsity: float | None = None  # S asked for
    measured_sparsity: float | None = None
    pattern: str | None = None
    steps: int | None = None
    batch: int | None = None
    seq_len: int | None = None
    examples: int | None = None
    tokens: int | None = None
    # the plan's compute (train/plan.py): 6 x block multiply-adds per example x
    # examples, and that times the schedule's mean density for the sparse count
    train_flops_dense: float | None = None
    train_flops_sparse: float | None = None
    mean_density: float | None = None
    prune_start: float | None = None  # the pruning window, as fractions of the steps
    prune_end: float | None = None
    final_loss: float | None = None  # last validation loss; None when diverged
    curve: list[dict[str, Any]] = field(default_factory=list)
    # wall times add up every attempt of a resumed run (RunState keeps them), so
    # tokens_per_s is the steps done over all training time, not the last attempt's
    wall_s: float | None = None
    train_wall_s: float | None = None
    tokens_per_s: float | None = None
    examples_per_s: float | None = None
    device: str | None = None
    world_size: int | None = None
    versions: dict[str, str] = field(default_factory=dict)
    diverged_at_step: int | None = None
    # Speed at scale (train/throughput.py, docs/gpu.md): rates after each attempt's
    # warm-up steps, evaluation excluded; model FLOPs count attention and the head.
    steady_tokens_per_s: float | None = None
    steady_examples_per_s: float | None = None
    steady_steps: int | None = None
    warmup_steps_excluded: int | None = None
    model_flops_per_example: float | None = None
    model_flops_per_token: float | None = None
    peak_flops: float | None = None  # of one device, FLOP/s
    peak_flops_source: str | None = None
    mfu: float | None = None  # model FLOPs/s over world_size * peak_flops
    device_names: list[str] | None = None  # one per rank
    cuda_visible_devices: str | None = None  # as the run's process saw it

    @property
    def done(self) -> bool:
        return self.status in TERMINAL

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        for key in _OMIT_IF_NONE:
            if out[key] is None:
                del out[key]
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "RunResult":
        known = {f.name for f in dataclasses.fields(cls)}
        kept = {k: v for k, v in data.items() if k in known}
        return cls(**{"status": None, **kept})  # status None: not a result; callers check .done


def read_result(path: Path) -> RunResult | None:
    """A finished or diverged result at `path`, or None (missing, torn, unfinished)."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    # only a terminal status counts, so no unfinished or foreign record in
    # result.json is ever taken for a run's result
    if not isinstance(data, dict) or data.get("status") not in TERMINAL:
        return None
    return RunResult.from_dict(data)
