"""Helpers for the hostile suite, in a uniquely named module (every test folder
has a conftest.py, so `from conftest import ...` is order-dependent)."""

from __future__ import annotations

import hashlib
import signal
import subprocess
import sys
from pathlib import Path


def default_sigint() -> None:
    """preexec_fn for children that a test interrupts: a shell that starts a job
    in the background (as CI may) sets SIGINT to ignored, children inherit that
    and Python keeps it, so restore the default a terminal's Ctrl-C meets."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def cli_argv(*args) -> list[str]:
    return [sys.executable, "-c", "from sparsescale.cli import main; main()", *map(str, args)]


def cli(*args, timeout: float = 300, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run(cli_argv(*args), capture_output=True, text=True, timeout=timeout, cwd=cwd)


def one_line(done: subprocess.CompletedProcess, status: int = 2, *needles: str) -> str:
    """Assert the promise: this exit status, one line on stderr, no traceback."""
    lines = done.stderr.strip().splitlines()
    assert done.returncode == status, (done.returncode, done.stderr[-3000:])
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    assert len(lines) == 1, done.stderr[-3000:]
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def digest(*paths: Path) -> dict[str, str | None]:
    """Content hash of each path and of its SQLite companions (-wal, -shm):
    a store that was only opened for writing grows a -wal file."""
    out = {}
    for p in paths:
        for q in (p, p.with_name(p.name + "-wal"), p.with_name(p.name + "-shm")):
            out[str(q)] = hashlib.sha256(q.read_bytes()).hexdigest() if q.exists() else None
    return out


TINY = (
    "--params",
    "10k",
    "--steps",
    "6",
    "--batch",
    "4",
    "--seq-len",
    "32",
    "--threads",
    "1",
    "--eval-tokens",
    "256",
    "--quiet",
)


def train(corpus: Path, out: Path, *extra, timeout: float = 300) -> subprocess.CompletedProcess:
    return cli("train", *TINY, "--corpus", corpus, "--out", out, *extra, timeout=timeout)


_BATCH = r"""
import contextlib, io, json, os, sys
from sparsescale.cli import main
out = []
for argv in json.loads(sys.argv[1]):
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            main(argv)
            rc = 0
        except SystemExit as exc:
            rc = exc.code if isinstance(exc.code, int) else 1
    out.append({"rc": rc, "stderr": err.getvalue()})
print(json.dumps(out))
"""


def cli_batch(*argvs, timeout: float = 300, cwd=None) -> list[subprocess.CompletedProcess]:
    """Several refusals in ONE subprocess (each `main(argv)` in turn, its stderr
    captured): the interpreter and torch start once, not once per case. Only for
    cases that stop before any work; a case that trains gets its own `cli`."""
    import json

    done = subprocess.run(
        [sys.executable, "-c", _BATCH, json.dumps([list(map(str, a)) for a in argvs])],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return [
        subprocess.CompletedProcess(list(a), r["rc"], "", r["stderr"])
        for a, r in zip(argvs, json.loads(done.stdout.strip().splitlines()[-1]))
    ]


def tree(folder: Path) -> dict[str, str | None]:
    """Every path under `folder` with its content hash (None for a folder): what
    a refused command must leave exactly as it was."""
    return {
        str(p.relative_to(folder)): (
            hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else None
        )
        for p in sorted(folder.rglob("*"))
    }
