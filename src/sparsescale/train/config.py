"""RunConfig: everything that defines one training run (torch-free).

Loadable from a TOML file and overridable by CLI flags (`load_config`).
Counts accept ints or strings such as "200k", "1.5M", "2e6". Invalid values
raise SparsescaleError with a one-line message that names the field.

Settings left at None take the family's default (`resolved`), chosen for CPU
throughput of small models; see benchmarks/train_bench.py for the figures.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator, model_validator

from sparsescale.errors import SparsescaleError
from sparsescale.models.registry import BUDGET_AXES, get_family
from sparsescale.units import parse_count, parse_count_or_zero, parse_pattern, pattern_name
from sparsescale.userfile import read_text

MAX_COUNT = 10**15  # parameters, tokens, examples or steps: far beyond any run
DEFAULT_LR = {"adafactor": 0.02, "adamw": 3e-3}
# Fields that change how fast or where a run executes, never what it computes.
# Everything else is the run's identity: the sweep's config hash and the
# checkpoint/result check both use `identity_of`, so the two always agree.
# semi_structured changes only which kernel multiplies the same masked weights
# (equal up to bf16 rounding, like compile), so it is not part of a run's identity.
# precision is in the same class: fp32 on a GPU reproduces a CPU run up to
# kernel rounding, and bf16 autocast differs from it by bf16 rounding only.
# micro_batch and activation_checkpointing are in the same class: gradient
# accumulation over equal micro-batches sums the same per-example gradients
# (equal to fp32 rounding, tests/train/test_scale.py), and recomputing a
# block's activations in the backward pass recomputes the same numbers.
EXECUTION_FIELDS = frozenset(
    {
        "threads",
        "ckpt_every",
        "device",
        "compile",
        "semi_structured",
        "precision",
        "micro_batch",
        "activation_checkpointing",
    }
)
# Identity fields added after runs were recorded: at these values they change
# nothing (no clipping, AdamW's betas as they were hard-wired, no decay, no
# momentum, unfactored), so they are left out of the identity and every
# earlier run, checkpoint and sweep hash keeps its identity.
# (Keyed by identity names: see IDENTITY_NAMES.)
NEUTRAL: dict[str, tuple[Any, ...]] = {
    "data_skip": (0,),
    "grad_clip": (None,),
    "betas": (None, (0.9, 0.95)),
    "weight_decay": (0.0,),
    "beta1": (None,),
    "factored": (False,),
    "text_column": ("text",),
}
ADAMW_BETAS = (0.9, 0.95)
# Fields renamed after runs were hashed, by their name in the identity. The
# identity keeps the old name, so every earlier sweep hash, checkpoint and
# result.json still matches: dense_tokens was data_skip.
IDENTITY_NAMES = {"dense_tokens": "data_skip"}
# Old spellings a config (TOML, a stored sweep run's config, a result's
# config) may still use; RunConfig reads them as the new field.
OLD_FIELD_NAMES = {"data_skip": "dense_tokens"}


# Help for each field: `sparsescale train --help` shows these (cli/train.py
# generates one flag per field, so a field without an entry still gets a flag).
FIELD_HELP: dict[str, str] = {
    "model": "Family: gpt, t5, vit or package.module:attribute [default: gpt].",
    "params": "Target NON-ZERO block parameters N, e.g. 200k.",
    "sparsity": "Final sparsity S in [0, 1) [default: 0, or 1-n/m].",
    "pattern": "n:m, n kept in every m along the input dim (2:4); n:mT also along the output dim "
    "(2:4T).",
    "tokens": "Data budget in tokens (text families), e.g. 2M.",
    "examples": "Data budget in examples (vit).",
    "steps": "Data budget in steps.",
    "seed": "Seed of init and data order [default: 0].",
    "batch": "Global batch size (sequences or images) [family default].",
    "seq_len": "Sequence length (text) [family default].",
    "lr": "Peak learning rate [default: 0.02 adafactor, 3e-3 adamw].",
    "optimizer": "adafactor (sparsity-aware) or adamw [default: adafactor].",
    "lr_schedule": "cosine (to 10%), rsqrt or constant, after warmup [default: cosine].",
    "warmup": "Warmup as a fraction of the steps [default: 0.05].",
    "threads": "torch CPU threads.",
    "corpus": "Folder/file of text (or images for vit) [default: the installed corpus].",
    "tokenizer": "byte, bpe, or a tokenizer.json path [default: byte].",
    "vocab_size": "BPE vocabulary size [default: 4096].",
    "text_column": "The text field of JSONL / column of Parquet files [default: text].",
    "init_from": "Checkpoint whose weights the run starts from, e.g. a dense run's to prune (its "
    "width is kept).",
    "dense_tokens": "Data the --init-from dense run trained on (in the budget's unit): skipped at "
    "the start of the "
    "seeded order, so no example is read twice [default: 0].",
    "eval_every": "Steps between validation points [default: about 8 per run].",
    "eval_tokens": "Validation tokens (text) [default: 32768].",
    "final_eval_tokens": "Validation tokens of the final point, which a law is fitted to (text) "
    "[default: eval_tokens].",
    "eval_examples": "Validation examples (vit) [default: 2000].",
    "ckpt_every": "Steps between checkpoints [default: about 10 per run].",
    "prune_every": "Steps between mask updates [default: steps/200 within 1..100].",
    "prune_start": "Pruning starts at this fraction of the steps [default: 0.25].",
    "prune_end": "Pruning ends (S reached) at this fraction of the steps [default: 0.75].",
    "device": "cpu, cuda or auto [default: cpu].",
    "compile": "torch.compile (CUDA only).",
    "precision": "auto (bf16 autocast on CUDA, fp32 on CPU), fp32 or bf16 [default: auto].",
    "semi_structured": "2:4 or 2:4T runs on CUDA: once the masks are final, pruned linears use "
    "semi-structured sparse kernels (2:4T: input gradient too).",
    "micro_batch": "Sequences (or images) per forward pass on each process: gradient accumulation "
    "over batch/micro_batch passes [default: the whole batch].",
    "grad_clip": "Clip the global gradient norm to this value before each update [default: no "
    "clipping].",
    "activation_checkpointing": "Recompute each block's activations in the backward pass (less "
    "memory, ~1/3 more compute).",
    "betas": "AdamW betas as b1,b2 [default: 0.9,0.95].",
    "weight_decay": "Decoupled weight decay (adamw or adafactor) [default: 0].",
    "beta1": "Adafactor momentum on the clipped update [default: none, as in the paper].",
    "factored": "Adafactor: factored second moment (row and column means) for matrices.",
    "depth": "Blocks (per stack for t5), or auto: grows with N at width/depth 64 [family default].",
    "head_dim": "Attention head width [family default].",
    "mlp": "gelu or geglu (gpt) [default: gelu].",
    "pos": "learned or rope positions (gpt) [default: learned].",
}


def identity_of(fields: dict[str, Any]) -> dict[str, Any]:
    """The identity part of RunConfig keyword fields (a full dump or a sweep's partial dict).
    Fields at a NEUTRAL value are left out so that runs and checkpoints from before
    they existed keep their identity; renamed fields keep their old name
    (IDENTITY_NAMES), so the identity of every earlier run is computed as it was."""
    # renamed first: NEUTRAL is keyed by identity names, so dense_tokens=0 is
    # recognised as data_skip=0 and left out, as it was before the rename
    named = {IDENTITY_NAMES.get(k, k): v for k, v in fields.items()}
    # tuples as lists: the identity is compared with the one read back from JSON
    return {
        k: list(v) if isinstance(v, tuple) else v
        for k, v in sorted(named.items())
        if k not in EXECUTION_FIELDS and not _neutral(k, v)
    }


def _neutral(key: str, value: Any) -> bool:
    if key not in NEUTRAL:
        return False
    value = tuple(value) if isinstance(value, list) else value  # a spec's TOML list, a dump's tuple
    return any(value == v for v in NEUTRAL[key])


def _one_line(exc: ValidationError) -> str:
    err = exc.errors()[0]
    msg = err.get("msg", "invalid value")
    for prefix in ("Value error, ", "Assertion failed, "):
        msg = msg.removeprefix(prefix)
    fields = [".".join(str(p) for p in err.get("loc", ()))]
    # a check across fields: name the ones its message is about, unless it names its flags
    if not fields[0]:
        if "--" in msg:
            return msg
        fields = [f for f in RunConfig.model_fields if re.search(rf"\b{f}\b", msg)] or ["config"]
    return ", ".join(f"--{f.replace('_', '-')}" for f in fields) + f": {msg}"


class RunConfig(BaseModel):
    """One run: family, target non-zeros N, sparsity S (and n:m pattern), the
    data budget D (exactly one of tokens / examples / steps), seed and the
    training settings. n:m: n weights KEPT in every group of m consecutive
    weights along the input dimension (2:4 keeps 2 of 4)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, protected_namespaces=())

    model: str = "gpt"  # a family: gpt, t5, vit or "package.module:attribute"
    params: int
    sparsity: float | None = None  # None: 0, or 1 - n/m with a pattern
    pattern: str | None = None
    tokens: int | None = None
    examples: int | None = None
    steps: int | None = None
    seed: int = 0
    batch: int | None = None
    seq_len: int | None = None
    lr: float | None = None
    optimizer: Literal["adafactor", "adamw"] = "adafactor"
    lr_schedule: Literal["cosine", "rsqrt", "constant"] = "cosine"
    warmup: float = 0.05  # fraction of steps
    threads: int | None = None
    corpus: str | None = None
    tokenizer: str = "byte"  # byte | bpe | PATH/tokenizer.json (data/tokenizer.py)
    vocab_size: int = 4096  # BPE only
    text_column: str = "text"  # JSONL field / Parquet column holding the text
    # A checkpoint (path or storage URI) whose weights replace the seeded init;
    # in a sweep "@<hash>", the final checkpoint of the sweep's run of that hash.
    init_from: str | None = None
    # From dense: the data the --init-from dense run trained on, in the budget's
    # unit (tokens; examples for image families; steps with a steps budget).
    # The pruned continuation (same seed) skips it: the seeded order is the
    # same, so without the skip the sparse phase would train on the dense
    # phase's data a second time. (Old name: data_skip.)
    dense_tokens: int = 0
    eval_every: int = 0  # 0: about 8 curve points
    eval_tokens: int = 32768  # validation tokens (text)
    final_eval_tokens: int = 0  # the last point's validation tokens (text); 0: eval_tokens
    eval_examples: int = 2000  # validation examples (images)
    ckpt_every: int = 0  # 0: about 10 checkpoints per run
    prune_every: int | None = None  # None: steps // 200, within [1, 100]
    prune_start: float = 0.25
    prune_end: float = 0.75
    device: Literal["cpu", "cuda", "auto"] = "cpu"
    compile: bool = False
    precision: Literal["auto", "fp32", "bf16"] = "auto"
    semi_structured: bool = False  # 2:4 on CUDA: sparse kernels once masks are final
    # Training at scale (docs/gpu.md)
    micro_batch: int | None = (
        None  # per process and forward pass; None: the whole per-process batch
    )
    grad_clip: float | None = None  # global L2 norm of the dense gradients; None: no clipping
    activation_checkpointing: bool = False
    betas: tuple[float, float] | None = None  # adamw; None: ADAMW_BETAS
    weight_decay: float = 0.0  # decoupled, either optimizer
    beta1: float | None = None  # adafactor momentum; None: none (the paper)
    factored: bool = False  # adafactor second moment
    # Shape overrides (None: the family default in models/registry.py)
    depth: int | Literal["auto"] | None = None  # "auto": grows with N (models/sizing.py auto_depth)
    head_dim: int | None = None
    mlp: Literal["gelu", "geglu"] | None = None
    pos: Literal["learned", "rope"] | None = None

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise SparsescaleError(_one_line(exc)) from None

    @classmethod
    def model_validate(cls, obj: Any, *args: Any, **kwargs: Any) -> "RunConfig":
        try:
            return super().model_validate(obj, *args, **kwargs)
        except ValidationError as exc:
            raise SparsescaleError(_one_line(exc)) from None

    @model_validator(mode="before")
    @classmethod
    def _old_names(cls, data: Any) -> Any:
        """Read the old spelling of a renamed field (OLD_FIELD_NAMES) as the new one."""
        if isinstance(data, dict) and any(old in data for old in OLD_FIELD_NAMES):
            data = dict(data)
            for old, new in OLD_FIELD_NAMES.items():
                if old in data:
                    if new in data:
                        raise ValueError(f"give {new} or {old} (its old name), not both")
                    data[new] = data.pop(old)
        return data

    @field_validator("model")
    @classmethod
    def _family(cls, value: str) -> str:
        try:
            get_family(value)
        except SparsescaleError as exc:
            raise ValueError(str(exc)) from None
        return value

    @field_validator("params", "tokens", "examples", "steps", "dense_tokens", mode="before")
    @classmethod
    def _count(cls, value: Any, info) -> int | None:
        if value is None:
            return None
        parse = (
            parse_count_or_zero if info.field_name == "dense_tokens" else parse_count
        )  # 0: from scratch
        count = parse(value, f"--{info.field_name.replace('_', '-')}")
        if count > MAX_COUNT:  # 1e300 parameters would reach torch as an overflowing size
            raise ValueError(f"{value} is beyond any trainable size (at most {MAX_COUNT:.0e})")
        return count

    @field_validator("tokenizer")
    @classmethod
    def _tokenizer(cls, value: str) -> str:
        from sparsescale.data.tokenizer import check_setting  # numpy only, no torch

        return check_setting(value)

    @field_validator("text_column")
    @classmethod
    def _text_column(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must name a field/column, got an empty string")
        return value

    @field_validator("sparsity")
    @classmethod
    def _sparsity(cls, value: float | None) -> float | None:
        if value is not None and not 0.0 <= value < 1.0:
            raise ValueError(f"sparsity must be in [0, 1), got {value}")
        return value

    @field_validator("pattern", mode="before")
    @classmethod
    def _pattern(cls, value: Any) -> str | None:
        if value is None or str(value).strip() == "":
            return None
        try:
            return pattern_name(str(value), "--pattern")
        except SparsescaleError as exc:
            raise ValueError(str(exc).removeprefix("--pattern: ")) from None

    @field_validator("depth", mode="before")
    @classmethod
    def _depth(cls, value: Any) -> Any:
        # a flag arrives as a string: "auto", or a number of blocks
        if isinstance(value, str) and value.strip() != "auto":
            try:
                return int(value)
            except ValueError:
                raise ValueError(f'expected a number of blocks or "auto", got {value!r}') from None
        return value.strip() if isinstance(value, str) else value

    @field_validator("betas", mode="before")
    @classmethod
    def _betas_text(cls, value: Any) -> Any:
        if isinstance(value, str):  # the CLI's --betas 0.9,0.95
            parts = [p.strip() for p in value.replace(" ", ",").split(",") if p.strip()]
            try:
                return tuple(float(p) for p in parts)
            except ValueError:
                raise ValueError(
                    f"expected two numbers b1,b2 such as 0.9,0.95, got {value!r}"
                ) from None
        return value

    @field_validator("betas")
    @classmethod
    def _betas(cls, value: tuple[float, float] | None) -> tuple[float, float] | None:
        if value is not None and not all(0.0 <= b < 1.0 for b in value):
            raise ValueError(f"each beta must be in [0, 1), got {value[0]:g},{value[1]:g}")
        return value

    @field_validator("beta1")
    @classmethod
    def _beta1(cls, value: float | None) -> float | None:
        if value is not None and not 0.0 <= value < 1.0:
            raise ValueError(f"must be in [0, 1), got {value}")
        return value

    @field_validator("grad_clip")
    @classmethod
    def _grad_clip(cls, value: float | None) -> float | None:
        if value is not None and not (value > 0 and value != float("inf")):
            raise ValueError(f"must be a finite norm > 0, got {value}")
        return value

    @field_validator("weight_decay")
    @classmethod
    def _weight_decay(cls, value: float) -> float:
        if not (0.0 <= value < float("inf")):
            raise ValueError(f"must be a finite number >= 0, got {value}")
        return value

    @field_validator(
        "batch", "seq_len", "threads", "depth", "head_dim", "prune_every", "micro_batch"
    )
    @classmethod
    def _positive(cls, value: int | str | None, info) -> int | str | None:
        if value == "auto":
            return value
        if value is not None and value < 1:
            raise ValueError(f"must be >= 1, got {value}")
        # beyond these a value only overflows inside torch (a C long), never trains
        limit = 1024 if info.field_name == "threads" else 10**9
        if value is not None and value > limit:
            raise ValueError(f"must be at most {limit:,}, got {value}")
        return value

    @field_validator("eval_every", "ckpt_every", "final_eval_tokens", "seed")
    @classmethod
    def _non_negative(cls, value: int, info) -> int:
        if value < 0:
            raise ValueError(f"must be >= 0, got {value}")
        if info.field_name == "seed" and value >= 2**63:  # torch seeds are 64-bit
            raise ValueError(f"must be below 2**63, got {value}")
        return value

    @field_validator("eval_tokens", "eval_examples")
    @classmethod
    def _eval_size(cls, value: int) -> int:
        # 0 used to evaluate one batch anyway: a loss on data nobody asked for.
        if value < 1:
            raise ValueError(f"must be >= 1 (the validation loss needs data), got {value}")
        return value

    @field_validator("lr")
    @classmethod
    def _lr(cls, value: float | None) -> float | None:
        if value is not None and not (value > 0 and value != float("inf")):
            raise ValueError(f"must be a finite number > 0, got {value}")
        return value

    @field_validator("warmup")
    @classmethod
    def _warmup(cls, value: float) -> float:
        if not 0.0 <= value < 1.0:
            raise ValueError(f"is a fraction of the steps in [0, 1), got {value}")
        return value

    @model_validator(mode="after")
    def _budget_and_ramp(self) -> "RunConfig":
        given = [k for k in BUDGET_AXES if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(
                "give exactly one data budget: --tokens, --examples or --steps"
                + (f" (got {', '.join('--' + g for g in given)})" if given else "")
            )
        unit = get_family(self.model).data_unit
        if given[0] not in (unit, "steps"):
            raise ValueError(
                f"a {self.model} run counts data in --{unit} (or --steps), not --{given[0]}"
            )
        if not 0.0 <= self.prune_start < self.prune_end <= 1.0:
            raise ValueError(
                f"need 0 <= prune_start < prune_end <= 1, got {self.prune_start}, {self.prune_end}"
            )
        if self.optimizer == "adafactor" and self.betas is not None:
            raise ValueError(
                "--betas: only for --optimizer adamw (adafactor's momentum is --beta1)"
            )
        if self.optimizer == "adamw" and (self.beta1 is not None or self.factored):
            raise ValueError(
                f"--{'beta1' if self.beta1 is not None else 'factored'}: only for --optimizer "
                "adafactor "
                "(adamw takes --betas)"
            )
        # Gradient accumulation needs equal micro-batches: with unequal ones the
        # mean of micro-batch means is not the batch mean (run.py's derivation).
        batch = self.resolved("batch")
        if self.micro_batch is not None and batch is not None and batch % self.micro_batch:
            raise ValueError(f"--micro-batch: {self.micro_batch} does not divide the batch {batch}")
        # n:m keeps n of every m weights, so its sparsity is at least 1 - n/m; a
        # higher S prunes further within the pattern, a lower one is impossible.
        if self.pattern is not None and self.sparsity is not None:
            n, m = parse_pattern(self.pattern)
            if self.sparsity < 1 - n / m - 1e-12:
                raise ValueError(
                    f"sparsity {self.sparsity} is below {1 - n / m:g}, the least pattern "
                    f"{self.pattern} gives"
                )
        return self

    def identity(self) -> dict[str, Any]:
        """What decides the run's result: two configs with equal identities are the same run."""
        return identity_of(self.model_dump())

    # ---- resolved values ---------------------------------------------------
    @property
    def final_sparsity(self) -> float:
        """S: the given sparsity, else 1 - n/m for a pattern, else 0."""
        if self.sparsity is not None:
            return self.sparsity
        if self.pattern is not None:
            n, m = parse_pattern(self.pattern)
            # a pattern alone fixes S = 1 - n/m: 2:4 without --sparsity is 50%
            return 1.0 - n / m
        return 0.0

    @property
    def budget_axis(self) -> str:
        # _budget_and_ramp has checked that exactly one budget is set: next() finds it
        return next(k for k in BUDGET_AXES if getattr(self, k) is not None)

    def resolved(self, field: str) -> Any:
        """A field's value with family / optimizer defaults filled in."""
        value = getattr(self, field)
        if value is not None:
            return value
        # lr is the one default keyed by the optimizer (DEFAULT_LR), not the family:
        # Adafactor and AdamW want step sizes almost an order of magnitude apart
        if field == "lr":
            return DEFAULT_LR[self.optimizer]
        return get_family(self.model).defaults.get(field)

    def arch_overrides(self) -> dict[str, Any]:
        """Shape settings as the family's config fields (models/registry.py), None dropped."""
        arch = get_family(self.model).arch_from_run(self)
        return {k: v for k, v in arch.items() if v is not None}


def read_toml(path: Path, label: str, noun: str) -> dict[str, Any]:
    """Read a UTF-8 TOML file; every failure is one line starting with `label`
    (a run config and a sweep spec share this, so their errors read alike)."""
    try:
        return tomllib.loads(read_text(path, noun, label))
    except tomllib.TOMLDecodeError as exc:
        raise SparsescaleError(f"{label}: not valid TOML: {exc}") from None


def load_config(path: str | Path | None = None, **overrides: Any) -> RunConfig:
    """A RunConfig from a TOML file (its top level, or a [train] table) with
    `overrides` (CLI flags; None means "not given") applied on top."""
    data: dict[str, Any] = {}
    if path is not None:
        p = Path(path)
        raw = read_toml(p, f"--config {p}", "file")
        data = dict(raw.get("train", raw))
        try:
            return _merge(data, overrides)
        except SparsescaleError as exc:
            raise SparsescaleError(f"--config {p}: {exc}") from None
    return _merge(data, overrides)


def _merge(data: dict[str, Any], overrides: dict[str, Any]) -> RunConfig:
    given = {k: v for k, v in overrides.items() if v is not None}
    # A budget flag replaces the file's budget rather than adding a second one.
    if any(k in given for k in BUDGET_AXES):
        for k in BUDGET_AXES:
            data.pop(k, None)
    data.update(given)
    if "params" not in data:
        raise SparsescaleError(
            "--params: required (target number of non-zero parameters, e.g. 200k)"
        )
    return RunConfig(**data)
