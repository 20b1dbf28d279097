"""RunConfig: everything that defines one training run (torch-free).

Loadable from a TOML file and overridable by CLI flags (`load_config`).
Counts accept ints or strings such as "200k", "1.5M", "2e6". Invalid values
raise SparsescaleError with a one-line message that names the field.

Settings left at None take the family's default (`resolved`), chosen for CPU
throughput of small models; see benchmarks/train_bench.py for the figures.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator, model_validator

from sparsescale.errors import SparsescaleError
from sparsescale.units import parse_count, parse_pattern


# Per-family defaults for fields left at None.
FAMILY_DEFAULTS: dict[str, dict[str, Any]] = {
    "gpt": {"batch": 32, "seq_len": 64},  # 32 x 64: same tokens/s as 64 x 64 on CPU, twice the steps, lower loss per token
    "t5": {"batch": 32, "seq_len": 64},
    "vit": {"batch": 128, "seq_len": None},
}
DEFAULT_LR = {"adafactor": 0.02, "adamw": 3e-3}


def _one_line(exc: ValidationError) -> str:
    err = exc.errors()[0]
    field = ".".join(str(p) for p in err.get("loc", ())) or "config"
    msg = err.get("msg", "invalid value")
    for prefix in ("Value error, ", "Assertion failed, "):
        msg = msg.removeprefix(prefix)
    return f"--{field.replace('_', '-')}: {msg}"


class RunConfig(BaseModel):
    """One run: family, target non-zeros N, sparsity S (and n:m pattern), the
    data budget D (exactly one of tokens / examples / steps), seed and the
    training settings. n:m: n weights KEPT in every group of m consecutive
    weights along the input dimension (2:4 keeps 2 of 4)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, protected_namespaces=())

    model: Literal["gpt", "t5", "vit"] = "gpt"
    params: int
    sparsity: float | None = None           # None: 0, or 1 - n/m with a pattern
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
    warmup: float = 0.05                    # fraction of steps
    threads: int | None = None
    corpus: str | None = None
    tokenizer: Literal["byte", "bpe"] = "byte"
    vocab_size: int = 4096                  # BPE only
    init_from: str | None = None
    eval_every: int = 0                     # 0: about 8 curve points
    eval_tokens: int = 32768                # validation tokens (text)
    final_eval_tokens: int = 0              # the last point's validation tokens (text); 0: eval_tokens
    eval_examples: int = 2000               # validation examples (images)
    ckpt_every: int = 0                     # 0: about 10 checkpoints per run
    prune_every: int | None = None          # None: steps // 200, within [1, 100]
    prune_start: float = 0.25
    prune_end: float = 0.75
    device: Literal["cpu", "cuda", "auto"] = "cpu"
    compile: bool = False
    # Shape overrides (None: the family default in models/sizing.py)
    depth: int | None = None
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

    @field_validator("params", "tokens", "examples", "steps", mode="before")
    @classmethod
    def _count(cls, value: Any, info) -> int | None:
        return None if value is None else parse_count(value, f"--{info.field_name}")

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
            nm = parse_pattern(str(value), "--pattern")
        except SparsescaleError as exc:
            raise ValueError(str(exc).removeprefix("--pattern: ")) from None
        return None if nm is None else f"{nm[0]}:{nm[1]}"

    @field_validator("batch", "seq_len", "threads", "depth", "head_dim", "prune_every")
    @classmethod
    def _positive(cls, value: int | None) -> int | None:
        if value is not None and value < 1:
            raise ValueError(f"must be >= 1, got {value}")
        return value

    @field_validator("eval_every", "ckpt_every", "eval_tokens", "final_eval_tokens", "eval_examples", "seed")
    @classmethod
    def _non_negative(cls, value: int) -> int:
        if value < 0:
            raise ValueError(f"must be >= 0, got {value}")
        return value

    @field_validator("lr")
    @classmethod
    def _lr(cls, value: float | None) -> float | None:
        if value is not None and not value > 0:
            raise ValueError(f"must be > 0, got {value}")
        return value

    @field_validator("warmup")
    @classmethod
    def _warmup(cls, value: float) -> float:
        if not 0.0 <= value < 1.0:
            raise ValueError(f"is a fraction of the steps in [0, 1), got {value}")
        return value

    @model_validator(mode="after")
    def _budget_and_ramp(self) -> "RunConfig":
        given = [k for k in ("tokens", "examples", "steps") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(
                "give exactly one data budget: --tokens, --examples or --steps"
                + (f" (got {', '.join('--' + g for g in given)})" if given else "")
            )
        if self.model == "vit" and self.tokens is not None:
            raise ValueError("a vit run counts data in --examples (or --steps), not --tokens")
        if self.model != "vit" and self.examples is not None:
            raise ValueError(f"a {self.model} run counts data in --tokens (or --steps), not --examples")
        if not 0.0 <= self.prune_start < self.prune_end <= 1.0:
            raise ValueError(f"need 0 <= prune_start < prune_end <= 1, got {self.prune_start}, {self.prune_end}")
        if self.pattern is not None and self.sparsity is not None:
            n, m = (int(x) for x in self.pattern.split(":"))
            if self.sparsity < 1 - n / m - 1e-12:
                raise ValueError(f"sparsity {self.sparsity} is below {1 - n / m:g}, the least pattern {self.pattern} gives")
        return self

    # ---- resolved values ---------------------------------------------------
    @property
    def final_sparsity(self) -> float:
        """S: the given sparsity, else 1 - n/m for a pattern, else 0."""
        if self.sparsity is not None:
            return self.sparsity
        if self.pattern is not None:
            n, m = (int(x) for x in self.pattern.split(":"))
            return 1.0 - n / m
        return 0.0

    @property
    def budget_axis(self) -> str:
        return next(k for k in ("tokens", "examples", "steps") if getattr(self, k) is not None)

    def resolved(self, field: str) -> Any:
        """A field's value with family / optimizer defaults filled in."""
        value = getattr(self, field)
        if value is not None:
            return value
        if field == "lr":
            return DEFAULT_LR[self.optimizer]
        return FAMILY_DEFAULTS[self.model].get(field)

    def arch_overrides(self) -> dict[str, Any]:
        """Shape settings for models/sizing.py (only those that apply)."""
        arch: dict[str, Any] = {"head_dim": self.head_dim}
        if self.model == "t5":
            arch.update(enc_depth=self.depth, dec_depth=self.depth)
        else:
            arch["depth"] = self.depth
        if self.model == "gpt":
            arch.update(mlp=self.mlp, pos=self.pos, seq_len=self.resolved("seq_len"))
        return {k: v for k, v in arch.items() if v is not None}


def load_config(path: str | Path | None = None, **overrides: Any) -> RunConfig:
    """A RunConfig from a TOML file (its top level, or a [train] table) with
    `overrides` (CLI flags; None means "not given") applied on top."""
    data: dict[str, Any] = {}
    if path is not None:
        p = Path(path)
        try:
            raw = tomllib.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise SparsescaleError(f"--config {p}: no such file") from None
        except tomllib.TOMLDecodeError as exc:
            raise SparsescaleError(f"--config {p}: not valid TOML ({exc})") from None
        data = dict(raw.get("train", raw))
        try:
            return _merge(data, overrides)
        except SparsescaleError as exc:
            raise SparsescaleError(f"--config {p}: {exc}") from None
    return _merge(data, overrides)


def _merge(data: dict[str, Any], overrides: dict[str, Any]) -> RunConfig:
    given = {k: v for k, v in overrides.items() if v is not None}
    # A budget flag replaces the file's budget rather than adding a second one.
    if any(k in given for k in ("tokens", "examples", "steps")):
        for k in ("tokens", "examples", "steps"):
            data.pop(k, None)
    data.update(given)
    if "params" not in data:
        raise SparsescaleError("--params: required (target number of non-zero parameters, e.g. 200k)")
    return RunConfig(**data)
