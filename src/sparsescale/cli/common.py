"""What the command modules share: output (console, numbers, JSON), the
one-line failure, library errors re-worded to name flags, flag parsing that
several commands do alike, and the PyTorch check of the training commands.

Every command module imports this module and library code only, never another
command module: a helper two commands need lives here (or in the library).
Imports of numpy, rich and the library happen inside the functions, so that
`sparsescale --help` and the law commands start fast.
"""

from __future__ import annotations

import json
import sys
from contextlib import contextmanager
from pathlib import Path

from sparsescale.cli.flags import FLAG_OF
from sparsescale.errors import SparsescaleError

NO_UNCERTAINTY = (
    "this law carries no uncertainty, so the numbers are bare: refit with "
    "`sparsescale fit ... --bootstrap 200 --out LAW.json` for calibrated intervals"
)


# --- failing and re-wording -------------------------------------------------


def fail(message: str) -> "None":
    """Print one line on stderr and exit with status 2."""
    print(f"sparsescale: error: {message}", file=sys.stderr)
    raise SystemExit(2)


@contextmanager
def params_as_flags(source: str | None = None):
    """Re-word a library error that names an argument (SparsescaleError.param)
    to name the flag that sets it (flags.FLAG_OF); any other error is about the
    data, so it names `source` (the data file) when given."""
    try:
        yield
    except SparsescaleError as exc:
        flag = FLAG_OF.get(exc.param) if exc.param else None
        if flag is not None:
            raise SparsescaleError(f"{flag}: {exc.detail}") from None
        if source is not None and not str(exc).startswith(source):
            raise SparsescaleError(f"{source}: {exc}") from None
        raise


def torch_missing_line(command: str) -> str:
    """The one line a command that trains or times kernels prints without PyTorch."""
    return (
        f"sparsescale {command} needs PyTorch, which is not installed here: "
        "pip install 'sparsescale[torch]' (or a torch build for your accelerator)"
    )


def require_torch(command: str) -> None:
    """Exit 2 with one line when PyTorch cannot be imported, before the command
    checks or writes anything. The law commands never call this: they run
    without torch."""
    try:
        import torch  # noqa: F401
    except ModuleNotFoundError as exc:
        if not is_torch_missing(exc):
            raise
        print(torch_missing_line(command), file=sys.stderr)
        raise SystemExit(2) from None


def is_torch_missing(exc: BaseException) -> bool:
    """A ModuleNotFoundError for torch itself (not a bug inside torch or here)."""
    name = getattr(exc, "name", None) or ""
    return isinstance(exc, ModuleNotFoundError) and (name == "torch" or name.startswith("torch."))


def run_command(name: str, args: list[str]):
    """Run another command by its name, through the typer app, as if typed:
    how a deprecated spelling reaches its new command without importing its
    module."""
    import typer.main

    from sparsescale.cli.app import app

    return typer.main.get_command(app).main(
        args=[name, *args], prog_name="sparsescale", standalone_mode=False
    )


def deprecated(old: str, new: str) -> None:
    """One note on stderr: the old spelling still works for this release."""
    print(
        f"sparsescale: note: `{old}` is deprecated and will be removed in the next release; "
        f"use `{new}`",
        file=sys.stderr,
    )


# --- output -------------------------------------------------------------------


def console():
    from rich.console import Console

    return Console()


def fmt_loss(v: float, digits: int = 5) -> str:
    """A loss with fixed decimals; an absurd one (a law far outside its data)
    in scientific notation rather than a hundred digits wide."""
    return f"{v:.{digits}f}" if abs(v) < 1e6 else f"{v:.{digits}g}"


def warn_non_finite(paths: list[str], where: str) -> None:
    """One stderr line: which numbers were not finite and became null."""
    if paths:
        shown = ", ".join(paths[:5]) + (f" and {len(paths) - 5} more" if len(paths) > 5 else "")
        print(f"warning: non-finite numbers written as null in {where}: {shown}", file=sys.stderr)


def print_json(obj) -> None:
    """Print obj as valid JSON (NaN/inf as null, with a warning on stderr)."""
    from sparsescale.laws.jsonsafe import finite_json

    clean, bad = finite_json(obj)
    warn_non_finite(bad, "the JSON output")
    print(json.dumps(clean, allow_nan=False))


# --- flags several commands parse alike ---------------------------------------


def check_level(level: float) -> None:
    if not 0.5 <= level < 1:
        raise SparsescaleError(f"--level: must be in [0.5, 1), got {level:g}")


def check_window(start: float, end: float) -> None:
    """--start and --end, both named (the schedule's own check names neither)."""
    if not 0 <= start < end <= 1:
        raise SparsescaleError(
            f"--start {start:g}, --end {end:g}: need 0 <= --start < --end <= 1 "
            "(fractions of training)"
        )


def positive_quantity(text: str, flag: str) -> float:
    """--params and the like: "1e7", "200k", > 0."""
    from sparsescale.units import parse_quantity

    n = parse_quantity(text, flag)
    if n <= 0:
        raise SparsescaleError(f"{flag}: must be > 0, got {text!r}")
    return n


