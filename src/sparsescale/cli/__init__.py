"""Command-line entry point: `sparsescale COMMAND`, one module per command.

Command modules stay thin: parse flags, call one library function, print.
What two of them share is in common.py (and the parameter -> flag table in
flags.py); a command module never imports another one. Heavy imports (torch,
pandas, matplotlib) happen inside command bodies so that `sparsescale --help`
and the law commands start fast, and the law commands run without torch.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from sparsescale.cli.app import app
from sparsescale.cli.common import fail, is_torch_missing, torch_missing_line
from sparsescale.errors import SparsescaleError

# Registration by import: each module adds its command to `app`, in this
# order in `sparsescale --help`.
_COMMANDS = (
    "fit",
    "predict",
    "optimal",
    "from_dense",
    "choose_pattern",
    "next_runs",
    "train",
    "sweep",
    "export",
    "report",
    "preset",
    "demo",
    "bench_kernels",
)
for _module in _COMMANDS:
    __import__(f"sparsescale.cli.{_module}")


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

    folder = (
        Path(os.environ.get("SPARSESCALE_CACHE") or Path.home() / ".cache" / "sparsescale")
        / "crashes"
    )
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
        if code == 130:  # typer turns Ctrl-C into a silent return of 130
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
    except ModuleNotFoundError as exc:
        # a command that needs torch checks for it first (common.require_torch);
        # this catches a path deeper down that imports it without the check
        if not is_torch_missing(exc):
            _unexpected(argv, exc)
        print(torch_missing_line(_command(argv) or "COMMAND"), file=sys.stderr)
        raise SystemExit(2)
    except BrokenPipeError:  # `sparsescale export ... | head`: the reader left; not an error
        os._exit(0)
    except OSError as exc:
        if exc.filename is None:
            _unexpected(argv, exc)
        fail(f"{exc.filename}: {exc.strerror or exc}")
    except Exception as exc:  # noqa: BLE001 -- the last line of defence: a bug, reported in one line
        _unexpected(argv, exc)


def _unexpected(argv: list[str] | None, exc: BaseException) -> None:
    log = crash_log(_command(argv))
    exc = exc.__cause__ or exc  # typer wraps an EOFError in an empty Abort: name the real one
    what = " ".join(f"{type(exc).__name__}: {exc}".split())[:200]
    print(
        f"sparsescale {_command(argv)}: internal error ({what}); this is a bug in sparsescale, "
        f"the full traceback is in {log}",
        file=sys.stderr,
    )
    raise SystemExit(1)
