"""`sparsescale next`: which runs to train next for one target number (no
torch). What it shares with `sweep --adaptive` (parsing the target, proposing
the runs, the spec it writes) is in cli/common.py."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from sparsescale.cli.app import app
from sparsescale.cli.common import (
    check_design_flags,
    checked_toml,
    console,
    propose_from,
    written_by_next,
)
from sparsescale.errors import SparsescaleError


@app.command("next")
def next_runs(
    source: str = typer.Argument(
        ...,
        metavar="RUNS",
        help="A sweep store (.sqlite) or a results table (the columns `sparsescale export` "
        "writes), or paper:t5 / paper:vit.",
    ),
    target: str = typer.Option(
        ...,
        "--target",
        help="The number to pin down: sopt:N=1e8,C=1e20 (S_opt at N non-zeros and C FLOPs), "
        "equivalent-size:S=0.75, or loss:S=0.5,N=1e8,D=1e10.",
    ),
    budget: str = typer.Option(
        ...,
        "--budget",
        help="Compute for the next batch: FLOPs (1e18) or a share of the compute already spent "
        "(25%).",
    ),
    out: Optional[Path] = typer.Option(
        None,
        "--out",
        help="Write the proposed runs as a sweep spec here [default for a store: <store "
        "stem>-next.toml beside it].",
    ),
    sparsity: Optional[str] = typer.Option(
        None,
        "--sparsity",
        help="Candidate sparsities: 0,0.5,0.75 or a range LOW:HIGH:COUNT [default: the spec's, "
        "one step beyond].",
    ),
    params: Optional[str] = typer.Option(
        None,
        "--params",
        help="Candidate non-zero sizes N: a list or LOW:HIGH:COUNT (log-spaced) [default: the "
        "spec's, one step beyond each end].",
    ),
    data: Optional[str] = typer.Option(
        None,
        "--data",
        help="Candidate data budgets D (the spec's unit): a list or LOW:HIGH:COUNT [default: the "
        "spec's, one step beyond each end].",
    ),
    spec: Optional[Path] = typer.Option(
        None,
        "--spec",
        help="Sweep spec whose family and [train] settings the written spec keeps (needed to "
        "write one for a table).",
    ),
    sweep: Optional[str] = typer.Option(
        None, "--sweep", help="Sweep name in the store [default: its only one]."
    ),
    tokens_per_unit: Optional[float] = typer.Option(
        None,
        "--tokens-per-unit",
        help="Tokens one unit of D costs [default: from the store's FLOP records; 1 for a table].",
    ),
    bootstrap: int = typer.Option(
        200, "--bootstrap", help="Bootstrap draws behind the criterion (20 to 5000)."
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of the fit and the bootstrap."),
    as_json: bool = typer.Option(False, "--json", help="Print the proposal as JSON."),
) -> None:
    """Propose the runs that most narrow the target's 95% interval per FLOP, and write
    them as a sweep spec.

    Example: sparsescale next runs/quick.sqlite --target equivalent-size:S=0.75 --budget 50%
    && sparsescale sweep runs/quick-next.toml --store runs/quick.sqlite
    """
    from sparsescale.atomic import check_output, write_text

    parsed = check_design_flags(target, budget, bootstrap)
    if spec is not None and not spec.is_file():
        raise SparsescaleError(f"--spec {spec}: no such file")
    is_store = Path(source).suffix.lower() in (".sqlite", ".db", ".sqlite3")
    if out is not None and not is_store and spec is None:
        raise SparsescaleError(
            "--out: a results table has no sweep spec to continue; give --spec SPEC.toml"
        )
    if out is None and is_store:
        out = Path(source).with_name(Path(source).stem + "-next.toml")
    if out is not None:
        check_output(out, [source] + ([spec] if spec else []), what="--out", ours=written_by_next)
    _, proposal, nxt = propose_from(
        source,
        parsed,
        budget,
        sweep=sweep,
        sparsity=sparsity,
        params=params,
        data=data,
        spec=spec,
        tokens_per_unit=tokens_per_unit,
        bootstrap=bootstrap,
        seed=seed,
    )
    if out is not None and nxt is None and proposal.runs:
        raise SparsescaleError(
            "--out: a results table has no sweep spec to continue; give --spec SPEC.toml"
        )
    if out is not None and nxt is not None:
        write_text(out, checked_toml(nxt, str(out)))
    report = proposal.to_dict() | {
        "spec": str(out) if out is not None and nxt is not None else None
    }
    if as_json:
        print(json.dumps(report, indent=2))
        return
    _print_proposal(proposal, report["spec"], source)


def _print_proposal(proposal, spec_path: str | None, source: str) -> None:
    from rich.table import Table

    con = console()
    lo, med, hi = proposal.interval
    con.print(
        f"target {proposal.target.label}: {med:.4g}, 95% interval [{lo:.4g}, {hi:.4g}] (width "
        f"{hi - lo:.3g}) "
        f"from {proposal.n_boot} bootstrap draws"
    )
    if not proposal.runs:
        con.print(
            f"no candidate run fits the budget of {proposal.budget_flops:.3g} FLOPs: raise --budget"
        )
        return
    table = Table(
        title=f"{len(proposal.runs)} of {proposal.n_candidates} candidate runs, "
        f"{proposal.spent_flops:.3g} of {proposal.budget_flops:.3g} FLOPs"
    )
    for col in ("#", "S", "N", "D", "FLOPs", "variance removed"):
        table.add_column(col, justify="right")
    for i, r in enumerate(proposal.runs, 1):
        table.add_row(
            str(i),
            f"{r['sparsity']:.4g}",
            f"{r['n_nonzero']:.4g}",
            f"{r['data']:.4g}",
            f"{r['flops']:.3g}",
            f"{100 * r['variance_share']:.1f}%",
        )
    con.print(table)
    con.print(
        f"expected 95% interval width after them: {proposal.expected_width:.3g} "
        f"({proposal.expected_width / max(hi - lo, 1e-300):.2f}x today's)"
    )
    if spec_path:
        con.print(f"spec: {spec_path}\nnext: sparsescale sweep {spec_path} --store {source}")
