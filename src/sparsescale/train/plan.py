"""Planning one run without training it: its shape (a SizePlan), steps, data and FLOPs.

`plan_run(cfg)` raises SparsescaleError for anything that would fail later
(bad S, N below the family minimum, n:m that does not divide the width, more
data than the corpus holds); `check_config(cfg)` returns the plan's summary.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sparsescale.errors import SparsescaleError
from sparsescale.models.registry import Family, get_family
from sparsescale.models.sizing import SizePlan, build_model, measure, plan_size
from sparsescale.train.checkpoint import load_init_checkpoint, model_config_from_checkpoint
from sparsescale.train.config import RunConfig


@dataclass
class RunPlan:
    """What a run will do: the sized model plus the steps and FLOPs of its budget."""

    size: SizePlan  # shape and parameter counts (N = size.n_nonzero)
    steps: int
    batch: int
    seq_len: int | None
    examples: int  # windows (text) or images consumed
    tokens: int | None  # text: tokens consumed
    block_macs_per_example: int  # multiply-adds of the pruned linears per example, dense
    mean_density: float  # mean kept fraction of the pruned set over training
    prune_every: int
    train_flops_dense: float
    train_flops_sparse: float
    # batches of the seeded order the dense run already read (cfg.dense_tokens)
    dense_steps: int = 0

    def summary(self) -> dict[str, Any]:
        s = self.size
        out = {
            "n_nonzero": s.n_nonzero,
            "target_n_nonzero": s.target_n_nonzero,
            "width": s.width,
            "total_params": s.total_params,
            "embedding_params": s.embedding_params,
            "n_block_params": s.n_block_params,
            "sparsity": s.sparsity,
            "pattern": s.pattern,
            "steps": self.steps,
            "batch": self.batch,
            "examples": self.examples,
            "train_flops_dense": self.train_flops_dense,
            "train_flops_sparse": self.train_flops_sparse,
        }
        if self.tokens is not None:
            out["tokens"] = self.tokens
            out["seq_len"] = self.seq_len
        return out


def as_config(cfg: RunConfig | dict) -> RunConfig:
    return cfg if isinstance(cfg, RunConfig) else RunConfig(**cfg)


_DATA_MEMO: dict[tuple, Any] = {}


def data_for(cfg: RunConfig) -> tuple[int, Any]:
    """(training examples available, data handle) without building batches.
    Data handles are memoised per process: a sweep checks many runs at once."""
    # the key is what decides the data (family, corpus, tokenizer, vocabulary,
    # text column, context); runs differing in lr, seed, S or N share one handle
    key = (
        cfg.model,
        cfg.corpus,
        cfg.tokenizer,
        cfg.vocab_size,
        cfg.text_column,
        cfg.resolved("seq_len"),
    )
    if key not in _DATA_MEMO:
        _DATA_MEMO[key] = get_family(cfg.model).load_data(cfg)
    return _DATA_MEMO[key]


_SHAPE_MEMO: dict[tuple, tuple[SizePlan, Any]] = {}


def _shape(cfg: RunConfig, family: Family, data) -> tuple[SizePlan, Any]:
    """The sized shape and its meta model, memoised per process for runs sized
    from scratch: a sweep's runs that differ only in lr, seed or budget share
    one shape, and sizing it (meta models of candidate widths) is most of a check."""
    key = None
    if not cfg.init_from:
        arch = dict(cfg.arch_overrides(), **family.data_arch(data))
        # runs from --init-from are not memoised: their shape is the checkpoint's,
        # which this key would not capture
        key = (cfg.model, cfg.params, cfg.final_sparsity, cfg.pattern, tuple(sorted(arch.items())))
        if key in _SHAPE_MEMO:
            return _SHAPE_MEMO[key]
    size = _size(cfg, family, data)
    out = (size, build_model(cfg.model, size.model_config, device="meta"))
    if key is not None:
        _SHAPE_MEMO[key] = out
    return out


def _size(cfg: RunConfig, family: Family, data) -> SizePlan:
    """The model's shape: sized for N, or the --init-from checkpoint's own shape."""
    arch = {k: v for k, v in cfg.arch_overrides().items() if v is not None}
    arch.update(family.data_arch(data))
    if not cfg.init_from:
        return plan_size(cfg.model, cfg.params, cfg.final_sparsity, cfg.pattern, arch)
    model_config = model_config_from_checkpoint(cfg, load_init_checkpoint(cfg.init_from))
    context = getattr(model_config, "seq_len", None)
    if context is not None and context < cfg.resolved("seq_len"):
        raise SparsescaleError(
            f"--seq-len {cfg.resolved('seq_len')} exceeds the --init-from model's context {context}"
        )
    return measure(cfg.model, model_config, cfg.params, cfg.final_sparsity, cfg.pattern)


def _check_pattern(cfg: RunConfig, meta_model) -> None:
    from sparsescale.sparsity.masks import (
        check_nm_shape,
        check_transposable_shape,
        is_transposable,
        parse_pattern,
    )
    from sparsescale.sparsity.pruner import select_prunable

    n, m = parse_pattern(cfg.pattern)
    check = check_transposable_shape if is_transposable(cfg.pattern) else check_nm_shape
    for name, p in select_prunable(meta_model).items():
        try:
            check(name, tuple(p.shape), n, m)
        except SparsescaleError as exc:
            raise SparsescaleError(
                f"--pattern {cfg.pattern}: m={m} does not divide the width ({exc})"
            ) from None


def _steps(
    cfg: RunConfig, family: Family, batch: int, seq_len: int | None, capacity: int, data
) -> tuple[int, int]:
    """(steps of the budget, dense steps skipped first), checked against the
    data available: the skipped data counts too, since it is never repeated."""
    # The data-skip arithmetic of a from-dense run. One step consumes
    # u = batch * tokens_per_example units of the budget (batch * seq_len tokens
    # for text, batch examples for images), and a budget D trains floor(D / u)
    # steps. The dense run of D0 = dense_tokens units trained floor(D0 / u)
    # steps of the same seeded order (same seed, batch and seq_len), so the
    # pruned continuation skips exactly those: dense_steps = floor(D0 / u), and
    # its first batch is the one the dense run would have read next. A sweep
    # gives the continuation the budget D - D0, so the two phases together read
    # floor(D0 / u) + floor((D - D0) / u) <= floor(D / u) batches, each once.
    # With a steps budget dense_tokens is already a number of steps.
    # tokens_per_example: the budget units one example consumes (seq_len tokens
    # for a text window, 1 for an image), so batch * per_example is u above
    per_example = family.tokens_per_example(seq_len)
    if cfg.steps is not None:
        steps, skip = cfg.steps, cfg.dense_tokens
    else:
        requested = getattr(cfg, family.data_unit)
        steps = requested // (batch * per_example)
        # the dense run that read the skipped data rounded its budget to whole batches the same way
        skip = cfg.dense_tokens // (batch * per_example)
        if steps < 1:
            raise SparsescaleError(
                f"--{cfg.budget_axis} {requested} is less than one batch "
                f"({batch * per_example}); ask for more or lower --batch"
            )
    # data is never repeated: the dense steps and the run's own must fit in the corpus's examples
    if (steps + skip) * batch > capacity:
        after = (
            f" after the {skip * batch * per_example} trained dense first (--dense-tokens)"
            if skip
            else ""
        )
        raise SparsescaleError(
            f"--{cfg.budget_axis}: the run needs {steps * batch * per_example} training "
            f"{family.data_unit}{after} but "
            f"the corpus ({getattr(data, 'source', cfg.corpus)}) holds {capacity * per_example}; "
            "data is never repeated: ask for less or point --corpus at a larger one"
        )
    return steps, skip


def plan_run(cfg: RunConfig) -> tuple[RunPlan, Any]:
    """The run's plan and its data handle; raises SparsescaleError for an impossible run."""
    from sparsescale.sparsity.pruner import select_prunable
    from sparsescale.sparsity.schedules import mean_density

    family = get_family(cfg.model)
    capacity, data = data_for(cfg)
    size, meta_model = _shape(cfg, family, data)
    if cfg.pattern is not None:
        _check_pattern(cfg, meta_model)
    batch = cfg.resolved("batch")
    # seq_len only for text: an image family has no context length, and its
    # budget and FLOPs count examples
    seq_len = cfg.resolved("seq_len") if family.data_unit == "tokens" else None
    steps, dense_steps = _steps(cfg, family, batch, seq_len, capacity, data)
    # steps x batch examples, and for text examples x seq_len tokens: a tokens
    # budget is met to within one batch, rounded down, never exceeded
    examples = steps * batch
    # About 200 mask updates per run (each recomputes a top-k of every pruned
    # tensor), at least every step and at most every 100 steps.
    prune_every = cfg.prune_every or min(100, max(1, steps // 200))
    density = (
        mean_density(
            "cubic",
            size.sparsity,
            steps,
            start=cfg.prune_start,
            end=cfg.prune_end,
            every=prune_every,
        )
        if size.sparsity > 0
        else 1.0
    )
    # The law's compute, counted as the paper does: only the pruned block
    # linears, C = 6 N D. One multiply-add is 2 FLOPs and training makes three
    # passes of the same products (forward; backward to the activations;
    # backward to the weights), so 6 FLOPs per dense weight per example-use:
    #     train_flops_dense  = 6 * block MACs per example * examples
    #     train_flops_sparse = train_flops_dense * mean density over training,
    # the density 1 - S(t) of the cubic schedule averaged over the steps as it
    # is applied (dense before the window, S from its end). The head and
    # attention's T x T products are left out here (throughput.py counts them
    # for MFU).
    macs = family.block_macs(select_prunable(meta_model), size.model_config, seq_len)
    flops_dense = 6.0 * macs * examples  # forward + backward: 3 passes of 2 FLOPs per multiply-add
    plan = RunPlan(
        size=size,
        steps=steps,
        batch=batch,
        seq_len=seq_len,
        examples=examples,
        tokens=examples * seq_len if seq_len is not None else None,
        block_macs_per_example=macs,
        mean_density=density,
        prune_every=prune_every,
        train_flops_dense=flops_dense,
        train_flops_sparse=flops_dense * density,
        dense_steps=dense_steps,
    )
    return plan, data


def memory_floor(summary: dict[str, Any], optimizer: str) -> tuple[float, str]:
    """(bytes, what they count) for a plan's `summary()`: the least memory the
    run holds while it trains, its float32 parameters and their gradients
    (4 + 4 bytes each), the optimizer's state (AdamW: two moments, 8 bytes;
    Adafactor as configured here: its unfactored second moment, 4 bytes) and a
    bool mask per pruned weight (1 byte). Activations, the corpus and the
    checkpoint copy come on top, so a run refused on this floor cannot fit."""
    opt = 8 if optimizer == "adamw" else 4
    p = summary["total_params"]
    return (
        p * (8.0 + opt) + summary["n_block_params"],
        f"{p:.3g} parameters x {8 + opt} bytes of weights, gradients and {optimizer} state, plus "
        "masks",
    )


def check_memory(summary: dict[str, Any], cfg: RunConfig | dict, what: str) -> None:
    """Refuse, naming `what`, a run whose memory floor exceeds what its device
    (cfg's device; auto counts as CUDA where there is one) has free."""
    from sparsescale.resources import check_fits

    get = cfg.get if isinstance(cfg, dict) else (lambda k, d=None: getattr(cfg, k, d))
    need, detail = memory_floor(summary, get("optimizer", "adafactor") or "adafactor")
    check_fits(need, what, "cuda" if get("device", "cpu") in ("cuda", "auto") else "cpu", detail)


def check_config(cfg: RunConfig | dict) -> dict[str, Any]:
    """Validate a run without training and return its planned sizes: n_nonzero,
    width, total_params, embedding_params, steps, tokens (text) and examples,
    train_flops_dense, train_flops_sparse. Raises SparsescaleError for an
    impossible run (bad S, N below the family minimum, unknown family, n:m that
    does not divide the width, more data than the corpus holds, no corpus)."""
    plan, _ = plan_run(as_config(cfg))
    return plan.summary()
