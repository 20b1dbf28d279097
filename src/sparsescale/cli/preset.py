"""`sparsescale preset NAME`: print a built-in sweep spec."""

from __future__ import annotations

import sys

import typer

from sparsescale.cli.app import app


@app.command()
def preset(name: str = typer.Argument(..., help="quick, cpu-full or vit-quick.")) -> None:
    """Print a built-in sweep spec, to copy and edit into your own.

    Example: sparsescale preset quick > my-sweep.toml
    """
    from sparsescale.recipes.demo import preset_path

    sys.stdout.write(preset_path(name, what="preset NAME").read_text(encoding="utf-8"))
