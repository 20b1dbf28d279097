"""What a worker does with one run, whichever executor started it.

A task is plain data (config hash, RunConfig fields, out_dir, runner name), so
it crosses process and machine boundaries as is. The worker returns the result
dict; it never touches the store.
"""

from __future__ import annotations

import importlib
import os
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

from sparsescale.train.lock import RunFolderLock
from sparsescale.train.result import RESULT, read_result

DEFAULT_RUNNER = "sparsescale.sweep.worker:train_run"


@dataclass(frozen=True)
class RunTask:
    config_hash: str
    config: dict[str, Any]
    out_dir: str
    runner: str = DEFAULT_RUNNER

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def load_runner(name: str) -> Callable[..., dict[str, Any]]:
    module, _, func = name.partition(":")
    return getattr(importlib.import_module(module), func)


def execute(task: RunTask, progress: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Run one task to its result dict.

    A per-run lock on out_dir keeps two processes from ever training the same
    run at once (e.g. an orphan of a killed coordinator that has not noticed
    yet). A result already on disk is returned as is: the coordinator died
    after the run finished but before it was recorded."""
    out_dir = Path(task.out_dir)
    with RunFolderLock(out_dir, wait=True):   # the same lock `sparsescale train` takes
        (out_dir / "worker.pid").write_text(f"{os.getpid()}\n")
        done = read_result(out_dir / RESULT)   # None for a torn or foreign file: train again
        if done is not None:
            return done.to_dict()
        runner = load_runner(task.runner)
        return runner(dict(task.config), str(out_dir), progress)


def train_run(config: dict[str, Any], out_dir: str, progress: Callable | None = None) -> dict[str, Any]:
    """The product runner: one real training run through sparsescale.train."""
    from sparsescale.train.config import RunConfig
    from sparsescale.train.run import train

    config = dict(config)
    init_from = config.get("init_from")
    if isinstance(init_from, str) and init_from.startswith("@"):
        # "@<hash>": the final checkpoint of a dense run in a sibling folder.
        config["init_from"] = _dense_checkpoint(Path(out_dir).parent / init_from[1:17])
    return train(RunConfig(**config), out_dir, quiet=True, progress=progress).to_dict()


def _dense_checkpoint(run_dir: Path) -> str:
    from sparsescale.train.checkpoint import CHECKPOINT

    path = run_dir / CHECKPOINT   # a finished run's last checkpoint is its final state
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint of the dense pretraining run in {run_dir}")
    return str(path)


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
