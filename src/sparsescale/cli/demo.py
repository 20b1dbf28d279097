"""`sparsescale demo`: a built-in sweep end to end (train, fit, check, report). Needs PyTorch."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from sparsescale.cli.app import app
from sparsescale.cli.common import require_torch


@app.command()
def demo(
    preset: str = typer.Option(
        "quick", "--preset", help="quick (~10 min on 2 cores), cpu-full (~1 h) or vit-quick."
    ),
    out: Path = typer.Option(Path("demo"), "--out", help="Folder for the store and the report."),
    workers: Optional[int] = typer.Option(
        None, "--workers", help="Runs at once [default: one per core]."
    ),
) -> None:
    """Run a built-in sweep end to end: train, fit the law, check it, and write the report.

    Example: sparsescale demo --preset quick --out demo
    """
    require_torch("demo")
    from sparsescale.atomic import check_output
    from sparsescale.errors import SparsescaleError
    from sparsescale.recipes.demo import run_demo

    check_output(out, what="--out", folder=True)
    try:
        run_demo(preset, out, workers=workers)
    except SparsescaleError as exc:
        # run_demo names the folder it checks by its argument, out_dir (the
        # output checks take a label, not a parameter): here it is --out
        raise SparsescaleError(
            str(exc).replace("out_dir ", "--out ", 1)
            if str(exc).startswith("out_dir ")
            else str(exc)
        ) from None
