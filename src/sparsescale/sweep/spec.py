"""The sweep spec: a TOML file naming a model family, a corpus and the grids of
sparsity S, non-zero size N and data budget D that one experiment trains.

    name = "quick"
    family = "gpt"                  # gpt | t5 | vit | hf-llama | "package.module:attribute"
    corpus = "default"              # optional; a folder of text or "default"
    storage = "s3://bucket/quick"   # optional; where run folders go (a path every node sees,
                                    # or a URI)

    [grid]
    sparsity = [0.0, 0.5, 0.75]
    n_nonzero = ["50k", "100k", "200k"]
    tokens = ["0.5M", "1M"]         # or `examples = [...]` or `steps = [...]`
    seeds = [0]                     # optional
    patterns = ["unstructured"]     # optional; "n:m" keeps n of every m weights
    dense_tokens = [0, "0.4M"]      # optional; data trained dense first (0: from scratch)
    from_dense = [0.0, 0.25]        # optional, instead: that data as a fraction of D
    lr = [0.01, 0.02, 0.04]         # optional; a learning-rate scan: each lr is its own run

    [train]                         # shared settings for every run
    batch = 16
    lr = 0.01

    [resources]                     # optional; docs/gpu.md
    gpus_per_run = 1                # 0: CPU; 0.5: two runs share a GPU; 4: one DDP run over 4 GPUs

    [[override]]                    # per-axis overrides: match axis values ...
    n_nonzero = "200k"
    set = { lr = 0.005 }            # ... and change these settings

The grid is the cross product of its axes, or, with `points`, only the listed
combinations of them (what `sparsescale next` writes: the runs it proposes are
not a cross product):

    points = [{ sparsity = 0.5, n_nonzero = "100k", tokens = "1M" }, ...]

An n:m pattern fixes the sparsity
to 1 - n/m, so n:m entries are crossed with N, D and seeds only, never with
the `sparsity` list.

From dense (pruning a dense model): `dense_tokens` D0 trains a dense model of
the same width on D0 (in the budget's unit) first and prunes it over the
remaining D - D0; the record's budget D is the total. Every budget D > D0
continues the same dense run (one per width and D0), which is what "I have a
dense model trained on D0" means, and what lets many runs share one dense
run. `from_dense` gives D0 as a fraction f of each budget instead, converted
once, where the grid is expanded, to D0 = round(f * D) (`prefix_of_fraction`).
The pruned phase reads the data after the dense run's (same seed, the run's
`dense_tokens`), so no example is read twice. Older specs' names still read:
`init_from_dense` is `from_dense`, `dense_prefix` is `dense_tokens`; errors
name a key as the spec spells it.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from pydantic import (
    BaseModel,
    ConfigDict,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from sparsescale.errors import SparsescaleError
from sparsescale.models.registry import BUDGET_AXES, get_family
from sparsescale.train.config import identity_of, read_toml
from sparsescale.units import parse_count, parse_count_or_zero, parse_pattern, pattern_name

UNSTRUCTURED = "unstructured"

# RunConfig fields a spec's [train] table may not set: they are grid axes or
# are decided per run by the sweep.
_AXIS_FIELDS = {"model", "params", "sparsity", "pattern", "seed", "init_from", *BUDGET_AXES}
# Grid and override keys renamed since specs were written: old name -> new name.
OLD_GRID_KEYS = {"init_from_dense": "from_dense", "dense_prefix": "dense_tokens"}


def _new_keys(data: Any, where: str) -> tuple[Any, dict[str, str]]:
    """`data` with the old spellings of renamed keys (OLD_GRID_KEYS) read as the
    new ones, and {new name: the name the spec used} for the messages."""
    given = {new: new for new in OLD_GRID_KEYS.values()}
    if not isinstance(data, dict) or not any(old in data for old in OLD_GRID_KEYS):
        return data, given
    data = dict(data)
    for old, new in OLD_GRID_KEYS.items():
        if old in data:
            if new in data:
                raise ValueError(f"give {where}.{new} or {where}.{old} (its old name), not both")
            data[new] = data.pop(old)
            given[new] = old
    return data, given


class Grid(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sparsity: list[float] = [0.0]
    n_nonzero: list[int | str]
    tokens: list[int | str] | None = None
    examples: list[int | str] | None = None
    steps: list[int | str] | None = None
    seeds: list[int] = [0]
    patterns: list[str] = [UNSTRUCTURED]
    from_dense: list[float] = [0.0]  # fractions of D trained dense first
    dense_tokens: list[int | str] | None = None  # or: data trained dense first (0: from scratch)
    # only these (sparsity, n_nonzero, budget) combinations of the axes, if given
    points: list[dict[str, float | int | str]] | None = None
    lr: list[float] | None = None
    _given_as: dict[str, str] = PrivateAttr(
        default_factory=dict
    )  # renamed key -> the spec's spelling

    @model_validator(mode="wrap")
    @classmethod
    def _read_old_keys(cls, data: Any, handler) -> "Grid":
        data, given = _new_keys(data, "grid")
        grid = handler(data)
        grid._given_as = given
        fractions, counts = given["from_dense"], given["dense_tokens"]
        for f in grid.from_dense:
            if not (0.0 <= f < 1.0):
                raise ValueError(f"grid.{fractions}: fraction {f} is outside [0, 1)")
        if not grid.from_dense:
            raise ValueError(f"grid.{fractions} is empty: give at least one value")
        if grid.dense_tokens is not None:
            if not grid.dense_tokens:
                raise ValueError(
                    f"grid.{counts} is empty: give at least one value (0: from scratch)"
                )
            if grid.from_dense != [0.0]:
                raise ValueError(f"give grid.{counts} or grid.{fractions}, not both")
        return grid

    def given_as(self, key: str) -> str:
        """How the spec spelled a renamed key (its old name in an older spec)."""
        return self._given_as.get(key, key)

    @field_validator("lr")
    @classmethod
    def _lrs(cls, values: list[float] | None) -> list[float] | None:
        if values is None:
            return None
        if not values:
            raise ValueError("grid.lr is empty: give at least one learning rate")
        for v in values:
            if not (v > 0 and math.isfinite(v)):
                raise ValueError(f"learning rate {v} must be a finite number > 0")
        if len(set(values)) != len(values):
            raise ValueError("a learning rate is listed twice")
        return sorted(values)

    @field_validator("sparsity")
    @classmethod
    def _sparsity_in_range(cls, values: list[float]) -> list[float]:
        for s in values:
            if not (0.0 <= s < 1.0):
                raise ValueError(f"sparsity {s} is outside [0, 1): S >= 1 leaves no weights")
        return values

    @model_validator(mode="after")
    def _one_budget_axis(self) -> "Grid":
        given = [a for a in BUDGET_AXES if getattr(self, a) is not None]
        if len(given) != 1:
            raise ValueError(
                "give exactly one data budget axis: tokens, examples or steps"
                + (f" (got {', '.join(given)})" if given else "")
            )
        for axis in ("sparsity", "n_nonzero", given[0], "seeds", "patterns"):
            if not getattr(self, axis):
                raise ValueError(f"grid.{axis} is empty: give at least one value")
        return self

    @property
    def budget_axis(self) -> str:
        return next(a for a in BUDGET_AXES if getattr(self, a) is not None)


class Override(BaseModel):
    """Settings for the runs whose axis values match every key given here."""

    model_config = ConfigDict(extra="forbid")

    sparsity: float | None = None
    n_nonzero: int | str | None = None
    tokens: int | str | None = None
    examples: int | str | None = None
    steps: int | str | None = None
    seed: int | None = None
    pattern: str | None = None
    from_dense: float | None = None  # matches the runs whose dense data is this fraction of D
    dense_tokens: int | str | None = None  # matches the runs pruned after this much dense data
    lr: float | None = None
    set: dict[str, Any]

    @model_validator(mode="before")
    @classmethod
    def _read_old_keys(cls, data: Any) -> Any:
        return _new_keys(data, "override")[0]


class Resources(BaseModel):
    """What each run of the sweep gets. With GPUs the runs train on them
    (device = "cuda" unless [train] says otherwise)."""

    model_config = ConfigDict(extra="forbid")

    gpus_per_run: float = 0.0

    @field_validator("gpus_per_run")
    @classmethod
    def _gpus(cls, value: float) -> float:
        from sparsescale.sweep.executors import check_gpus_per_run

        try:
            return check_gpus_per_run(value, "gpus_per_run")
        except SparsescaleError as exc:
            raise ValueError(str(exc).removeprefix("gpus_per_run: ")) from None


class SweepSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = "sweep"
    family: str  # gpt, t5, vit or "package.module:attribute"
    corpus: str | None = None
    description: str = ""
    note: str = ""  # shown in the report, e.g. that Fashion-MNIST repeats data
    max_failures: int = 2  # a run that fails this many times is left as failed
    workers: int | None = None
    storage: str | None = None  # durable run folders: a path or an fsspec URI (sparsescale.storage)
    grid: Grid
    resources: Resources = Resources()
    train: dict[str, Any] = {}
    override: list[Override] = []

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        # it names report folders and is typed after --sweep: keep it a plain word
        if not value.strip() or any(c in value for c in "/\\\0") or value in (".", ".."):
            raise ValueError(f"must be a non-empty name without slashes, got {value!r}")
        return value

    @field_validator("max_failures", "workers")
    @classmethod
    def _at_least_one(cls, value: int | None) -> int | None:
        if value is not None and not 1 <= value <= 1024:
            raise ValueError(f"must be between 1 and 1024, got {value}")
        return value

    @field_validator("family")
    @classmethod
    def _known_family(cls, value: str) -> str:
        try:
            get_family(value)  # imports a user's module:attribute now, at plan time
        except SparsescaleError as exc:
            raise ValueError(str(exc)) from None
        return value

    @field_validator("train")
    @classmethod
    def _no_axes_in_train(cls, values: dict[str, Any]) -> dict[str, Any]:
        bad = sorted(set(values) & _AXIS_FIELDS)
        if bad:
            raise ValueError(f"{bad[0]!r} is set by the grid, not by [train]")
        return values


def _one_line(exc: ValidationError) -> str:
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err["loc"]) or "spec"
    msg = err["msg"].removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        msg = "unknown key"
    elif err["type"] == "missing":
        msg = "required key is missing"
    if msg.startswith(loc + "."):  # a check across a table's keys names the key itself
        return msg
    return f"{loc}: {msg}"


def load_spec(path: str | Path) -> SweepSpec:
    """Read and validate a sweep spec TOML file; errors name the file and key."""
    path = Path(path)
    raw = read_toml(path, str(path), "sweep spec file")
    return spec_from_dict(raw, source=str(path))


def spec_from_dict(raw: dict[str, Any], source: str = "spec") -> SweepSpec:
    try:
        spec = SweepSpec.model_validate(raw)
    except ValidationError as exc:
        raise SparsescaleError(f"{source}: {_one_line(exc)}") from None
    # Parse every count now so a typo fails before anything trains.
    for i, n in enumerate(spec.grid.n_nonzero):
        parse_count(n, f"{source}: grid.n_nonzero[{i}]")
    axis = spec.grid.budget_axis
    for i, d in enumerate(getattr(spec.grid, axis)):
        parse_count(d, f"{source}: grid.{axis}[{i}]")
    for i, p in enumerate(spec.grid.patterns):
        parse_pattern(p, f"{source}: grid.patterns[{i}]")
    dense_token_counts(spec.grid, source)
    point_keys(spec.grid, source)
    if spec.grid.lr is not None:
        if "lr" in spec.train:
            raise SparsescaleError(
                f"{source}: train.lr: the grid scans lr (grid.lr); set it in one place"
            )
        for i, ov in enumerate(spec.override):
            if "lr" in ov.set:
                raise SparsescaleError(f"{source}: override[{i}].set: 'lr' is set by grid.lr")
    elif any(ov.lr is not None for ov in spec.override):
        raise SparsescaleError(
            f"{source}: override.lr: matches the lr axis, but the grid has no grid.lr"
        )
    _check_size(spec, source)
    return spec


def point_keys(g: "Grid", source: str = "spec") -> set[tuple[float, int, int]] | None:
    """grid.points as (sparsity, n_nonzero, budget) keys, each checked to be a
    combination of the grid's own axis values; None when the grid has none."""
    if g.points is None:
        return None
    axis = g.budget_axis
    sizes = {parse_count(n, f"{source}: grid.n_nonzero") for n in g.n_nonzero}
    budgets = {parse_count(d, f"{source}: grid.{axis}") for d in getattr(g, axis)}
    keys = set()
    for i, point in enumerate(g.points):
        what = f"{source}: grid.points[{i}]"
        if set(point) != {"sparsity", "n_nonzero", axis}:
            raise SparsescaleError(f"{what}: needs exactly the keys sparsity, n_nonzero and {axis}")
        s = point["sparsity"]
        if isinstance(s, (bool, str)) or float(s) not in g.sparsity:
            raise SparsescaleError(f"{what}: sparsity {s!r} is not one of grid.sparsity")
        n = parse_count(point["n_nonzero"], f"{what}.n_nonzero")
        d = parse_count(point[axis], f"{what}.{axis}")
        if n not in sizes or d not in budgets:
            raise SparsescaleError(
                f"{what}: n_nonzero and {axis} must be values of grid.n_nonzero and grid.{axis}"
            )
        keys.add((float(s), n, d))
    return keys


