"""Command-line entry point: `sparsescale fit|predict|optimal|train|sweep|export|report|demo`.

Command modules stay thin: parse flags, call one library function, print.
Heavy imports (torch, pandas, matplotlib) happen inside command bodies so that
`sparsescale --help` and the numerics-only commands start fast.
"""

from __future__ import annotations

import sys

import click

from sparsescale.cli.app import app
from sparsescale.errors import SparsescaleError

# Registration by import: each module adds its commands to `app`.
for _optional in ("laws", "train", "sweep"):
    try:
        __import__(f"sparsescale.cli.{_optional}")
    except ModuleNotFoundError as exc:  # a module not written yet
        if exc.name != f"sparsescale.cli.{_optional}":
            raise


def fail(message: str) -> "None":
    """Print one line on stderr and exit with status 2."""
    print(f"sparsescale: error: {message}", file=sys.stderr)
    raise SystemExit(2)


def main(argv: list[str] | None = None) -> None:
    try:
        app(args=argv, standalone_mode=False)
    except SparsescaleError as exc:
        fail(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
    except click.exceptions.Abort:
        print("sparsescale: aborted", file=sys.stderr)
        raise SystemExit(130)
    except click.exceptions.ClickException as exc:  # usage errors: bad flag, missing argument
        fail(exc.format_message().replace("\n", " "))
    except click.exceptions.Exit as exc:
        raise SystemExit(exc.exit_code)
    except KeyboardInterrupt:
        print("sparsescale: interrupted", file=sys.stderr)
        raise SystemExit(130)
