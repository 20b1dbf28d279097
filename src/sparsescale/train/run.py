"""One training run as a recipe: setup -> loop -> result.

`train(cfg, out_dir)` plans the run (train/plan.py), builds the model, optimizer
and pruner, resumes from out_dir/checkpoint.pt when present (train/checkpoint.py),
runs the loop below and writes out_dir/result.json (a RunResult) atomically.

One step, as in the paper: forward, backward, optimizer update with dense
gradients, then `pruner.step()` (new masks on update steps; weights *= mask).
At scale (docs/gpu.md) the forward/backward runs over micro-batches that
accumulate the batch's gradient, the global gradient norm may be clipped
before the update, and blocks may recompute their activations.

A resumed run computes exactly what an uninterrupted one does (why: above
`_resume`). Per-step losses stay on the device and are checked for NaN/inf in bulk, so the
hot loop never waits on a host sync.
"""

from __future__ import annotations

import contextlib
import math
import os
import platform
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from sparsescale.atomic import write_json
from sparsescale.errors import SparsescaleError
from sparsescale.models.registry import Family, get_family
from sparsescale.train import checkpoint
from sparsescale.train.config import ADAMW_BETAS, RunConfig
from sparsescale.train.plan import RunPlan, as_config, check_config, plan_run  # noqa: F401  (check_config: public here too)
from sparsescale.train.result import RESULT, RunResult, read_result
from sparsescale.train.state import RunState
from sparsescale.train.throughput import WARMUP_STEPS, WARMUP_STEPS_COMPILE, SteadyClock

CHECKPOINT = checkpoint.CHECKPOINT
NAN_CHECK_EVERY = 16  # steps between bulk NaN/inf checks of the loss
CURVE_POINTS = 8  # default number of validation points on the curve
CHECKPOINTS_PER_RUN = 10
Progress = Callable[[dict[str, Any]], None]


# ---- setup -----------------------------------------------------------------------
def _lr_at(step: int, steps: int, base: float, schedule: str, warmup: float) -> float:
    """The learning rate of optimizer step `step` (0-based) of `steps`: linear
    warmup over a `warmup` fraction of the steps, then constant, cosine to 10%
    or inverse square root (`schedule`)."""
    # Warmup: n_w = floor(warmup * steps) steps rising linearly,
    #     lr(k) = base * (k + 1) / n_w        for k < n_w,
    # so the last warmup step, k = n_w - 1, reaches base.
    n_warm = int(warmup * steps)
    if step < n_warm:
        return base * (step + 1) / n_warm
    if schedule == "constant":
        return base
    if schedule == "rsqrt":
        # lr(k) = base * sqrt(max(n_w, 1) / (k + 1)), capped at base: T5's
        # 1/sqrt(max(k, n_w)), scaled so that it meets the warmup's peak at
        # k + 1 = n_w and then decays as k^-1/2 (halving takes 4x the steps).
        return base * math.sqrt(max(n_warm, 1) / (step + 1)) if step + 1 > max(n_warm, 1) else base
    # Cosine to 10%: with progress p = (k - n_w) / (steps - n_w) in [0, 1),
    #     lr(k) = base * (0.1 + 0.9 * (1 + cos(pi p)) / 2),
    # base at p = 0 and 0.1 * base at p -> 1 (the Chinchilla recipe's floor, not
    # zero: the last steps still learn, and the final loss is less sensitive to
    # exactly where the budget ends).
    progress = (step - n_warm) / max(1, steps - n_warm)
    return base * (0.1 + 0.9 * 0.5 * (1.0 + math.cos(math.pi * progress)))


def _device_and_ranks(cfg: RunConfig, batch: int):
    """(rank, world, device): the configured device, and under torchrun
    (WORLD_SIZE > 1) this process's rank and the process group."""
    import torch

    if cfg.device == "cuda" and not torch.cuda.is_available():
        raise SparsescaleError("--device cuda: no CUDA device is available")
    if cfg.device == "auto":
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        device = torch.device(cfg.device)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    if world == 1:
        return rank, world, device
    import torch.distributed as dist

    if batch % world:
        raise SparsescaleError(
            f"--batch {batch} must be divisible by the {world} torchrun processes"
        )
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    return rank, world, device


