"""Command-line entry point: `sparsescale fit|predict|optimal|train|sweep|export|report|demo`.

Command modules stay thin: parse flags, call one library function, print.
Heavy imports (torch, pandas, matplotlib) happen inside command bodies so that
`sparsescale --help` and the numerics-only commands start fast.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from sparsescale.cli.app import app
from sparsescale.errors import SparsescaleError

# Registration by import: each module adds its commands to `app`.
for _optional in ("laws", "design", "train", "sweep", "kernels"):
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


def _command(argv: list[str] | None) -> str:
    args = sys.argv[1:] if argv is None else argv
    return next((a for a in args if not a.startswith("-")), "")


def crash_log(command: str) -> Path:
    """Write the current exception's full traceback to a log file; return its path."""
    import tempfile
    import time
    import traceback

    folder = Path(os.environ.get("SPARSESCALE_CACHE") or Path.home() / ".cache" / "sparsescale") / "crashes"
    text = f"sparsescale {' '.join(sys.argv[1:])}\n\n{traceback.format_exc()}"
    for where in (folder, Path(tempfile.gettempdir())):
        try:
            where.mkdir(parents=True, exist_ok=True)
            path = where / f"crash-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log"
            path.write_text(text, encoding="utf-8")
            return path
        except OSError:
            continue
    return Path("(the traceback could not be saved)")


def main(argv: list[str] | None = None) -> None:
    """Run a command. Exit 0 on success, 2 with one line for a user's mistake
    (bad input, a path that cannot be written), 130 on Ctrl-C, and 1 with one
    line plus a traceback log for anything else (a bug): never a raw stack."""
    click_error, click_abort, click_exit = _click_exception_types()
    try:
        # Without standalone mode click returns a command's exit code instead of exiting.
        code = app(args=argv, standalone_mode=False)
        if code == 130:   # typer turns Ctrl-C into a silent return of 130
            print("sparsescale: interrupted", file=sys.stderr)
        if isinstance(code, int) and code != 0:
            raise SystemExit(code)
    except SparsescaleError as exc:
        fail(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
    except click_abort as exc:
        # click turns Ctrl-C into Abort (and EOFError too: that one is a bug, below)
        if isinstance(exc.__context__, EOFError):
            _unexpected(argv, exc.__context__)
        print("sparsescale: interrupted", file=sys.stderr)
        raise SystemExit(130)
    except click_error as exc:  # usage errors: bad flag, missing argument, bad choice
        fail(" ".join(exc.format_message().split()))
    except click_exit as exc:
        raise SystemExit(exc.exit_code)
    except KeyboardInterrupt:
        print("sparsescale: interrupted", file=sys.stderr)
        raise SystemExit(130)
    except BrokenPipeError:   # `sparsescale export ... | head`: the reader left; not an error
        os._exit(0)
    except OSError as exc:
        if exc.filename is None:
            _unexpected(argv, exc)
        fail(f"{exc.filename}: {exc.strerror or exc}")
    except Exception as exc:  # noqa: BLE001 -- the last line of defence: a bug, reported in one line
        _unexpected(argv, exc)


def _unexpected(argv: list[str] | None, exc: BaseException) -> None:
    log = crash_log(_command(argv))
    exc = exc.__cause__ or exc   # typer wraps an EOFError in an empty Abort: name the real one
    what = " ".join(f"{type(exc).__name__}: {exc}".split())[:200]
    print(f"sparsescale {_command(argv)}: internal error ({what}); this is a bug in sparsescale, "
          f"the full traceback is in {log}", file=sys.stderr)
    raise SystemExit(1)