# ~10x the paper's largest sweep; each run is planned (and listed) before anything starts.
MAX_RUNS = 10_000


def _check_size(spec: SweepSpec, source: str) -> None:
    """Refuse a grid too large to plan, before expanding it (a 10^6-run grid
    took minutes and gigabytes to expand and check, printing nothing)."""
    g = spec.grid
    sizes = {
        "sparsity": len(g.sparsity) * max(1, sum(p == UNSTRUCTURED for p in g.patterns))
        + sum(p != UNSTRUCTURED for p in g.patterns),
        "n_nonzero": len(g.n_nonzero),
        g.budget_axis: len(getattr(g, g.budget_axis)),
        "seeds": len(g.seeds),
        g.given_as("from_dense"): len(g.from_dense),
        g.given_as("dense_tokens"): len(g.dense_tokens or [0]),
        "lr": len(g.lr or [0]),
    }
    total = 1
    for n in sizes.values():
        total *= n
    if total > MAX_RUNS:
        shape = " x ".join(f"{n} {k}" for k, n in sizes.items() if n > 1)
        raise SparsescaleError(
            f"{source}: grid: {shape} = {total:,} runs; a sweep holds at most {MAX_RUNS:,} "
            "(split it into several specs)"
        )


@dataclass(frozen=True)
class PlannedRun:
    """One run of a sweep: its RunConfig fields, its axis values and the hash
    that identifies it in the store."""

    config_hash: str
    config: dict[str, Any]
    axes: dict[str, Any]
    depends_on: tuple[str, ...] = ()
    plan: dict[str, Any] = field(default_factory=dict)