def parse_budget(law, text: str, base, base_name: str, example: str) -> float:
    """--compute in the law's compute unit: FLOPs ("1e20", converted by the
    law's tokens_per_unit), or "Kx", K times `base()` (already in that unit;
    only computed when asked for). `optimal`, `from-dense` and
    `choose-pattern` differ only in what the multiple is of."""
    from sparsescale.laws.planning import law_compute
    from sparsescale.units import parse_quantity

    t = str(text).strip()
    if t.lower().endswith("x"):
        mult = parse_quantity(t[:-1], "--compute")
        if mult <= 0:
            raise SparsescaleError(
                f"--compute: the multiple of {base_name} must be > 0, got {text!r}"
            )
        return mult * base()
    flops = parse_quantity(t, "--compute")
    if flops <= 0:
        raise SparsescaleError(f"--compute: must be a positive number of FLOPs, got {text!r}")
    try:
        return law_compute(law, flops)
    except SparsescaleError:
        raise SparsescaleError(
            f"--compute: law {law.name} does not say how many tokens one unit of D "
            f"({law.units.get('D', 'data')}) is (tokens_per_unit), so FLOPs cannot be converted; "
            f"give the budget as a multiple of {base_name}, e.g. --compute {example}"
        ) from None


def dense_optimal_budget(law, n_nonzero: float, text: str) -> float:
    """--compute as FLOPs ("1e20") or as a multiple of the dense compute-optimal
    budget C* ("10x"), returned in the law's compute unit."""
    from sparsescale.laws.planning import dense_optimal_compute

    return parse_budget(
        law,
        text,
        lambda: float(dense_optimal_compute(law, n_nonzero)),
        "the dense compute-optimal budget C*",
        "10x",
    )


def check_plot_format(plot: Path, flag: str = "--plot") -> None:
    """An extension matplotlib can write (it would fail only after the whole fit)."""
    if not plot.suffix:
        return  # written as PNG
    from matplotlib.backend_bases import FigureCanvasBase

    kinds = FigureCanvasBase.get_supported_filetypes()
    if plot.suffix.lower().lstrip(".") not in kinds:
        raise SparsescaleError(
            f"{flag} {plot}: unsupported image format {plot.suffix!r}; use one of "
            f"{', '.join('.' + k for k in sorted(kinds))}"
        )


# --- `next` and `sweep --adaptive`: the design of the next runs ---------------

MAX_NEXT_BOOTSTRAP = 5000
NEXT_MARK = "# written by sparsescale next"


def written_by_next(path: Path) -> bool:
    """An earlier spec written by `next` (it may be replaced; nobody else's file may)."""
    with open(path, "rb") as f:
        return f.read(len(NEXT_MARK)) == NEXT_MARK.encode()


def check_design_flags(target: str, budget: str, bootstrap: int):
    """Parse what `next` and `sweep --adaptive` share; errors name the flag."""
    from sparsescale.laws.design import parse_target

    parsed = parse_target(target, "--target")
    if not 20 <= bootstrap <= MAX_NEXT_BOOTSTRAP:
        raise SparsescaleError(
            f"--bootstrap: must be between 20 and {MAX_NEXT_BOOTSTRAP}, got {bootstrap}"
        )
    if not str(budget).strip():
        raise SparsescaleError("--budget: give FLOPs (1e18) or a share of the compute spent (25%)")
    return parsed


def propose_from(
    source: str,
    target,
    budget: str,
    *,
    sweep: str | None = None,
    sparsity: str | None = None,
    params: str | None = None,
    data: str | None = None,
    spec: Path | None = None,
    tokens_per_unit: float | None = None,
    bootstrap: int = 200,
    seed: int = 0,
):
    """(finished runs, proposal, next spec dict or None) for a store or a table."""
    from sparsescale.laws.design import parse_axis
    from sparsescale.sweep.adaptive import (
        budget_flops,
        default_candidates,
        design,
        from_store,
        from_table,
        next_spec,
        spec_for_table,
    )

    if tokens_per_unit is not None and not tokens_per_unit > 0:
        raise SparsescaleError(f"--tokens-per-unit: must be positive, got {tokens_per_unit}")
    is_store = not source.startswith("paper:") and Path(source).suffix.lower() in (
        ".sqlite",
        ".db",
        ".sqlite3",
    )
    if is_store:
        finished = from_store(source, sweep)
    else:
        if sweep is not None:
            raise SparsescaleError("--sweep: only meaningful for a store")
        finished = from_table(source, tokens_per_unit)
    if spec is not None:
        from sparsescale.models.registry import BUDGET_AXES

        finished.spec = spec_for_table(spec)
        finished.budget_axis = next(
            a for a in BUDGET_AXES if finished.spec["grid"].get(a) is not None
        )
    if tokens_per_unit is not None:
        finished.tokens_per_unit = tokens_per_unit
    axes = default_candidates(finished)
    for flag, key, text in (
        ("--sparsity", "sparsity", sparsity),
        ("--params", "n_nonzero", params),
        ("--data", "data", data),
    ):
        if text is not None:
            axes[key] = parse_axis(text, flag, key)
    flops = budget_flops(budget, finished)
    proposal = design(finished, target, flops, axes, n_boot=bootstrap, seed=seed)
    nxt = next_spec(finished, proposal) if finished.spec is not None and proposal.runs else None
    return finished, proposal, nxt


def checked_toml(spec: dict, where: str) -> str:
    """The spec as TOML, read back and validated: what `next` writes, `sweep` can run."""
    import tomllib

    from sparsescale.sweep.adaptive import to_toml
    from sparsescale.sweep.spec import spec_from_dict

    text = f"{NEXT_MARK}: the runs it proposed, for `sparsescale sweep`\n" + to_toml(spec)
    spec_from_dict(tomllib.loads(text), source=where)
    return text
