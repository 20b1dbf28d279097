"""Gradual pruning inside a Hugging Face `Trainer`.

    from sparsescale.integrations.hf import PruningCallback
    trainer = Trainer(model, args, train_dataset=data,
                      callbacks=[PruningCallback(sparsity=0.75)])
    trainer.train()

The callback builds a `GradualPruner` when training begins (total_steps =
the Trainer's max_steps, the optimizer's state of pruned weights is zeroed),
calls `pruner.step()` right after every optimizer step (as the pruner expects:
after the update, before the next forward), saves the pruner's masks next to
every checkpoint (`sparsescale_pruner.pt`) and loads them when the Trainer
resumes from one. Needs the `hf` extra (transformers).
"""

from __future__ import annotations

import os
from typing import Any

import torch

from sparsescale.errors import SparsescaleError
from sparsescale.sparsity.pruner import GradualPruner

try:
    from transformers import TrainerCallback
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise SparsescaleError(
        "sparsescale.integrations.hf needs transformers: pip install 'sparsescale[hf]'"
    ) from exc

STATE_FILE = "sparsescale_pruner.pt"


class PruningCallback(TrainerCallback):
    """Prune the Trainer's model with `GradualPruner(model, **pruner_kwargs)`.

    Args:
        sparsity, pattern: as for GradualPruner (n:m keeps n weights in every
            group of m along the input dimension).
        resume_from: checkpoint folder holding `sparsescale_pruner.pt` when
            resuming; default: the Trainer's `resume_from_checkpoint` argument
            if it is a path, else `output_dir/checkpoint-<global_step>`.
        keep_ramp: when a resumed run is longer than the saved one, keep the
            ramp on the saved run's steps (True) or reschedule it (False); see
            GradualPruner.load_state_dict.
        **pruner_kwargs: any other GradualPruner argument except total_steps
            and optimizer, which come from the Trainer.
    """

    def __init__(
        self,
        sparsity: Any = None,
        pattern: str | None = None,
        resume_from: str | None = None,
        keep_ramp: bool = False,
        **pruner_kwargs: Any,
    ) -> None:
        for taken in ("total_steps", "optimizer", "model"):
            if taken in pruner_kwargs:
                raise SparsescaleError(
                    f"{taken} comes from the Trainer; do not pass it to PruningCallback"
                )
        self.kwargs = dict(sparsity=sparsity, pattern=pattern, **pruner_kwargs)
        self.resume_from = resume_from
        self.keep_ramp = keep_ramp
        self.pruner: GradualPruner | None = None
        self._checked_resume = False

    def on_train_begin(self, args, state, control, model=None, optimizer=None, **kwargs):
        if self.pruner is None:
            self.pruner = GradualPruner(
                model, total_steps=state.max_steps, optimizer=optimizer, **self.kwargs
            )
        return control

    def on_step_begin(self, args, state, control, **kwargs):
        # The Trainer restores its step count and the weights before the first
        # step of a resumed run; the masks come back here, on top of them.
        if not self._checked_resume:
            self._checked_resume = True
            if state.global_step > 0 and self.pruner.step_count != state.global_step:
                self._load(self._resume_path(args, state))
        return control

    def on_optimizer_step(self, args, state, control, **kwargs):
        self.pruner.step()
        return control

    def on_save(self, args, state, control, **kwargs):
        folder = os.path.join(args.output_dir, f"checkpoint-{state.global_step}")
        if os.path.isdir(folder):
            from sparsescale.atomic import atomic_path

            with atomic_path(os.path.join(folder, STATE_FILE)) as tmp:
                torch.save(self.pruner.state_dict(), tmp)
        return control

    def _resume_path(self, args, state) -> str:
        folder = self.resume_from
        if folder is None and isinstance(getattr(args, "resume_from_checkpoint", None), str):
            folder = args.resume_from_checkpoint
        if folder is None:
            folder = os.path.join(args.output_dir, f"checkpoint-{state.global_step}")
        return os.path.join(folder, STATE_FILE)

    def _load(self, path: str) -> None:
        if not os.path.isfile(path):
            raise SparsescaleError(
                f"{path}: no pruner state to resume from (pass resume_from= the checkpoint folder)"
            )
        self.pruner.load_state_dict(
            torch.load(path, map_location="cpu", weights_only=True), keep_ramp=self.keep_ramp
        )


__all__ = ["PruningCallback", "STATE_FILE"]
