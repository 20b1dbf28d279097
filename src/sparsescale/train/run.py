"""One training run: model + data + pruner + optimizer -> result.json.

`check_config(cfg)` plans a run without training (sizes, steps, FLOPs) and
raises SparsescaleError for anything that would fail later. `train(cfg,
out_dir)` trains it, resuming from out_dir/checkpoint.pt when present, and
writes out_dir/result.json atomically.

One step, as in the paper: forward, backward, optimizer update with dense
gradients, then `pruner.step()` (new masks on update steps; weights *= mask).
Batch `step` is a pure function of (seed, step), and the checkpoint holds the
model, optimizer and pruner state, so a resumed run computes exactly what an
uninterrupted one does. Per-step losses stay on the device and are checked for
NaN/inf in bulk, so the hot loop never waits on a host sync.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import platform
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from sparsescale.atomic import atomic_path, write_json
from sparsescale.errors import SparsescaleError
from sparsescale.train.config import RunConfig

CHECKPOINT = "checkpoint.pt"
RESULT = "result.json"
NAN_CHECK_EVERY = 16     # steps between bulk NaN/inf checks of the loss
CURVE_POINTS = 8         # default number of validation points on the curve
CHECKPOINTS_PER_RUN = 10


@dataclass
class Plan:
    """Everything check_config decides: shape, counts, steps, FLOPs."""

    family: str
    model_config: Any
    sparsity: float
    pattern: str | None
    target_n_nonzero: int
    n_nonzero: int
    n_block_params: int
    embedding_params: int
    total_params: int
    steps: int
    batch: int
    seq_len: int | None
    examples: int                 # windows (text) or images consumed
    tokens: int | None            # text: raw corpus tokens consumed
    block_macs_per_example: int   # multiply-adds of the pruned linears per example, dense
    mean_density: float           # mean kept fraction of the pruned set over training
    prune_every: int
    train_flops_dense: float
    train_flops_sparse: float

    def summary(self) -> dict[str, Any]:
        out = {
            "n_nonzero": self.n_nonzero,
            "target_n_nonzero": self.target_n_nonzero,
            "width": self.model_config.width,
            "total_params": self.total_params,
            "embedding_params": self.embedding_params,
            "n_block_params": self.n_block_params,
            "sparsity": self.sparsity,
            "pattern": self.pattern,
            "steps": self.steps,
            "batch": self.batch,
            "examples": self.examples,
            "train_flops_dense": self.train_flops_dense,
            "train_flops_sparse": self.train_flops_sparse,
        }
        if self.tokens is not None:
            out["tokens"] = self.tokens
        return out


def _as_config(cfg: RunConfig | dict) -> RunConfig:
    return cfg if isinstance(cfg, RunConfig) else RunConfig(**cfg)


def _load_init_checkpoint(path: str) -> dict:
    import torch

    p = Path(path).expanduser()
    if not p.is_file():
        raise SparsescaleError(f"--init-from {p}: no such checkpoint file")
    try:
        return torch.load(p, map_location="cpu", weights_only=True, mmap=True)
    except Exception as exc:  # not a torch file / not ours
        raise SparsescaleError(f"--init-from {p}: not a sparsescale checkpoint ({type(exc).__name__})") from None


def _model_config_from_checkpoint(cfg: RunConfig, ckpt: dict):
    from sparsescale.models.sizing import config_class

    if ckpt.get("family") != cfg.model or "model_config" not in ckpt:
        raise SparsescaleError(
            f"--init-from {cfg.init_from}: holds a {ckpt.get('family')!r} model, this run is {cfg.model!r}"
        )
    return config_class(cfg.model)(**ckpt["model_config"])


_DATA_MEMO: dict[tuple, Any] = {}


def _data_capacity(cfg: RunConfig) -> tuple[int, Any]:
    """(training examples available, data handle) without building batches.
    Data handles are memoised per process: a sweep checks many runs at once."""
    key = (cfg.model, cfg.corpus, cfg.tokenizer, cfg.vocab_size, cfg.resolved("seq_len"))
    if key not in _DATA_MEMO:
        _DATA_MEMO[key] = _load_data(cfg)
    return _DATA_MEMO[key]


def _load_data(cfg: RunConfig) -> tuple[int, Any]:
    if cfg.model == "vit":
        from sparsescale.data.images import load_images

        data = load_images(cfg.corpus)
        return len(data.train_labels), data
    from sparsescale.data.corpus import load_corpus
    from sparsescale.data.loaders import lm_capacity, t5_capacity

    corpus = load_corpus(cfg.corpus, cfg.tokenizer, cfg.vocab_size)
    seq_len = cfg.resolved("seq_len")
    cap = lm_capacity(corpus, seq_len) if cfg.model == "gpt" else t5_capacity(corpus, seq_len)
    return cap, corpus


def _block_macs_per_example(family: str, model, model_config, seq_len: int | None) -> int:
    """Dense multiply-adds of the pruned linears for one training example."""
    from sparsescale.sparsity.pruner import select_prunable

    prunable = select_prunable(model)
    if family == "gpt":
        return seq_len * sum(p.numel() for p in prunable.values())
    if family == "vit":
        n_tokens = model_config.n_patches + (1 if model_config.pool == "cls" else 0)
        return n_tokens * sum(p.numel() for p in prunable.values())
    from sparsescale.data.span_corruption import corrupted_lengths

    enc_len, dec_len = corrupted_lengths(seq_len)
    enc = sum(p.numel() for k, p in prunable.items() if k.startswith("encoder."))
    dec = sum(p.numel() for k, p in prunable.items() if k.startswith("decoder."))
    # cross-attention keys/values run over the encoder output, not the decoder's
    kv = sum(p.numel() for k, p in prunable.items() if k.startswith("decoder.") and ".cross.kv." in k)
    return enc_len * enc + dec_len * (dec - kv) + enc_len * kv


def _plan(cfg: RunConfig) -> tuple[Plan, Any]:
    from sparsescale.models.sizing import build_model, count_params, plan_size
    from sparsescale.sparsity.schedules import mean_density

    sparsity = cfg.final_sparsity
    seq_len = cfg.resolved("seq_len")
    batch = cfg.resolved("batch")
    arch = cfg.arch_overrides()
    if cfg.init_from:
        model_config = _model_config_from_checkpoint(cfg, _load_init_checkpoint(cfg.init_from))
    else:
        model_config = None

    capacity, data = _data_capacity(cfg)
    if cfg.model == "gpt":
        arch["vocab_size"] = data.vocab_size
    elif cfg.model == "t5":
        from sparsescale.data.span_corruption import SpecialIds

        arch["vocab_size"] = SpecialIds(data.vocab_size).vocab_size
    else:
        h, w, c = data.image_shape
        if h != w:
            raise SparsescaleError(f"--corpus {data.source}: images must be square, got {h}x{w}")
        arch.update(image_size=h, channels=c, n_classes=data.n_classes)

    if model_config is None:
        model_config = plan_size(cfg.model, cfg.params, sparsity, cfg.pattern, arch).model_config
    elif cfg.model == "gpt" and model_config.seq_len < seq_len:
        raise SparsescaleError(f"--seq-len {seq_len} exceeds the --init-from model's context {model_config.seq_len}")
    meta_model = build_model(cfg.model, model_config, device="meta")
    if cfg.pattern is not None:
        from sparsescale.sparsity.masks import check_nm_shape, parse_pattern
        from sparsescale.sparsity.pruner import select_prunable

        n, m = parse_pattern(cfg.pattern)
        for name, p in select_prunable(meta_model).items():
            try:
                check_nm_shape(name, tuple(p.shape), n, m)
            except SparsescaleError as exc:
                raise SparsescaleError(f"--pattern {cfg.pattern}: m={m} does not divide the width ({exc})") from None
    counts = count_params(meta_model, sparsity, cfg.pattern)

    if cfg.steps is not None:
        steps = cfg.steps
    else:
        per_step = batch * (seq_len if cfg.model != "vit" else 1)
        requested = cfg.tokens if cfg.model != "vit" else cfg.examples
        steps = requested // per_step
        if steps < 1:
            raise SparsescaleError(
                f"--{cfg.budget_axis} {requested} is less than one batch ({per_step}); ask for more or lower --batch"
            )
    examples = steps * batch
    if examples > capacity:
        unit = "tokens" if cfg.model != "vit" else "examples"
        have = capacity * (seq_len if cfg.model != "vit" else 1)
        want = examples * (seq_len if cfg.model != "vit" else 1)
        source = getattr(data, "source", cfg.corpus)
        raise SparsescaleError(
            f"--{cfg.budget_axis}: the run needs {want} training {unit} but the corpus ({source}) holds {have}; "
            "data is never repeated: ask for less or point --corpus at a larger one"
        )
    prune_every = cfg.prune_every or min(100, max(1, steps // 200))
    density = mean_density("cubic", sparsity, steps, start=cfg.prune_start, end=cfg.prune_end,
                           every=prune_every) if sparsity > 0 else 1.0
    macs = _block_macs_per_example(cfg.model, meta_model, model_config, seq_len)
    flops_dense = 6.0 * macs * examples
    plan = Plan(
        family=cfg.model, model_config=model_config, sparsity=sparsity, pattern=cfg.pattern,
        target_n_nonzero=cfg.params, n_nonzero=counts["n_nonzero"], n_block_params=counts["n_block_params"],
        embedding_params=counts["embedding_params"], total_params=counts["total_params"], steps=steps,
        batch=batch, seq_len=seq_len if cfg.model != "vit" else None, examples=examples,
        tokens=examples * seq_len if cfg.model != "vit" else None, block_macs_per_example=macs,
        mean_density=density, prune_every=prune_every,
        train_flops_dense=flops_dense, train_flops_sparse=flops_dense * density,
    )
    return plan, data


def check_config(cfg: RunConfig | dict) -> dict[str, Any]:
    """Validate a run without training and return its planned sizes: n_nonzero,
    width, total_params, embedding_params, steps, tokens (text) and examples,
    train_flops_dense, train_flops_sparse. Raises SparsescaleError for an
    impossible run (bad S, N below the family minimum, unknown model, n:m that
    does not divide the width, more data than the corpus holds, no corpus)."""
    plan, _ = _plan(_as_config(cfg))
    return plan.summary()


# ---- training ------------------------------------------------------------------
def _versions() -> dict[str, str]:
    import numpy
    import torch

    import sparsescale

    return {"sparsescale": sparsescale.__version__, "torch": torch.__version__,
            "numpy": numpy.__version__, "python": platform.python_version()}


def _lr_at(step: int, steps: int, base: float, schedule: str, warmup: float) -> float:
    """Linear warmup, then constant / cosine to 10% / inverse square root."""
    n_warm = int(warmup * steps)
    if step < n_warm:
        return base * (step + 1) / n_warm
    if schedule == "constant":
        return base
    if schedule == "rsqrt":
        return base * math.sqrt(max(n_warm, 1) / (step + 1)) if step + 1 > max(n_warm, 1) else base
    progress = (step - n_warm) / max(1, steps - n_warm)
    return base * (0.1 + 0.9 * 0.5 * (1.0 + math.cos(math.pi * progress)))


def _make_loader(cfg: RunConfig, plan: Plan, data, rank: int, world: int):
    from sparsescale.data.loaders import ImageBatches, LMBatches, T5Batches

    if cfg.model == "gpt":
        return LMBatches(data, plan.seq_len, plan.batch, plan.steps, cfg.seed, rank, world)
    if cfg.model == "t5":
        return T5Batches(data, plan.seq_len, plan.batch, plan.steps, cfg.seed, rank, world)
    return ImageBatches(data, plan.batch, plan.steps, cfg.seed, rank, world)


def _device(cfg: RunConfig):
    import torch

    if cfg.device == "cuda" and not torch.cuda.is_available():
        raise SparsescaleError("--device cuda: no CUDA device is available")
    if cfg.device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(cfg.device)


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


def _config_identity(cfg: RunConfig) -> dict[str, Any]:
    """The fields that decide what a run computes (not how fast or where)."""
    return cfg.model_dump(exclude={"threads", "ckpt_every", "device", "compile", "eval_every"})


def _evaluate(model, batches, device, autocast) -> float:
    import torch

    model.eval()
    total = torch.zeros((), dtype=torch.float64, device=device)
    count = 0
    with torch.no_grad(), autocast():
        for batch in batches:
            batch = [t.to(device, non_blocking=True) for t in batch]
            _, loss = model(*batch)
            n = batch[-1].numel()
            total += loss.double() * n
            count += n
    model.train()
    return float(total / count)


class _Progress:
    """A rich progress bar (tokens/s and loss), refreshed at most twice a second."""

    def __init__(self, quiet: bool, total: int, done: int, unit: str, per_step: int):
        self.bar = None
        self.per_step, self.unit = per_step, unit
        self.last = 0.0
        self.t0, self.step0 = time.perf_counter(), done
        if quiet:
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.bar = Progress(
            TextColumn("[bold]train"), BarColumn(), MofNCompleteColumn(), TextColumn("steps"),
            TextColumn("{task.fields[rate]}"), TextColumn("loss {task.fields[loss]}"), TimeRemainingColumn(),
        )
        self.task = self.bar.add_task("train", total=total, completed=done, rate="", loss="-")
        self.bar.start()

    def update(self, step: int, loss_fn: Callable[[], float], force: bool = False) -> None:
        if self.bar is None:
            return
        now = time.perf_counter()
        if not force and now - self.last < 0.5:
            return
        self.last = now
        rate = (step - self.step0) / max(now - self.t0, 1e-9)
        self.bar.update(self.task, completed=step, loss=f"{loss_fn():.4f}",
                        rate=f"{rate * self.per_step:,.0f} {self.unit}/s")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()


def _finished_result(out: Path, cfg: RunConfig) -> dict | None:
    path = out / RESULT
    if not path.exists():
        return None
    try:
        result = json.loads(path.read_text())
    except ValueError:
        return None
    if result.get("status") in ("finished", "diverged") and result.get("identity") == _config_identity(cfg):
        return result
    return None


def train(cfg: RunConfig | dict, out_dir: str | os.PathLike, quiet: bool = False) -> dict[str, Any]:
    """Train one run into out_dir (resuming from its checkpoint), write
    out_dir/result.json atomically and return the result dict. A run already
    finished with the same config is returned as is. Under torchrun it trains
    with DistributedDataParallel (rank 0 writes the files)."""
    import torch

    cfg = _as_config(cfg)
    out = Path(out_dir)
    done = _finished_result(out, cfg)
    if done is not None:
        return done
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    plan, data = _plan(cfg)
    device = _device(cfg)

    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    distributed = world > 1
    if distributed:
        import torch.distributed as dist

        if plan.batch % world:
            raise SparsescaleError(f"--batch {plan.batch} must be divisible by the {world} torchrun processes")
        if not dist.is_initialized():
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        if device.type == "cuda":
            device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
            torch.cuda.set_device(device)

    from sparsescale.models.sizing import build_model
    from sparsescale.sparsity import GradualPruner, SparseAdafactor

    torch.manual_seed(cfg.seed)
    model = build_model(cfg.model, plan.model_config).to(device)
    if cfg.init_from:
        model.load_state_dict(_load_init_checkpoint(cfg.init_from)["model"])
    lr = cfg.resolved("lr")
    if cfg.optimizer == "adafactor":
        optimizer = SparseAdafactor(model.parameters(), lr=lr)
    else:
        optimizer = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.95), weight_decay=0.0)
    pruner = GradualPruner(
        model, sparsity=plan.sparsity, pattern=plan.pattern, total_steps=plan.steps, start=cfg.prune_start,
        end=cfg.prune_end, every=plan.prune_every, schedule="cubic" if plan.sparsity > 0 else "dense",
        optimizer=optimizer,
    )

    losses = torch.zeros(plan.steps, dtype=torch.float32, device=device)
    state = {"step": 0, "curve": [], "train_wall_s": 0.0, "eval_wall_s": 0.0, "diverged_at_step": None}
    ckpt_path = out / CHECKPOINT
    if ckpt_path.exists():
        ckpt = torch.load(ckpt_path, map_location=device, weights_only=True)
        if ckpt.get("identity") != _config_identity(cfg):
            raise SparsescaleError(
                f"--out {out}: holds a checkpoint of a different run; use a new --out folder or delete {ckpt_path}"
            )
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        pruner.load_state_dict(ckpt["pruner"])
        losses.copy_(ckpt["losses"])
        state.update(ckpt["state"])

    raw_model = model
    if distributed:
        from torch.nn.parallel import DistributedDataParallel as DDP

        model = DDP(model, device_ids=[device.index] if device.type == "cuda" else None)
    step_model = model
    if cfg.compile and device.type == "cuda":
        step_model = torch.compile(model)

    def autocast():
        return torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda")

    loader = _make_loader(cfg, plan, data, rank, world)
    val_batches = loader.validation(cfg.eval_tokens if cfg.model != "vit" else cfg.eval_examples, plan.batch)
    # The final loss is what a law is fitted to: it may use a larger sample
    # than the curve's cheap intermediate points (issue 11).
    final_batches = (loader.validation(cfg.final_eval_tokens, plan.batch)
                     if cfg.final_eval_tokens and cfg.model != "vit" else val_batches)
    eval_every = cfg.eval_every or max(1, plan.steps // CURVE_POINTS)
    ckpt_every = cfg.ckpt_every or max(1, plan.steps // CHECKPOINTS_PER_RUN)
    per_step = plan.batch * (plan.seq_len or 1)
    unit = "tokens" if cfg.model != "vit" else "examples"

    def save_checkpoint() -> None:
        if rank != 0:
            return
        payload = {
            "family": cfg.model, "model_config": dataclasses.asdict(plan.model_config),
            "identity": _config_identity(cfg), "model": raw_model.state_dict(),
            "optimizer": optimizer.state_dict(), "pruner": pruner.state_dict(),
            "losses": losses.cpu(), "state": dict(state),
        }
        with atomic_path(ckpt_path) as tmp:
            torch.save(payload, tmp)

    stop = _Stop()
    stop.install()
    progress = _Progress(quiet or rank != 0, plan.steps, state["step"], unit, per_step)
    checked = state["step"]
    interval_start = state["step"]
    t_start = time.perf_counter()
    t_eval = 0.0
    try:
        step = state["step"]
        while step < plan.steps:
            batch = [t.to(device, non_blocking=True) for t in loader.get(step)]
            for group in optimizer.param_groups:
                group["lr"] = _lr_at(step, plan.steps, lr, cfg.lr_schedule, cfg.warmup)
            with autocast():
                _, loss = step_model(*batch)
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            pruner.step()
            losses[step] = loss.detach()
            step += 1
            state["step"] = step

            last = step == plan.steps
            if step - checked >= NAN_CHECK_EVERY or last or stop.requested:
                bad = ~torch.isfinite(losses[checked:step])
                if distributed:
                    flag = bad.any().float()
                    torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
                    any_bad = bool(flag)
                else:
                    any_bad = bool(bad.any())
                if any_bad:
                    first = checked + int(bad.nonzero()[0]) if bad.any() else checked
                    state["diverged_at_step"] = first
                    break
                checked = step
            if step % eval_every == 0 or last:
                t0 = time.perf_counter()
                val = _evaluate(raw_model, final_batches if last else val_batches, device, autocast)
                train_loss = losses[interval_start:step].mean()
                if distributed:
                    torch.distributed.all_reduce(train_loss)
                    train_loss /= world
                state["curve"].append({"step": step, unit: step * per_step, "val_loss": val,
                                       "train_loss": float(train_loss)})
                interval_start = step
                t_eval += time.perf_counter() - t0
            if step % ckpt_every == 0 or last or stop.requested:
                elapsed = time.perf_counter() - t_start
                state["train_wall_s"] += elapsed - t_eval
                state["eval_wall_s"] += t_eval
                t_start, t_eval = time.perf_counter(), 0.0
                save_checkpoint()
                if stop.requested:
                    break
            progress.update(step, lambda: float(losses[step - 1]))
    finally:
        progress.close()
        stop.uninstall()

    if stop.requested and state["step"] < plan.steps and state["diverged_at_step"] is None:
        # Checkpointed: terminate the way SIGTERM would have, so supervisors see it.
        if distributed:
            torch.distributed.destroy_process_group()
        os.kill(os.getpid(), signal.SIGTERM)
        raise SystemExit(128 + signal.SIGTERM)

    diverged = state["diverged_at_step"] is not None
    if diverged:
        elapsed = time.perf_counter() - t_start
        state["train_wall_s"] += elapsed - t_eval
        state["eval_wall_s"] += t_eval
    stats = pruner.stats()
    steps_done = state["diverged_at_step"] if diverged else plan.steps
    result: dict[str, Any] = {
        "config": cfg.model_dump(),
        "identity": _config_identity(cfg),
        "status": "diverged" if diverged else "finished",
        "family": cfg.model,
        "n_nonzero": stats["n_nonzero"],
        "target_n_nonzero": plan.target_n_nonzero,
        "n_block_params": plan.n_block_params,
        "total_params": plan.total_params,
        "embedding_params": plan.embedding_params,
        "width": plan.model_config.width,
        "model_config": dataclasses.asdict(plan.model_config),
        "sparsity": plan.sparsity,
        "measured_sparsity": stats["sparsity"],
        "pattern": plan.pattern,
        "steps": plan.steps,
        "batch": plan.batch,
        "seq_len": plan.seq_len,
        "examples": plan.examples,
        "train_flops_dense": plan.train_flops_dense,
        "train_flops_sparse": plan.train_flops_sparse,
        "mean_density": plan.mean_density,
        "final_loss": state["curve"][-1]["val_loss"] if state["curve"] and not diverged else None,
        "curve": state["curve"],
        "wall_s": state["train_wall_s"] + state["eval_wall_s"],
        "train_wall_s": state["train_wall_s"],
        f"{unit}_per_s": steps_done * per_step / max(state["train_wall_s"], 1e-9),
        "device": str(device),
        "world_size": world,
        "versions": _versions(),
    }
    if plan.tokens is not None:
        result["tokens"] = plan.tokens
    if unit == "examples":
        result["tokens_per_s"] = None
    if diverged:
        result["diverged_at_step"] = state["diverged_at_step"]
    if rank == 0:
        write_json(out / RESULT, result)
    if distributed:
        torch.distributed.barrier()
    return result