def config_hash(config: dict[str, Any]) -> str:
    """Identity of a run: sha256 over the config fields that change its result."""
    return hashlib.sha256(
        json.dumps(identity_of(config), sort_keys=True, default=str).encode()
    ).hexdigest()


def _override_matches(ov: Override, axes: dict[str, Any], budget_axis: str, source: str) -> bool:
    for key in ("sparsity", "seed", "pattern", "lr"):
        want = getattr(ov, key)
        if want is not None and want != axes.get(key):
            return False
    if ov.from_dense is not None and prefix_of_fraction(
        ov.from_dense, axes[budget_axis]
    ) != dense_tokens_of(axes):
        return False
    if ov.dense_tokens is not None:
        if parse_count_or_zero(
            ov.dense_tokens, f"{source}: override.dense_tokens"
        ) != dense_tokens_of(axes):
            return False
    if (
        ov.n_nonzero is not None
        and parse_count(ov.n_nonzero, f"{source}: override.n_nonzero") != axes["n_nonzero"]
    ):
        return False
    for key in BUDGET_AXES:
        want = getattr(ov, key)
        if want is None:
            continue
        if (
            key != budget_axis
            or parse_count(want, f"{source}: override.{key}") != axes[budget_axis]
        ):
            return False
    return True


def expand(spec: SweepSpec, source: str = "spec") -> list[PlannedRun]:
    """The cross product of the grid as RunConfig keyword dicts, in a stable
    order (small runs first, so that a sweep's early results arrive fast).
    The dense runs that from-dense runs continue come before their users."""
    g = spec.grid
    axis = g.budget_axis
    budgets = [parse_count(d, f"{source}: grid.{axis}") for d in getattr(g, axis)]
    sizes = [parse_count(n, f"{source}: grid.n_nonzero") for n in g.n_nonzero]
    prefixes = dense_token_counts(g, source)
    only = point_keys(g, source)
    combos: list[tuple[float, str | None]] = []
    for pat in g.patterns:
        nm = parse_pattern(pat, f"{source}: grid.patterns")
        if nm is None:
            combos += [(s, None) for s in g.sparsity]
        else:
            combos.append((1.0 - nm[0] / nm[1], pattern_name(pat)))

    runs: dict[str, PlannedRun] = {}
    for budget in budgets:
        for n_nonzero in sizes:
            for sparsity, pattern in combos:
                if only is not None and (sparsity, n_nonzero, budget) not in only:
                    continue
                for seed in g.seeds:
                    for d0 in _dense_choices(g, budget, prefixes):
                        if d0 > 0 and sparsity == 0:
                            continue  # pruning a dense model to S=0 is just the dense run
                        for lr in g.lr or [None]:
                            # no lr key without a scan: older stores' axes (and hashes) stay as they
                            # were
                            scan = {} if lr is None else {"lr": lr}
                            axes = {
                                "sparsity": sparsity,
                                "n_nonzero": n_nonzero,
                                axis: budget,
                                "seed": seed,
                                "pattern": pattern or UNSTRUCTURED,
                                "dense_tokens": d0,
                                **scan,
                            }
                            _add_run(runs, spec, source, axes, axis, pattern, d0)
    for i, ov in enumerate(
        spec.override
    ):  # a typo in a match key would otherwise change nothing, silently
        if not any(_override_matches(ov, r.axes, axis, source) for r in runs.values()):
            keys = ", ".join(
                f"{k} = {v!r}" for k, v in ov.model_dump(exclude={"set"}).items() if v is not None
            )
            raise SparsescaleError(
                f"{source}: override[{i}] ({keys or 'no keys'}) matches no run of the grid; "
                "check its values against grid.*"
            )
    return list(runs.values())


