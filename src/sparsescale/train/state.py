"""RunState: the loop's bookkeeping, what a checkpoint keeps besides the tensors.

The tensors (model weights, optimizer and pruner state, the per-step losses)
are saved beside it by train/checkpoint.py. Together they are everything a
resumed run needs to compute what an uninterrupted one does: the batch of a
step is a pure function of (seed, step), so no data-loader or RNG state has to
be saved (see train/run.py on why the resume is bit-exact).

On disk the state is a plain dict of numbers, lists and None (torch.load with
weights_only=True reads nothing else). `from_dict` fills keys a checkpoint of
an earlier version lacks (steady_* arrived with the throughput figures) and
ignores keys it does not know, so every earlier checkpoint still resumes.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any


@dataclass
class RunState:
    """Where the run stands after `step` optimizer steps."""

    step: int = 0  # optimizer steps done
    # validation points so far: {"step", <data unit>: step * per_step, "val_loss", "train_loss"}
    curve: list[dict[str, Any]] = field(default_factory=list)
    train_wall_s: float = 0.0  # training time over all attempts (evaluation excluded)
    eval_wall_s: float = 0.0  # evaluation time over all attempts
    diverged_at_step: int | None = None  # first step whose training loss was NaN/inf
    steady_steps: int = 0  # steps timed after each attempt's warm-up (throughput.py)
    steady_wall_s: float = 0.0  # their training time, evaluation excluded

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "RunState":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})