@dataclass
class Session:
    """Everything the loop touches. `state` is what the checkpoint keeps besides the tensors."""

    cfg: RunConfig
    plan: RunPlan
    family: Family
    out: Path
    device: Any
    rank: int
    world: int
    model: Any  # the raw module (evaluated and checkpointed)
    step_model: Any  # what the loop calls: DDP- and/or compile-wrapped
    optimizer: Any
    pruner: Any
    loader: Any
    val_batches: list
    # the last point's batches, which the law is fitted to (= val_batches unless
    # final_eval_tokens)
    final_batches: list
    losses: Any  # per-step training losses, on the device
    depends: str | None = None  # checkpoint.depends_hash: identity + data content
    micro: int = 0  # examples per forward pass on this process (cfg.micro_batch)
    # model training FLOPs of one example (train/throughput.py)
    flops_per_example: float | None = None
    swapped: bool = False  # pruned linears on semi-structured kernels (cfg.semi_structured)
    state: RunState = field(default_factory=RunState)

    @property
    def per_step(self) -> int:
        """Budget units (tokens or examples) one step consumes."""
        return self.plan.batch * self.family.tokens_per_example(self.plan.seq_len)

    def autocast(self):
        """bf16 autocast on CUDA unless precision says fp32; on the CPU only when asked
        (it is slower than fp32 for models below about 1M parameters)."""
        import torch

        p = self.cfg.precision
        on = p == "bf16" or (p == "auto" and self.device.type == "cuda")
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=on)


def _build(cfg: RunConfig, plan: RunPlan, device):
    """Model (seeded init, or the --init-from weights), optimizer and pruner."""
    import torch

    from sparsescale.sparsity import GradualPruner

    torch.manual_seed(cfg.seed)
    model = get_family(cfg.model).build(plan.size.model_config).to(device)
    if cfg.init_from:
        # a from-dense run: the dense run's final weights replace the seeded init
        model.load_state_dict(checkpoint.load_init_checkpoint(cfg.init_from)["model"])
    if cfg.activation_checkpointing:
        from sparsescale.models.recompute import recompute_blocks

        recompute_blocks(model)
    optimizer = _optimizer(cfg, model, device)
    sparsity = plan.size.sparsity
    # The cubic schedule (Zhu & Gupta 2017), sparsity/schedules.py. The prune
    # window is t0 = round(prune_start * steps) to t1 = min(round(prune_end * steps),
    # steps - 1); masks are recomputed at t0, every prune_every steps after it
    # and at t1, each time to
    #     S(t) = S * (1 - (1 - (t - t0) / (t1 - t0))^3),
    # 0 before t0 and S from t1 on, held between updates. It prunes fast early,
    # while many weights are near zero, and slowly as S is approached, so the
    # last masks change little; the steps after t1 train the final mask.
    pruner = GradualPruner(
        model,
        sparsity=sparsity,
        pattern=plan.size.pattern,
        total_steps=plan.steps,
        start=cfg.prune_start,
        end=cfg.prune_end,
        every=plan.prune_every,
        schedule="cubic" if sparsity > 0 else "dense",
        optimizer=optimizer,
    )
    return model, optimizer, pruner