def dense_token_counts(g: Grid, source: str = "spec") -> list[int] | None:
    """grid.dense_tokens as counts in the budget's unit (0: from scratch), or
    None when the grid has none. Each must be below some budget: a pruned run
    needs data after its dense prefix."""
    if g.dense_tokens is None:
        return None
    axis = g.budget_axis
    top = max(parse_count(d, f"{source}: grid.{axis}") for d in getattr(g, axis))
    out = []
    for i, value in enumerate(g.dense_tokens):
        what = f"{source}: grid.{g.given_as('dense_tokens')}[{i}]"
        d0 = parse_count_or_zero(value, what)
        if d0 >= top:
            raise SparsescaleError(
                f"{what}: {value} is not below any budget of grid.{axis} (the largest is "
                f"{top:,}); a pruned run needs data after its dense prefix"
            )
        out.append(d0)
    return out


def prefix_of_fraction(fraction: float, budget: int) -> int:
    """The dense data D0 = round(f * D) a `from_dense` fraction f trains first at
    the budget D (at least one unit when f > 0; 0: from scratch). The one place
    a fraction becomes dense tokens."""
    return max(1, int(round(fraction * budget))) if fraction > 0 else 0


def dense_tokens_of(axes: dict[str, Any]) -> int:
    """A stored run's dense data D0 in its budget's unit (0: trained from scratch),
    from its axis values as any version recorded them: `dense_tokens` now;
    `dense_prefix` (a count) before; only `init_from_dense` (a fraction of the
    budget) before that."""
    if "dense_tokens" in axes:
        return int(axes["dense_tokens"])
    if "dense_prefix" in axes:
        return int(axes["dense_prefix"])
    fraction = axes.get("init_from_dense") or 0.0
    budget = next((axes[k] for k in BUDGET_AXES if k in axes), 0)
    return prefix_of_fraction(fraction, budget)


