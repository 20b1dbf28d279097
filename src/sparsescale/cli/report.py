"""`sparsescale report`: fit the law to one sweep's runs and write report.html with figures."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from sparsescale.cli.app import app

MAX_BOOTSTRAP = 100_000  # far beyond what stable 95% intervals need (a few hundred)


@app.command()
def report(
    store: Path = typer.Argument(..., help="Sweep store (SQLite)."),
    out: Optional[Path] = typer.Option(
        None,
        "--out",
        help="Output folder [default: <store stem>[-<sweep>]-report beside the store].",
    ),
    bootstrap: int = typer.Option(
        200, "--bootstrap", help=f"Bootstrap resamples for the intervals (0 to {MAX_BOOTSTRAP:,})."
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of the fit and the bootstrap (>= 0)."),
    sweep: Optional[str] = typer.Option(
        None, "--sweep", help="Sweep name [default: the store's only sweep]."
    ),
) -> None:
    """Fit the sparse scaling law to one sweep's finished runs and write report.html with figures.

    Example: sparsescale report runs/quick.sqlite --out reports/quick
    """
    from sparsescale.atomic import check_output
    from sparsescale.errors import SparsescaleError
    from sparsescale.report.build import build_report, default_report_dir, is_report, print_summary

    if not 0 <= bootstrap <= MAX_BOOTSTRAP:
        raise SparsescaleError(
            f"--bootstrap: must be between 0 and {MAX_BOOTSTRAP:,}, got {bootstrap}"
        )
    if not 0 <= seed < 2**32:
        raise SparsescaleError(f"--seed: must be between 0 and 2**32-1, got {seed}")
    out = out or default_report_dir(store, sweep)
    check_output(out, [store], what="--out", folder=True, ours=is_report)
    summary = build_report(store, out, n_boot=bootstrap, seed=seed, sweep=sweep)
    print_summary(summary)
