"""Gradual magnitude pruning for any nn.Module, following the paper's recipe.

Usage in a training loop (the pruner never touches gradients or the loss)::

    pruner = GradualPruner(model, sparsity=0.75, total_steps=10_000)
    for step in range(10_000):
        loss = compute_loss(model, batch); loss.backward()
        opt.step(); opt.zero_grad()
        pruner.step()   # on an update step: new masks from current weights; always: w *= mask

Per step, in the paper's order: on an update step the new masks are ranked on
the weights before that step's optimizer update (`pruner.step()` ranks them at
the end of the previous step, on the same weights), the optimizer updates with
dense gradients, then `pruner.step()` installs the masks and multiplies the
weights by them in place. Masks are bool tensors (1 byte per weight),
recomputed only on update steps, so the per-step cost is one in-place multiply
per pruned tensor. A new mask is always a subset of the previous one, so pruned
weights stay exactly 0 for the rest of training.
"""

from __future__ import annotations

import fnmatch
import math
from typing import Any, Iterable

import torch
from torch import nn

from sparsescale.errors import SparsescaleError
from sparsescale.sparsity import masks as masks_lib
from sparsescale.sparsity.schedules import SCHEDULE_KINDS, Schedule, _check_sparsity, make_schedule
from sparsescale.sparsity.selection import (
    coverage,
    input_dims,
    matmul_weights,
    select_embeddings,
    select_prunable,
    select_token_embeddings,
    warn_on_low_coverage,
)

EMBEDDING_MODES = ("off", "on", "auto")
SCOPES = ("tensor", "global")
DISTRIBUTIONS = ("uniform", "erk")


def resolve_sparsity(
    sparsity: float | dict[str, float], names: list[str]
) -> dict[str, tuple[float, str]]:
    """Final sparsity of each named tensor and the glob that set it.

    A number applies to every tensor ("*"). A dict maps glob patterns on
    parameter names to sparsities; for each tensor the longest matching pattern
    wins (among equally long ones, the first listed); a tensor no pattern
    matches is an error naming it."""
    if not isinstance(sparsity, dict):
        _check_sparsity(sparsity)
        return {name: (float(sparsity), "*") for name in names}
    if not sparsity:
        raise SparsescaleError("sparsity: an empty dict of patterns")
    for pattern, value in sparsity.items():
        if not isinstance(pattern, str):
            raise SparsescaleError(f"sparsity: pattern {pattern!r} is not a string")
        _check_sparsity(value, f"sparsity[{pattern!r}]")
    rules = sorted(sparsity.items(), key=lambda kv: -len(kv[0]))  # stable: first listed wins a tie
    resolved = {}
    for name in names:
        match = next(((p, v) for p, v in rules if fnmatch.fnmatchcase(name, p)), None)
        if match is None:
            raise SparsescaleError(f"sparsity: no pattern matches tensor {name} (add a '*' entry)")
        resolved[name] = (float(match[1]), match[0])
    return resolved


def _forward_flops_per_token(
    model: nn.Module, pruned: dict[str, nn.Parameter], kept: dict[int, int]
) -> tuple[int, int]:
    """2 FLOPs per multiply-add of every matrix-product weight (Linear, Conv1D,
    MultiheadAttention projections) and of every other pruned tensor that is not
    an embedding table (dense, sparse).

    Attention score/value products depend on the context length and embedding
    lookups are free, so neither is counted."""
    by_id = {id(p): p for p in model.parameters()}
    matmuls = [by_id[i] for i in matmul_weights(model) if i in by_id]
    matmul_ids = {id(p) for p in matmuls}
    tables = {id(m.weight) for m in model.modules() if isinstance(m, nn.Embedding)}
    extra = [p for p in pruned.values() if id(p) not in matmul_ids and id(p) not in tables]
    dense = sparse = 0
    for param in matmuls + extra:
        dense += 2 * param.numel()
        sparse += 2 * kept.get(id(param), param.numel())
    return dense, sparse


