"""`sparsescale export`: one sweep's finished runs as the table `fit` reads (no torch)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

from sparsescale.cli.app import app


@app.command()
def export(
    store: Path = typer.Argument(..., help="Sweep store (SQLite)."),
    csv: Optional[Path] = typer.Option(None, "--csv", help="Write CSV here."),
    parquet: Optional[Path] = typer.Option(None, "--parquet", help="Write Parquet here."),
    sweep: Optional[str] = typer.Option(
        None, "--sweep", help="Sweep name [default: the store's only sweep]."
    ),
) -> None:
    """Write one sweep's finished runs as a table that `sparsescale fit` reads (CSV on
    stdout by default).

    Example: sparsescale export runs/quick.sqlite --csv quick.csv
    then:    sparsescale fit quick.csv --sparsity sparsity --params n_nonzero --data tokens
    --loss loss
    """
    from sparsescale.atomic import check_output
    from sparsescale.errors import SparsescaleError
    from sparsescale.sweep.export import export as export_table
    from sparsescale.sweep.export import is_export

    if csv and parquet:
        raise SparsescaleError("--csv, --parquet: give one, not both")
    for out, flag in ((csv, "--csv"), (parquet, "--parquet")):
        if out:
            check_output(out, [store], what=flag, ours=is_export)
    text, n = export_table(store, csv=csv, parquet=parquet, sweep=sweep)
    if text:
        sys.stdout.write(text)
    else:
        print(f"wrote {n} runs to {csv or parquet}", file=sys.stderr)