def _dense_choices(g: Grid, budget: int, prefixes: list[int] | None) -> list[int]:
    """The dense data D0 of each from-dense choice of the grid at this budget
    (0: from scratch). A D0 at or beyond this budget leaves nothing to prune
    over: that pair is not a run."""
    if prefixes is None:
        return [prefix_of_fraction(f, budget) for f in g.from_dense]
    return [d0 for d0 in prefixes if d0 < budget]


def _add_run(
    runs: dict[str, PlannedRun],
    spec: SweepSpec,
    source: str,
    axes: dict[str, Any],
    axis: str,
    pattern: str | None,
    d0: int,
) -> None:
    """Plan one grid point (and, for d0 > 0, the dense prefix it continues) into `runs`."""
    config = _base_config(spec, source, axes, axis)
    config.update(
        {
            "params": axes["n_nonzero"],
            "sparsity": axes["sparsity"],
            "pattern": pattern,
            axis: axes[axis],
            "seed": axes["seed"],
        }
    )
    depends: tuple[str, ...] = ()
    if d0 > 0:
        dense = _dense_pretrain(spec, source, axes, axis, d0)
        runs.setdefault(dense.config_hash, dense)  # one prefix, however many runs continue it
        # The continuation trains D - D0 itself; with the dense run's D0 the run
        # saw D in all, which its axes record (the law's D is the total), while
        # its config holds only its own part and the D0 to skip.
        config[axis] = axes[axis] - d0
        config["init_from"] = f"@{dense.config_hash}"
        config["dense_tokens"] = d0  # same seed: read on from where the dense run stopped
        depends = (dense.config_hash,)
    h = config_hash(config)
    known = runs.get(h)
    if known is None or known.axes.get("role") == "dense-pretrain":
        # A grid point that is also another run's prefix is trained once and stays
        # a grid point (fitted, exported); it keeps the prefix's place before its users.
        runs[h] = PlannedRun(h, config, axes, depends)