def _optimizer(cfg: RunConfig, model, device):
    """The configured optimizer. Weight decay, when asked for, decays matrices only
    (norm scales and biases keep their scale, as in GPT-2/nanoGPT); without it all
    parameters stay in one group, so checkpoints of earlier runs still load. AdamW
    uses torch's fused kernel on CUDA (one launch for all tensors); on the CPU torch's
    default loop, which earlier CPU results were computed with."""
    import torch

    from sparsescale.sparsity import SparseAdafactor

    params: list = list(model.parameters())
    if cfg.weight_decay > 0:
        params = [
            {"params": [p for p in params if p.dim() >= 2], "weight_decay": cfg.weight_decay},
            {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
        ]
    lr = cfg.resolved("lr")
    if cfg.optimizer == "adafactor":
        return SparseAdafactor(
            params, lr=lr, beta1=cfg.beta1, factored=cfg.factored, weight_decay=cfg.weight_decay
        )
    kernel = {"fused": True} if device.type == "cuda" else {}
    return torch.optim.AdamW(
        params,
        lr=lr,
        betas=tuple(cfg.betas or ADAMW_BETAS),
        weight_decay=cfg.weight_decay,
        **kernel,
    )


def _check_execution(cfg: RunConfig, plan: RunPlan, world: int, device) -> int:
    """Refuse, up front rather than hours into training, execution settings this
    run cannot use; return the examples per forward pass on this process.
    micro_batch must divide the process's share batch / world of the batch;
    --semi-structured needs a 2:4 pattern and a device with the kernels."""
    per_rank = plan.batch // world
    micro = cfg.micro_batch or per_rank
    if per_rank % micro:
        raise SparsescaleError(
            f"--micro-batch: {micro} does not divide the {per_rank} examples per process "
            f"(--batch {plan.batch} over {world} processes)"
        )
    if cfg.semi_structured:
        from sparsescale.sparsity.semi_structured import unavailable_reason

        if plan.size.pattern not in ("2:4", "2:4T"):
            raise SparsescaleError(
                "semi_structured: needs pattern 2:4 or 2:4T, got "
                f"{plan.size.pattern or 'unstructured'}"
            )
        reason = unavailable_reason(device)
        if reason:
            raise SparsescaleError(f"semi_structured: {reason}")
    return micro


def setup(cfg: RunConfig, out: Path) -> Session:
    """Plan, build and (when out/ holds a usable checkpoint of this run) restore."""
    import torch

    from sparsescale.train.throughput import model_flops_per_example

    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    plan, data = plan_run(cfg)
    rank, world, device = _device_and_ranks(cfg, plan.batch)
    micro = _check_execution(cfg, plan, world, device)
    family = get_family(cfg.model)
    model, optimizer, pruner = _build(cfg, plan, device)
    # A from-dense run continues the dense run's seeded order: the loader is
    # built for dense_steps + steps batches and its first dense_steps, which the
    # dense run trained on, are skipped (train/plan.py derives dense_steps).
    loader = family.make_batches(
        data, plan.seq_len, plan.batch, plan.dense_steps + plan.steps, cfg.seed, rank, world
    )
    if plan.dense_steps:
        from sparsescale.data.loaders import SkippedLoader

        loader = SkippedLoader(loader, plan.dense_steps)
    n_val = cfg.eval_tokens if family.data_unit == "tokens" else cfg.eval_examples
    val_batches = loader.validation(n_val, plan.batch)
    # The final loss is what a law is fitted to: it may use a larger sample
    # than the curve's cheap intermediate points.
    final_batches = (
        loader.validation(cfg.final_eval_tokens, plan.batch)
        if cfg.final_eval_tokens and family.data_unit == "tokens"
        else val_batches
    )
    losses = torch.zeros(plan.steps, dtype=torch.float32, device=device)
    # The checkpoint depends on the training data's content: the corpus cache
    # key (a hash of the files' bytes) where the family has one, else its source.
    data_key = getattr(data, "key", None) or getattr(data, "source", None)
    s = Session(
        cfg=cfg,
        plan=plan,
        family=family,
        out=out,
        device=device,
        rank=rank,
        world=world,
        model=model,
        step_model=model,
        optimizer=optimizer,
        pruner=pruner,
        loader=loader,
        val_batches=val_batches,
        final_batches=final_batches,
        losses=losses,
        depends=checkpoint.depends_hash(cfg, data_key),
        micro=micro,
    )
    s.flops_per_example = model_flops_per_example(family, plan.size.model_config, val_batches[0])
    if (out / CHECKPOINT).exists():
        _resume(s)
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel as DDP

        s.step_model = DDP(s.model, device_ids=[device.index] if device.type == "cuda" else None)
    _compile(s)
    return s


def _compile(s: Session) -> None:
    import torch

    if s.cfg.compile and s.device.type == "cuda":
        s.step_model = torch.compile(s.step_model)


# Why a resume is bit-exact. Everything a step reads is either a pure function
# of (seed, step) or saved in the checkpoint:
# - the batch of step k comes from a permutation seeded by the run's seed
#   (data/loaders.py): the loader needs no saved position, only k;
# - the learning rate is a closed form of k (`_lr_at`), and so is the pruning
#   schedule (sparsity/schedules.py); the masks themselves are pruner state;
# - the weights, the optimizer's moments, the pruner's masks and the per-step
#   losses are saved as tensors, the bookkeeping as a RunState (train/state.py);
# - no random number is drawn after the seeded initialisation (no dropout), so
#   there is no RNG state to carry.
# On the CPU the same operations on the same tensors give the same bits, so a
# run killed at a checkpoint and resumed lands on the uninterrupted run's loss
# exactly (tests/train/test_run.py kills one with SIGKILL and with SIGTERM).
# Steps after the last checkpoint are lost and recomputed, identically; only
# the wall times differ (they count each attempt's steps that were saved).
def _resume(s: Session) -> None:
    """Restore the checkpoint, or start over from fresh objects when it was set
    aside (unreadable, other data) or fails to load into this model."""
    ckpt = checkpoint.read(s.out / CHECKPOINT, s.cfg, s.device, s.depends, s.plan.steps)
    if ckpt is None:
        return
    try:
        s.state = checkpoint.restore(ckpt, s.model, s.optimizer, s.pruner, s.losses)
        return
    except (
        RuntimeError,
        KeyError,
        ValueError,
        TypeError,
    ) as exc:  # shapes or keys of another model
        checkpoint.set_aside(
            s.out / CHECKPOINT, f"does not load into this model ({type(exc).__name__})"
        )
    # the objects may be half loaded: build them again
    s.model, s.optimizer, s.pruner = _build(s.cfg, s.plan, s.device)
    s.step_model = s.model
    s.losses.zero_()
    s.state = RunState()


# ---- the loop's helpers ------------------------------------------------------------
class _Stop:
    """SIGTERM -> finish the current step, checkpoint, then terminate."""

    def __init__(self):
        self.requested = False
        self.previous = None

    def install(self) -> None:
        if threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGTERM, self._handler)

    def _handler(self, signum, frame) -> None:
        self.requested = True

    def uninstall(self) -> None:
        if self.previous is not None:
            signal.signal(signal.SIGTERM, self.previous)
            self.previous = None