class GradualPruner:
    """Gradual magnitude pruning of a model's block weights.

    Invariant: a mask never grows. Whatever the schedule asks for, in whatever
    order `step`, `prune_now` and `load_state_dict` are called, a new mask is a
    subset of the previous one, so a pruned weight stays exactly 0.

    Args:
        model: any nn.Module; tensors are chosen by `select_prunable` (Linear,
            GPT-2 Conv1D and MultiheadAttention weights inside the blocks).
        sparsity: final sparsity S in [0, 1) of the pruned set, or a dict of
            glob patterns on parameter names to S (longest matching pattern
            wins: {"model.layers.0.*": 0.5, "*": 0.75}). With an n:m pattern it
            defaults to 1 - n/m; a larger S prunes further inside the n:m mask.
        pattern: None / "unstructured", or "n:m": n weights KEPT in every group of m
            consecutive weights along the input dimension of the math, whatever
            the storage layout (2:4 keeps 2 of 4). Pruning is gradual n:m: each
            group's n largest rank first during the ramp, and the mask is
            exactly n:m at its end (for S = 1 - n/m). "n:mT" (m <= 4, such as
            "2:4T") is transposable: n:m along the output dimension too (n
            per row and per column of every m x m block, the exact best such
            mask ranked first), so the transposed weight is n:m as well.
        total_steps: number of training steps (calls to `step()`).
        start, end: the cubic ramp's start and end as fractions of training.
        every: masks are recomputed every `every` steps during the ramp.
        schedule: "cubic" (default), "one-shot" (all at `at_step`), "constant"
            (static mask chosen at step 0) or "dense" (no pruning).
        include, exclude: glob patterns on parameter names that add to / remove
            from the default selection.
        embeddings: "off" (default), "on" (token embedding and untied output
            head pruned to S too) or "auto" (pruned to 1 - sqrt(1 - S)); always
            unstructured, per tensor.
        scope: "tensor" (each tensor to its own sparsity) or "global" (one
            magnitude threshold over the whole pruned set).
        distribution: "uniform" (every tensor at S, the paper's default) or "erk".
        optimizer: if given, its per-entry state of pruned weights (state tensors
            shaped like the weight) is zeroed whenever masks change.

    A selection that covers less than 90% of the model's 2-D block weights
    raises a `SelectionWarning`; `stats()["coverage"]` says how much it covers.
    """

    def __init__(
        self,
        model: nn.Module,
        sparsity: float | dict[str, float] | None = None,
        pattern: str | None = None,
        total_steps: int | None = None,
        start: float = 0.25,
        end: float = 0.75,
        every: int = 100,
        *,
        schedule: str = "cubic",
        at_step: int = 0,
        include: str | Iterable[str] | None = None,
        exclude: str | Iterable[str] | None = None,
        embeddings: str = "off",
        scope: str = "tensor",
        distribution: str = "uniform",
        optimizer: torch.optim.Optimizer | None = None,
    ) -> None:
        self.nm = masks_lib.parse_pattern(pattern)
        self.transposable = masks_lib.is_transposable(pattern)
        if sparsity is None:
            if self.nm is None:
                raise SparsescaleError("sparsity is required for unstructured pruning")
            sparsity = 1.0 - self.nm[0] / self.nm[1]
        _check_options(self.nm, sparsity, schedule, total_steps, embeddings, scope, distribution)
        self.model = model
        self.optimizer = optimizer
        self.prunable = select_prunable(model, include, exclude)
        if not self.prunable:
            raise SparsescaleError(
                "the model has no prunable tensors (no nn.Linear, Conv1D or nn.MultiheadAttention "
                "weight "
                "inside its blocks); name the tensors with include="
            )
        self.coverage = coverage(model, self.prunable)
        warn_on_low_coverage(self.coverage)
        self.input_dim = input_dims(model, self.prunable)
        if self.nm is not None:
            check = (
                masks_lib.check_transposable_shape
                if self.transposable
                else masks_lib.check_nm_shape
            )
            for name, param in self.prunable.items():
                check(name, self._math_shape(name, param), *self.nm)
        self.embedding_params = {
            k: v
            for k, v in select_token_embeddings(model, exclude).items()
            if k not in self.prunable
        }
        self._set_targets(sparsity, schedule, embeddings, distribution)
        self.config = {
            "sparsity": 0.0
            if schedule == "dense"
            else sparsity
            if isinstance(sparsity, dict)
            else float(sparsity),
            "pattern": masks_lib.pattern_name(pattern),
            "total_steps": int(total_steps),
            "start": float(start),
            "end": float(end),
            "every": int(every),
            "schedule": schedule,
            "at_step": int(at_step),
            "embeddings": embeddings,
            "scope": scope,
            "distribution": distribution,
        }
        self._build_schedules()
        self.params = {**self.prunable, **(self.embedding_params if embeddings != "off" else {})}
        self.masks: dict[str, torch.Tensor] = {}
        self._pairs: list[tuple[torch.Tensor, torch.Tensor]] = []
        # masks ranked at the end of the previous step for the next update step
        self._pending: dict[str, torch.Tensor] | None = None
        self.step_count = 0
        self.finalized = False

    def _set_targets(self, sparsity, schedule: str, embeddings: str, distribution: str) -> None:
        """Final sparsity per tensor (and the pattern that set it)."""
        if schedule == "dense":
            sparsity = 0.0
        names = list(self.prunable) + (
            [k for k in self.embedding_params] if embeddings != "off" else []
        )
        resolved = resolve_sparsity(sparsity, names)
        if self.nm is not None:
            n, m = self.nm
            low = {
                k: s
                for k, (s, _) in resolved.items()
                if k in self.prunable and s < 1.0 - n / m - 1e-12
            }
            if low and schedule != "dense":
                name, value = next(iter(low.items()))
                raise SparsescaleError(
                    f"sparsity {value} (tensor {name}) is below {1 - n / m:g}, the least an n:m "
                    f"pattern {n}:{m} gives"
                )
        final = {k: s for k, (s, _) in resolved.items() if k in self.prunable}
        numel = {k: p.numel() for k, p in self.prunable.items()}
        # One number for the block set: what stats()["sparsity"] reaches at the end.
        self.sparsity = 1.0 - sum(masks_lib.n_kept(numel[k], final[k]) for k in final) / sum(
            numel.values()
        )
        if not isinstance(sparsity, dict):
            self.sparsity = float(sparsity)
        if distribution == "erk":
            final = masks_lib.erk_sparsities(
                {k: tuple(v.shape) for k, v in self.prunable.items()}, self.sparsity
            )
        for name in self.embedding_params if embeddings != "off" else []:
            s = resolved[name][0]
            final[name] = s if embeddings == "on" else 1.0 - math.sqrt(1.0 - s)
        self.embedding_sparsity = {
            "off": 0.0,
            "on": self.sparsity,
            "auto": 1.0 - math.sqrt(1.0 - self.sparsity),
        }[embeddings]
        self.final_sparsity = final
        self.sparsity_rule = {k: p for k, (_, p) in resolved.items()}

    def _build_schedules(self, ramp_total_steps: int | None = None) -> None:
        """One schedule object per distinct final sparsity (they share update
        steps, which depend only on start/end/every). `ramp_total_steps`: lay
        the ramp out over that many steps instead of total_steps (a resumed,
        longer run that keeps its ramp); later steps hold the final sparsity."""
        c = self.config
        self.ramp_total_steps = ramp_total_steps
        self._schedules: dict[float, Schedule] = {}
        for value in sorted(set(self.final_sparsity.values())) + [self.sparsity]:
            self._schedules[value] = make_schedule(
                c["schedule"],
                value,
                ramp_total_steps or c["total_steps"],
                start=c["start"],
                end=c["end"],
                every=c["every"],
                at_step=c["at_step"],
            )
        self.schedule = self._schedules[self.sparsity]

    def _math_shape(self, name: str, param: torch.Tensor) -> tuple[int, ...]:
        shape = tuple(param.shape)
        return shape[::-1] if self.input_dim.get(name, -1) == 0 else shape

    # ---- schedule -----------------------------------------------------------
    def scheduled_sparsity(self, step: int | None = None) -> dict[str, float]:
        """Per-tensor sparsity the schedule prescribes after `step` (default: the
        last completed step). Masks only follow it where it asks for more."""
        step = self.step_count - 1 if step is None else step
        if step < 0:
            return {k: 0.0 for k in self.params}
        return {k: self._schedules[self.final_sparsity[k]].sparsity_at(step) for k in self.params}

    # ---- masks --------------------------------------------------------------
    @torch.no_grad()
    def _compute_masks(self, targets: dict[str, float]) -> dict[str, torch.Tensor]:
        """New masks at `targets` from the current weights (installs nothing).
        Each is a subset of the installed mask (masks_lib caps what it keeps)."""
        new: dict[str, torch.Tensor] = {}
        rest = list(self.params)
        if self.config["scope"] == "global":
            s = targets[next(iter(self.prunable))]
            if s > 0.0 or self.masks:
                views = {k: self._math(k, p) for k, p in self.prunable.items()}
                alive = {k: self._math(k, m) for k, m in self.masks.items() if k in self.prunable}
                found = masks_lib.global_magnitude_masks(
                    views, s, alive=alive, nm=self.nm, transposable=self.transposable
                )
                new.update({k: self._math(k, m).contiguous() for k, m in found.items()})
            rest = [k for k in self.params if k not in self.prunable]
        for name in rest:
            s = targets[name]
            if s == 0.0 and name not in self.masks:
                continue  # nothing pruned yet: no mask needed, no per-step cost
            nm = self.nm if name in self.prunable else None
            alive = self.masks.get(name)
            mask = masks_lib.magnitude_mask(
                self._math(name, self.params[name]),
                s,
                alive=None if alive is None else self._math(name, alive),
                nm=nm,
                transposable=self.transposable,
            )
            new[name] = self._math(name, mask).contiguous()
        return new

    def _math(self, name: str, tensor: torch.Tensor) -> torch.Tensor:
        """The (out, in) view of a weight or mask: Conv1D stores (in, out)."""
        return tensor.t() if self.input_dim.get(name, -1) == 0 else tensor

    def _install_masks(self, new: dict[str, torch.Tensor]) -> None:
        self.masks.update(new)
        self._pairs = [(self.params[k], m) for k, m in self.masks.items()]
        if self.optimizer is not None:
            self._zero_optimizer_state()

    def _update_masks(self, targets: dict[str, float]) -> None:
        self._install_masks(self._compute_masks(targets))

    @torch.no_grad()
    def _zero_optimizer_state(self) -> None:
        for param, mask in self._pairs:
            for value in self.optimizer.state.get(param, {}).values():
                if isinstance(value, torch.Tensor) and value.shape == param.shape:
                    value.mul_(mask)

    @torch.no_grad()
    def apply_masks(self) -> None:
        """weights *= mask, in place, for every masked tensor."""
        for param, mask in self._pairs:
            if param.device.type == "cpu":
                # bool -> float promotion inside mul_ takes a slow path on CPU;
                # a uint8 view converts vectorised: 2.5x faster, same result.
                param.mul_(mask.view(torch.uint8).to(param.dtype))
            else:
                param.mul_(mask)

    def step(self) -> None:
        """Call once per training step, after optimizer.step().

        The paper's order on an update step t: the new mask is ranked on the
        weights *before* step t's optimizer update, the update uses dense
        gradients, then weights *= mask. Since this runs after the update, the
        masks for step t are ranked at the end of step t-1 (the same weights)
        and installed here; only a pruner that starts on an update step ranks
        that first mask on the updated weights."""
        if self.finalized:
            raise SparsescaleError(
                "the pruner was finalized (masks dropped); build a new one to keep training"
            )
        if self._pending is not None:
            self._install_masks(self._pending)
            self._pending = None
        elif self.schedule.is_update_step(self.step_count):
            self._update_masks(self.scheduled_sparsity(self.step_count))
        self.apply_masks()
        self.step_count += 1
        self._rank_pending()

    def _rank_pending(self) -> None:
        self._pending = None
        if self.schedule.is_update_step(self.step_count):
            self._pending = self._compute_masks(self.scheduled_sparsity(self.step_count))

    def prune_now(self, sparsity: float | None = None) -> None:
        """One-shot: prune every tensor to its final sparsity (or the pruned set
        to `sparsity`) now, e.g. a dense pretrained model before it keeps
        training. Masks never grow, so later schedule updates that ask for
        less keep these masks, and those that ask for more prune further."""
        targets = dict(self.final_sparsity)
        if sparsity is not None:
            _check_sparsity(sparsity)
            targets.update({k: float(sparsity) for k in self.prunable})
        self._update_masks(targets)
        self.apply_masks()
        if self._pending is not None:  # re-rank the next update on the pruned weights
            self._rank_pending()

    def finalize(self) -> nn.Module:
        """End of training: apply the masks a last time, then drop them (the
        zeros stay in the weights) and stop. Returns the model, e.g. for
        `sparsity.export.save_sparse`."""
        self.apply_masks()
        self.masks, self._pairs, self._pending = {}, [], None
        self.finalized = True
        return self.model

    # ---- reporting ----------------------------------------------------------
    def kept(self) -> dict[str, int]:
        """Weights kept per tensor: the mask's count; after `finalize()` (no
        masks) the non-zeros; numel before anything was pruned."""
        if self.finalized:
            return {k: int((p != 0).sum()) for k, p in self.params.items()}
        return {
            k: int(self.masks[k].sum()) if k in self.masks else p.numel()
            for k, p in self.params.items()
        }

    def stats(self) -> dict[str, Any]:
        """Sparsity and counts: "sparsity" and "n_nonzero" (N) of the pruned block
        set, "tensors" {name: sparsity}, "targets" {name: final sparsity} and
        "sparsity_rule" {name: the glob that set it}, "coverage" (fraction of
        the model's 2-D block weights in the pruned set), "embedding_sparsity",
        parameter counts (total, embedding, prunable) and forward FLOPs per
        token, dense and sparse (2 per multiply-add of every matrix-product
        weight and every other pruned tensor that is not an embedding table)."""
        kept = self.kept()
        n_prunable = sum(p.numel() for p in self.prunable.values())
        n_nonzero = sum(kept[k] for k in self.prunable)
        embeddings = select_embeddings(self.model)
        emb_masked = [k for k in self.embedding_params if k in self.params]
        flops_dense, flops_sparse = _forward_flops_per_token(
            self.model, self.params, {id(self.params[k]): kept[k] for k in self.params}
        )
        return {
            "step": self.step_count,
            "sparsity": 1.0 - n_nonzero / n_prunable,
            "n_nonzero": n_nonzero,
            "n_params_prunable": n_prunable,
            "n_params": sum(p.numel() for p in self.model.parameters()),
            "n_params_embedding": sum(p.numel() for p in embeddings.values()),
            "coverage": self.coverage,
            "embedding_sparsity": (
                1.0
                - sum(kept[k] for k in emb_masked) / sum(self.params[k].numel() for k in emb_masked)
                if emb_masked
                else 0.0
            ),
            "tensors": {k: 1.0 - kept[k] / p.numel() for k, p in self.params.items()},
            "targets": dict(self.final_sparsity),
            "sparsity_rule": dict(self.sparsity_rule),
            "forward_flops_per_token_dense": flops_dense,
            "forward_flops_per_token_sparse": flops_sparse,
        }

    def mask_bytes(self) -> int:
        """Memory held by the masks (bool: 1 byte per masked weight)."""
        return sum(m.numel() * m.element_size() for m in self.masks.values())

    # ---- checkpointing ------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Step, configuration and bool masks; with the model's and optimizer's
        state it resumes to exactly the masks and weights of an uninterrupted run."""
        return {
            "step": self.step_count,
            "config": dict(self.config),
            "ramp_total_steps": self.ramp_total_steps,
            "tensors": list(self.params),
            "masks": {k: m for k, m in self.masks.items()},
            "pending_masks": None if self._pending is None else dict(self._pending),
        }

    def load_state_dict(self, state: dict[str, Any], *, keep_ramp: bool = False) -> None:
        """Restore from `state_dict()`; load the model's weights first.

        The configuration must match this pruner's, except `total_steps`, which
        may grow. For a longer resumed run, `keep_ramp=False` reschedules the
        ramp over the new length (start/end stay fractions of it) from the
        saved step on; `keep_ramp=True` keeps the ramp on the steps the saved
        run had scheduled (so up to its end the run is identical to the saved
        one) and holds the final sparsity after it. Either way masks never
        grow: where a schedule asks for less sparsity than the masks have, they
        stay as they are until it asks for more."""
        for key in ("step", "config", "tensors", "masks"):
            if key not in state:
                raise SparsescaleError(f"pruner state has no {key!r} entry")
        saved_total = state["config"].get("total_steps")
        for key, value in self.config.items():
            if key != "total_steps" and state["config"].get(key) != value:
                raise SparsescaleError(
                    f"pruner state was saved with {key}={state['config'].get(key)!r}, this pruner "
                    f"has {value!r}"
                )
        if not isinstance(saved_total, int) or saved_total > self.config["total_steps"]:
            raise SparsescaleError(
                f"pruner state was saved with total_steps={saved_total!r}; this pruner has "
                f"{self.config['total_steps']} (a resumed run may be longer, not shorter)"
            )
        if list(state["tensors"]) != list(self.params):
            raise SparsescaleError(
                "pruner state was saved for different tensors than this model's pruned set"
            )
        saved_ramp = state.get("ramp_total_steps") or saved_total
        same_ramp = saved_total == self.config["total_steps"] or keep_ramp
        self._build_schedules(
            saved_ramp if same_ramp and saved_ramp != self.config["total_steps"] else None
        )
        self.masks = self._checked_masks(state["masks"])
        self._pairs = [(self.params[k], m) for k, m in self.masks.items()]
        self.step_count = int(state["step"])
        pending = state.get("pending_masks")
        if same_ramp:
            self._pending = None if pending is None else self._checked_masks(pending)
        else:  # rescheduled: rank the next update, if any, under the new schedule
            self._rank_pending()
        self.apply_masks()

    def _checked_masks(self, saved: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        masks = {}
        for name, mask in saved.items():
            param = self.params[name]
            if tuple(mask.shape) != tuple(param.shape) or mask.dtype != torch.bool:
                raise SparsescaleError(
                    f"pruner state: mask {name} has shape {tuple(mask.shape)} / {mask.dtype}"
                )
            masks[name] = mask.to(param.device).clone()
        return masks


def _check_options(nm, sparsity, schedule, total_steps, embeddings, scope, distribution) -> None:
    if not isinstance(sparsity, dict):
        _check_sparsity(sparsity)
    if schedule not in SCHEDULE_KINDS:
        raise SparsescaleError(
            f"unknown schedule {schedule!r}; expected one of {', '.join(SCHEDULE_KINDS)}"
        )
    if total_steps is None:
        raise SparsescaleError("total_steps is required (the number of pruner.step() calls)")
    if embeddings not in EMBEDDING_MODES:
        raise SparsescaleError(
            f"embeddings must be one of {', '.join(EMBEDDING_MODES)}, got {embeddings!r}"
        )
    if scope not in SCOPES:
        raise SparsescaleError(f"scope must be one of {', '.join(SCOPES)}, got {scope!r}")
    if distribution not in DISTRIBUTIONS:
        raise SparsescaleError(
            f"distribution must be one of {', '.join(DISTRIBUTIONS)}, got {distribution!r}"
        )
    if distribution == "erk" and (scope == "global" or nm is not None):
        raise SparsescaleError(
            "distribution 'erk' works with scope 'tensor' and unstructured pattern only"
        )
    if isinstance(sparsity, dict) and (scope == "global" or distribution == "erk"):
        raise SparsescaleError(
            "a per-tensor sparsity dict works with scope 'tensor' and distribution 'uniform' only"
        )


def one_shot_prune(
    model: nn.Module,
    sparsity: float,
    pattern: str | None = None,
    total_steps: int = 1,
    **kwargs: Any,
) -> GradualPruner:
    """Prune a (dense, pretrained) model to `sparsity` now by magnitude and return
    a pruner that keeps that static mask applied while training continues.
    n:m `pattern`: n weights kept in every group of m along the input dimension."""
    pruner = GradualPruner(model, sparsity, pattern, total_steps, schedule="constant", **kwargs)
    pruner.prune_now()
    return pruner


__all__ = [
    "GradualPruner",
    "resolve_sparsity",
    "select_prunable",
    "select_embeddings",
    "select_token_embeddings",
    "one_shot_prune",
]