def _base_config(spec: SweepSpec, source: str, axes: dict[str, Any], axis: str) -> dict[str, Any]:
    config: dict[str, Any] = {"model": spec.family}
    if spec.corpus is not None:
        config["corpus"] = spec.corpus
    config.update(spec.train)
    for ov in spec.override:
        if _override_matches(ov, axes, axis, source):
            bad = sorted(set(ov.set) & _AXIS_FIELDS)
            if bad:
                raise SparsescaleError(f"{source}: override.set: {bad[0]!r} is set by the grid")
            config.update(ov.set)
    if axes.get("lr") is not None:
        config["lr"] = axes["lr"]
    config.setdefault("threads", 1)
    if spec.resources.gpus_per_run > 0:
        # A GPU sweep trains on its GPUs: "cuda" fails loudly on a node without
        # one, where "auto" would quietly train on its CPU. (device is an
        # execution setting: it leaves the run's hash alone.)
        config.setdefault("device", "cuda")
    return config


def _dense_pretrain(
    spec: SweepSpec, source: str, axes: dict[str, Any], axis: str, d0: int
) -> PlannedRun:
    # Same width as the sparse model: a dense model whose N equals the sparse
    # model's dense block size N/(1-S). Configured as the dense grid run of that
    # N and budget d0 would be, so the two share a hash and train once.
    dense_axes = dict(
        axes,
        sparsity=0.0,
        pattern=UNSTRUCTURED,
        dense_tokens=0,
        n_nonzero=int(round(axes["n_nonzero"] / (1.0 - axes["sparsity"]))),
    )
    dense_axes[axis] = d0
    config = _base_config(spec, source, dense_axes, axis)
    config.update(
        {
            "params": dense_axes["n_nonzero"],
            "sparsity": 0.0,
            "pattern": None,
            axis: d0,
            "seed": axes["seed"],
        }
    )
    h = config_hash(config)
    return PlannedRun(h, config, dense_axes | {"role": "dense-pretrain"})


def _fingerprint(cfg) -> dict[str, Any]:
    """{"data_fingerprint": ...} of the run's training data when its data handle has one
    (a token corpus): every node checks its own cache against it before training."""
    from sparsescale.train.plan import data_for

    fp = getattr(data_for(cfg)[1], "fingerprint", None)
    return {"data_fingerprint": fp} if fp else {}


def check_runs(
    runs: list[PlannedRun], source: str = "spec", progress: Callable[[int, int], None] | None = None
) -> list[PlannedRun]:
    """Validate every run with the training layer's fast check (family minimum
    N, corpus size, n:m divisibility...) before anything trains, and attach
    each run's plan (width, steps, FLOPs). Errors name the run's axis values.
    `progress(done, total)` is called after each run (about 20 ms each on a CPU)."""
    from sparsescale.train.config import RunConfig  # torch-free config model
    from sparsescale.train.run import check_config

    checked = []
    for run in runs:
        where = ", ".join(f"{k}={v}" for k, v in run.axes.items() if k != "role")
        config = dict(run.config)
        if str(config.get("init_from") or "").startswith("@"):
            config["init_from"] = None  # the dense checkpoint does not exist yet
        try:
            cfg = RunConfig(**config)
        except ValidationError as exc:
            raise SparsescaleError(f"{source}: run ({where}): {_one_line(exc)}") from None
        except SparsescaleError as exc:
            raise SparsescaleError(f"{source}: run ({where}): {exc}") from None
        try:
            plan = check_config(cfg)
        except SparsescaleError as exc:
            raise SparsescaleError(f"{source}: run ({where}): {exc}") from None
        checked.append(
            PlannedRun(
                run.config_hash,
                run.config,
                run.axes,
                run.depends_on,
                dict(plan) | _fingerprint(cfg),
            )
        )
        if progress is not None:
            progress(len(checked), len(runs))
    return checked