class _Clock:
    """Training and evaluation wall time, added to the state at each checkpoint
    (so a resumed run's times cover all its attempts, minus lost steps)."""

    def __init__(self):
        self.start, self.eval = time.perf_counter(), 0.0

    def flush(self, state: RunState) -> None:
        elapsed = time.perf_counter() - self.start
        state.train_wall_s += elapsed - self.eval
        state.eval_wall_s += self.eval
        self.start, self.eval = time.perf_counter(), 0.0


class _Reporter:
    """Progress at most twice a second: a rich bar (unless quiet) and/or the
    caller's callback ({"step", "steps", "loss"}: a sweep's per-run bar)."""

    def __init__(self, s: Session, quiet: bool, callback: Progress | None):
        self.callback, self.bar, self.last = callback, None, 0.0
        self.t0, self.step0, self.s = time.perf_counter(), s.state.step, s
        if quiet or s.rank != 0:
            return
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )

        self.bar = Progress(
            TextColumn("[bold]train"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("steps"),
            TextColumn("{task.fields[rate]}"),
            TextColumn("loss {task.fields[loss]}"),
            TimeRemainingColumn(),
        )
        self.task = self.bar.add_task(
            "train", total=s.plan.steps, completed=self.step0, rate="", loss="-"
        )
        self.bar.start()

    def update(self, step: int) -> None:
        now = time.perf_counter()
        if (self.bar is None and self.callback is None) or now - self.last < 0.5:
            return
        self.last = now
        loss = float(self.s.losses[step - 1])  # the one host sync, twice a second at most
        if self.callback is not None:
            self.callback({"step": step, "steps": self.s.plan.steps, "loss": loss})
        if self.bar is not None:
            rate = (step - self.step0) / max(now - self.t0, 1e-9) * self.s.per_step
            self.bar.update(
                self.task,
                completed=step,
                loss=f"{loss:.4f}",
                rate=f"{rate:,.0f} {self.s.family.data_unit}/s",
            )

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()


def _first_bad_step(s: Session, checked: int, step: int) -> int | None:
    """The first step in [checked, step) whose loss is NaN/inf on any rank, else None.
    Under DDP every rank must agree to stop: the flag is all-reduced with MAX, and a
    rank whose own losses are finite reports `checked` (it cannot know the step)."""
    import torch

    bad = ~torch.isfinite(s.losses[checked:step])
    any_bad = bool(bad.any())
    if s.world > 1:
        flag = torch.tensor(float(any_bad), device=s.device)
        torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
        if not bool(flag):
            return None
    elif not any_bad:
        return None
    return checked + int(bad.nonzero()[0]) if any_bad else checked


def _evaluate(s: Session, batches: list) -> float:
    """Mean validation loss per target over `batches`: each batch's mean is weighted
    by its number of targets, so a short last batch counts for what it holds."""
    import torch

    s.model.eval()
    total = torch.zeros((), dtype=torch.float64, device=s.device)
    count = 0
    with torch.no_grad(), s.autocast():
        for batch in batches:
            batch = [t.to(s.device, non_blocking=True) for t in batch]
            n = batch[-1].numel()
            total += s.family.loss(s.model, batch).double() * n
            count += n
    s.model.train()
    return float(total / count)


def _curve_point(s: Session, step: int, since: int) -> dict[str, Any]:
    """Validation loss now, and the mean training loss over steps [since, step)."""
    import torch

    train_loss = s.losses[since:step].mean()
    if s.world > 1:
        # each rank's mean over its share of the batch; equal shares, so the mean of means
        torch.distributed.all_reduce(train_loss)
        train_loss /= s.world
    batches = s.final_batches if step == s.plan.steps else s.val_batches
    return {
        "step": step,
        s.family.data_unit: step * s.per_step,
        "val_loss": _evaluate(s, batches),
        "train_loss": float(train_loss),
    }


def _forward_backward(s: Session, batch: list):
    """The batch's mean loss, its gradient accumulated in .grad over micro-batches
    of s.micro examples (one forward and backward each)."""
    # Gradient accumulation: the batch of B examples is split into k = B / micro
    # micro-batches of equal size, each run forward and backward on its own, so
    # only one micro-batch's activations are held at a time. The loss is a mean
    # over the examples (their targets), so the batch loss is
    #     L = (1/B) sum_i l_i = (1/k) sum_j L_j,    L_j the mean over micro-batch j,
    # and by linearity its gradient is (1/k) sum_j grad L_j. backward() adds
    # into .grad, so scaling each L_j by 1/k before its backward leaves .grad
    # equal to the whole batch's gradient: the optimizer, the clipping norm and
    # the learning rate see the same numbers as without micro-batching (up to
    # fp32 rounding of the sum's order, tests/train/test_scale.py). Unscaled, the
    # gradient and the reported loss would be k times the batch's, and
    # --grad-clip would compare a norm k times too large with its threshold.
    chunks = list(zip(*(t.split(s.micro) for t in batch)))
    k = len(chunks)
    ddp = getattr(s.step_model, "_orig_mod", s.step_model)  # torch.compile wraps DDP
    total = None
    for j, chunk in enumerate(chunks):
        # Under DDP only the last backward all-reduces (no_sync on the others):
        # one gradient exchange per step, of the sum the others accumulated.
        quiet = ddp.no_sync() if s.world > 1 and j < k - 1 else contextlib.nullcontext()
        with quiet, s.autocast():
            loss = s.family.loss(s.step_model, list(chunk))
            if k > 1:
                loss = loss / k
        loss.backward()
        total = loss.detach() if total is None else total + loss.detach()
    return total


def _swap_when_final(s: Session) -> None:
    """After the last mask update of a 2:4 (or 2:4T) run, move the pruned linears onto
    semi-structured kernels (same Parameters, so optimizer, pruner and
    checkpoints are unchanged) and recompile the new forward."""
    from sparsescale.sparsity.semi_structured import swap_when_final

    if swap_when_final(s.model, s.pruner) is not None:
        s.swapped = True
        # DDP still wraps the same parent module; a compiled graph must be rebuilt
        s.step_model = getattr(s.step_model, "_orig_mod", s.step_model)
        _compile(s)


# ---- the loop --------------------------------------------------------------------
def _loop(s: Session, stop: _Stop, report: _Reporter) -> None:
    import torch

    cfg, plan, state = s.cfg, s.plan, s.state
    lr = cfg.resolved("lr")
    eval_every = cfg.eval_every or max(1, plan.steps // CURVE_POINTS)
    ckpt_every = cfg.ckpt_every or max(1, plan.steps // CHECKPOINTS_PER_RUN)
    clock = _Clock()
    # CUDA queues kernels asynchronously: the steady clock waits for them before reading the time
    sync = torch.cuda.synchronize if s.device.type == "cuda" else (lambda: None)
    steady = SteadyClock(state.step, WARMUP_STEPS_COMPILE if cfg.compile else WARMUP_STEPS, sync)
    step = checked = state.step
    # The next curve point averages the training loss since the last one, also
    # across a resume (the losses before it come back with the checkpoint).
    since = state.curve[-1]["step"] if state.curve else 0
    while step < plan.steps:
        # a function of (seed, step)
        batch = [t.to(s.device, non_blocking=True) for t in s.loader.get(step)]
        for group in s.optimizer.param_groups:
            group["lr"] = _lr_at(step, plan.steps, lr, cfg.lr_schedule, cfg.warmup)
        loss = _forward_backward(s, batch)
        if cfg.grad_clip is not None:  # the global norm: DDP has all-reduced the gradients
            torch.nn.utils.clip_grad_norm_(s.model.parameters(), cfg.grad_clip)
        s.optimizer.step()  # dense gradients, as in the paper
        s.optimizer.zero_grad(set_to_none=True)
        s.pruner.step()  # then masks: weights *= mask (new masks on update steps)
        s.losses[step] = loss.detach()  # stays on the device: no sync per step
        if cfg.semi_structured and not s.swapped:
            _swap_when_final(s)
        step += 1
        state.step = step
        steady.mark(step)
        last = step == plan.steps
        if step - checked >= NAN_CHECK_EVERY or last or stop.requested:
            state.diverged_at_step = _first_bad_step(s, checked, step)
            if state.diverged_at_step is not None:
                break  # nothing after a NaN means anything
            checked = step
        if step % eval_every == 0 or last:
            t0 = time.perf_counter()
            state.curve.append(_curve_point(s, step, since))
            since = step
            clock.eval += time.perf_counter() - t0
            steady.add_eval(time.perf_counter() - t0)
        if step % ckpt_every == 0 or last or stop.requested:
            clock.flush(state)
            steady.flush(state, step)
            if s.rank == 0:  # DDP ranks hold the same weights: one writer
                checkpoint.save(
                    s.out / CHECKPOINT,
                    cfg,
                    plan.size.model_config,
                    s.model,
                    s.optimizer,
                    s.pruner,
                    s.losses,
                    state,
                    depends=s.depends,
                )
            if stop.requested:
                return
        report.update(step)
    if state.diverged_at_step is not None:
        clock.flush(state)


# ---- the result ------------------------------------------------------------------
def _result(s: Session) -> RunResult:
    import dataclasses

    import numpy
    import torch

    import sparsescale
    from sparsescale.train.throughput import speed_record

    plan, size, state, unit = s.plan, s.plan.size, s.state, s.family.data_unit
    diverged = state.diverged_at_step is not None
    stats = s.pruner.stats()
    steps_done = state.diverged_at_step if diverged else plan.steps
    rate = steps_done * s.per_step / max(state.train_wall_s, 1e-9)
    speed = speed_record(
        state, plan.batch, plan.seq_len, s.flops_per_example, s.device, s.world, s.cfg.compile
    )
    versions = {
        "sparsescale": sparsescale.__version__,
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "python": platform.python_version(),
    }
    return RunResult(
        status="diverged" if diverged else "finished",
        config=s.cfg.model_dump(),
        identity=s.cfg.identity(),
        family=s.cfg.model,
        n_nonzero=stats["n_nonzero"],
        target_n_nonzero=size.target_n_nonzero,
        n_block_params=size.n_block_params,
        total_params=size.total_params,
        embedding_params=size.embedding_params,
        width=size.width,
        model_config=dataclasses.asdict(size.model_config),
        sparsity=size.sparsity,
        measured_sparsity=stats["sparsity"],
        pattern=size.pattern,
        steps=plan.steps,
        batch=plan.batch,
        seq_len=plan.seq_len,
        examples=plan.examples,
        tokens=plan.tokens,
        train_flops_dense=plan.train_flops_dense,
        train_flops_sparse=plan.train_flops_sparse,
        mean_density=plan.mean_density,
        prune_start=s.cfg.prune_start,
        prune_end=s.cfg.prune_end,
        final_loss=state.curve[-1]["val_loss"] if state.curve and not diverged else None,
        curve=state.curve,
        wall_s=state.train_wall_s + state.eval_wall_s,
        train_wall_s=state.train_wall_s,
        tokens_per_s=rate if unit == "tokens" else None,
        examples_per_s=rate if unit == "examples" else None,
        device=str(s.device),
        world_size=s.world,
        versions=versions,
        diverged_at_step=state.diverged_at_step,
        **speed,
    )


def _terminate(s: Session) -> None:
    """Checkpointed after SIGTERM: terminate the way SIGTERM would have, so supervisors see it."""
    if s.world > 1:
        import torch

        torch.distributed.destroy_process_group()
    os.kill(os.getpid(), signal.SIGTERM)
    raise SystemExit(128 + signal.SIGTERM)


def is_run_folder(folder: Path) -> bool:
    """Whether an existing folder may be trained into: what a run writes there
    (result.json) is absent or a sparsescale result. A checkpoint is checked
    when it is read (its identity against the run's)."""
    return not (folder / RESULT).exists() or read_result(folder / RESULT) is not None


def train(
    cfg: RunConfig | dict,
    out_dir: str | os.PathLike,
    quiet: bool = False,
    progress: Progress | None = None,
) -> RunResult:
    """Train one run into out_dir (resuming from its checkpoint), write
    out_dir/result.json atomically and return its RunResult. A run already
    finished with the same identity is returned as is. `progress` is called
    with {"step", "steps", "loss"} at most twice a second. Under torchrun it
    trains with DistributedDataParallel (rank 0 writes the files)."""
    from sparsescale.atomic import check_output

    cfg, out = as_config(cfg), Path(out_dir)
    # Fail now, not at the first checkpoint minutes into training.
    # a result.json that is not ours is refused (ours are written atomically: never torn)
    check_output(out, what="out_dir", folder=True, ours=is_run_folder)
    done = read_result(out / RESULT)
    if done is not None and checkpoint.same_run(done.identity, cfg):
        return done
    s = setup(cfg, out)
    stop = _Stop()
    stop.install()
    report = _Reporter(s, quiet, progress)
    try:
        _loop(s, stop, report)
    finally:
        report.close()
        stop.uninstall()
    if stop.requested and s.state.step < s.plan.steps and s.state.diverged_at_step is None:
        _terminate(s)
    result = _result(s)
    if s.rank == 0:
        write_json(out / RESULT, result.to_dict())
    if s.world > 1:
        import torch

        torch.distributed.barrier()
    return result
