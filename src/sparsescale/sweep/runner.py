"""Calling a run's runner (module:function) in whichever process trains it: a
worker, a Ray task or one DDP rank (sweep/ddp.py); and tying such a process's
life to its parent's."""

from __future__ import annotations

import importlib
import inspect
import os
import threading
import time
from pathlib import Path
from typing import Any, Callable


def load_runner(name: str) -> Callable[..., dict[str, Any]]:
    module, _, func = name.partition(":")
    return getattr(importlib.import_module(module), func)


def call_runner(
    name: str, config: dict[str, Any], out_dir: Path, progress, data_fingerprint: str | None
) -> dict[str, Any]:
    """The runner `name` on one run (in the worker, or in each DDP rank)."""
    runner = load_runner(name)
    if data_fingerprint is not None and "data_fingerprint" in inspect.signature(runner).parameters:
        return runner(config, str(out_dir), progress, data_fingerprint=data_fingerprint)
    return runner(config, str(out_dir), progress)


def exit_with_parent(poll_s: float = 0.5) -> None:
    """Make this process die soon after its parent (the coordinator) does, so a
    killed sweep leaves no orphan training on. PDEATHSIG is immediate on Linux;
    the polling thread covers other systems and the race at start-up."""
    parent = os.getppid()
    try:
        import ctypes
        import signal

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:
        os._exit(1)

    def watch() -> None:
        while True:
            if os.getppid() != parent:
                os._exit(1)
            time.sleep(poll_s)

    threading.Thread(target=watch, daemon=True, name="parent-watch").start()
