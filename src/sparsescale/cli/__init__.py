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
for _optional in ("laws", "train", "sweep", "kernels"):
    try:
        __import__(f"sparsescale.cli.{_optional}")
    except ModuleNotFoundError as exc:  # a module not written yet
        if exc.name != f"sparsescale.cli.{_optional}":
            raise


def fail(message: str) -> "None":
    """Print one line on stderr and exit with status 2."""
    print(f"sparsescale: error: {message}", file=sys.stderr)
    raise SystemExit(2)


def _click_exception_types():
    """Click's exception classes, from click itself and from the copy typer vendors."""
    mods = [click.exceptions]
    try:
        from typer._click import exceptions as vendored  # typer >= 0.16 ships its own click

        mods.append(vendored)
    except ImportError:
        pass
    pick = lambda name: tuple(getattr(m, name) for m in mods if hasattr(m, name))  # noqa: E731
    return pick("ClickException"), pick("Abort"), pick("Exit")


def main(argv: list[str] | None = None) -> None:
    click_error, click_abort, click_exit = _click_exception_types()
    try:
        # Without standalone mode click returns a command's exit code instead of exiting.
        code = app(args=argv, standalone_mode=False)
        if isinstance(code, int) and code != 0:
            raise SystemExit(code)
    except SparsescaleError as exc:
        fail(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
    except click_abort:
        print("sparsescale: aborted", file=sys.stderr)
        raise SystemExit(130)
    except click_error as exc:  # usage errors: bad flag, missing argument, bad choice
        fail(" ".join(exc.format_message().split()))
    except click_exit as exc:
        raise SystemExit(exc.exit_code)
    except KeyboardInterrupt:
        print("sparsescale: interrupted", file=sys.stderr)
        raise SystemExit(130)
