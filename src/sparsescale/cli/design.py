"""`sparsescale next`: which runs to train next for one target number."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from sparsescale.cli.app import app
from sparsescale.errors import SparsescaleError

MAX_NEXT_BOOTSTRAP = 5000
MARK = "# written by sparsescale next"


def _ours(path: Path) -> bool:
    """An earlier spec written by `next` (it may be replaced; nobody else's file may)."""
    with open(path, "rb") as f:
        return f.read(len(MARK)) == MARK.encode()


def check_design_flags(target: str, budget: str, bootstrap: int):
    """Parse what `next` and `sweep --adaptive` share; errors name the flag."""
    from sparsescale.laws.design import parse_target

    parsed = parse_target(target, "--target")
    if not 20 <= bootstrap <= MAX_NEXT_BOOTSTRAP:
        raise SparsescaleError(f"--bootstrap: must be between 20 and {MAX_NEXT_BOOTSTRAP}, got {bootstrap}")
    if not str(budget).strip():
        raise SparsescaleError("--budget: give FLOPs (1e18) or a share of the compute spent (25%)")
    return parsed


def propose_from(source: str, target, budget: str, *, sweep: str | None = None, sparsity: str | None = None,
                 params: str | None = None, data: str | None = None, spec: Path | None = None,
                 tokens_per_unit: float | None = None, bootstrap: int = 200, seed: int = 0):
    """(finished runs, proposal, next spec dict or None) for a store or a table."""
    from sparsescale.laws.design import parse_axis
    from sparsescale.sweep.adaptive import (budget_flops, default_candidates, design, from_store, from_table,
                                            next_spec, spec_for_table)

    if tokens_per_unit is not None and not tokens_per_unit > 0:
        raise SparsescaleError(f"--tokens-per-unit: must be positive, got {tokens_per_unit}")
    is_store = not source.startswith("paper:") and Path(source).suffix.lower() in (".sqlite", ".db", ".sqlite3")
    if is_store:
        finished = from_store(source, sweep)
    else:
        if sweep is not None:
            raise SparsescaleError("--sweep: only meaningful for a store")
        finished = from_table(source, tokens_per_unit)
    if spec is not None:
        from sparsescale.models.registry import BUDGET_AXES

        finished.spec = spec_for_table(spec)
        finished.budget_axis = next(a for a in BUDGET_AXES if finished.spec["grid"].get(a) is not None)
    if tokens_per_unit is not None:
        finished.tokens_per_unit = tokens_per_unit
    axes = default_candidates(finished)
    for flag, key, text in (("--sparsity", "sparsity", sparsity), ("--params", "n_nonzero", params),
                            ("--data", "data", data)):
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

    text = f"{MARK}: the runs it proposed, for `sparsescale sweep`\n" + to_toml(spec)
    spec_from_dict(tomllib.loads(text), source=where)
    return text


@app.command("next")
def next_runs(
    source: str = typer.Argument(..., metavar="RUNS", help="A sweep store (.sqlite) or a results table (the columns `sparsescale export` writes), or paper:t5 / paper:vit."),
    target: str = typer.Option(..., "--target", help="The number to pin down: sopt:N=1e8,C=1e20 (S_opt at N non-zeros and C FLOPs), equivalent-size:S=0.75, or loss:S=0.5,N=1e8,D=1e10."),
    budget: str = typer.Option(..., "--budget", help="Compute for the next batch: FLOPs (1e18) or a share of the compute already spent (25%)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Write the proposed runs as a sweep spec here [default for a store: <store stem>-next.toml beside it]."),
    sparsity: Optional[str] = typer.Option(None, "--sparsity", help="Candidate sparsities: 0,0.5,0.75 or a range LOW:HIGH:COUNT [default: the spec's, one step beyond]."),
    params: Optional[str] = typer.Option(None, "--params", help="Candidate non-zero sizes N: a list or LOW:HIGH:COUNT (log-spaced) [default: the spec's, one step beyond each end]."),
    data: Optional[str] = typer.Option(None, "--data", help="Candidate data budgets D (the spec's unit): a list or LOW:HIGH:COUNT [default: the spec's, one step beyond each end]."),
    spec: Optional[Path] = typer.Option(None, "--spec", help="Sweep spec whose family and [train] settings the written spec keeps (needed to write one for a table)."),
    sweep: Optional[str] = typer.Option(None, "--sweep", help="Sweep name in the store [default: its only one]."),
    tokens_per_unit: Optional[float] = typer.Option(None, "--tokens-per-unit", help="Tokens one unit of D costs [default: from the store's FLOP records; 1 for a table]."),
    bootstrap: int = typer.Option(200, "--bootstrap", help="Bootstrap draws behind the criterion (20 to 5000)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the fit and the bootstrap."),
    as_json: bool = typer.Option(False, "--json", help="Print the proposal as JSON."),
) -> None:
    """Propose the runs that most narrow the target's 95% interval per FLOP, and write them as a sweep spec.

    Example: sparsescale next runs/quick.sqlite --target equivalent-size:S=0.75 --budget 50% && sparsescale sweep runs/quick-next.toml --store runs/quick.sqlite
    """
    from sparsescale.atomic import check_output, write_text

    parsed = check_design_flags(target, budget, bootstrap)
    if spec is not None and not spec.is_file():
        raise SparsescaleError(f"--spec {spec}: no such file")
    is_store = Path(source).suffix.lower() in (".sqlite", ".db", ".sqlite3")
    if out is not None and not is_store and spec is None:
        raise SparsescaleError("--out: a results table has no sweep spec to continue; give --spec SPEC.toml")
    if out is None and is_store:
        out = Path(source).with_name(Path(source).stem + "-next.toml")
    if out is not None:
        check_output(out, [source] + ([spec] if spec else []), what="--out", ours=_ours)
    _, proposal, nxt = propose_from(source, parsed, budget, sweep=sweep, sparsity=sparsity, params=params, data=data,
                                    spec=spec, tokens_per_unit=tokens_per_unit, bootstrap=bootstrap, seed=seed)
    if out is not None and nxt is None and proposal.runs:
        raise SparsescaleError("--out: a results table has no sweep spec to continue; give --spec SPEC.toml")
    if out is not None and nxt is not None:
        write_text(out, checked_toml(nxt, str(out)))
    report = proposal.to_dict() | {"spec": str(out) if out is not None and nxt is not None else None}
    if as_json:
        print(json.dumps(report, indent=2))
        return
    _print_proposal(proposal, report["spec"], source)


def _print_proposal(proposal, spec_path: str | None, source: str) -> None:
    from rich.console import Console
    from rich.table import Table

    con = Console()
    lo, med, hi = proposal.interval
    con.print(f"target {proposal.target.label}: {med:.4g}, 95% interval [{lo:.4g}, {hi:.4g}] (width {hi - lo:.3g}) "
              f"from {proposal.n_boot} bootstrap draws")
    if not proposal.runs:
        con.print(f"no candidate run fits the budget of {proposal.budget_flops:.3g} FLOPs: raise --budget")
        return
    table = Table(title=f"{len(proposal.runs)} of {proposal.n_candidates} candidate runs, "
                        f"{proposal.spent_flops:.3g} of {proposal.budget_flops:.3g} FLOPs")
    for col in ("#", "S", "N", "D", "FLOPs", "variance removed"):
        table.add_column(col, justify="right")
    for i, r in enumerate(proposal.runs, 1):
        table.add_row(str(i), f"{r['sparsity']:.4g}", f"{r['n_nonzero']:.4g}", f"{r['data']:.4g}", f"{r['flops']:.3g}",
                      f"{100 * r['variance_share']:.1f}%")
    con.print(table)
    con.print(f"expected 95% interval width after them: {proposal.expected_width:.3g} "
              f"({proposal.expected_width / max(hi - lo, 1e-300):.2f}x today's)")
    if spec_path:
        con.print(f"spec: {spec_path}\nnext: sparsescale sweep {spec_path} --store {source}")
