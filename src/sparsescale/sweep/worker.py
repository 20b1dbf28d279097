"""What a worker does with one run, whichever executor started it.

A task is plain data (config hash, RunConfig fields, the run's durable folder,
runner name), so it crosses process and machine boundaries as is. The worker
returns the result dict and where the attempt ran; it never touches the store.

The durable folder is a path (trained in place: a local disk, or a network
filesystem every node mounts) or a storage URI (staged: trained in this
node's scratch folder and mirrored to the URI, see sparsescale.storage).
Either way a retry on any node resumes from the last durable checkpoint.
"""

from __future__ import annotations

import os
import platform
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

from sparsescale.errors import SparsescaleError
from sparsescale.locks import RunFolderLock
from sparsescale.storage import LOCAL_ONLY, RunMirror, is_uri, join, scratch_root
from sparsescale.sweep.runner import call_runner, exit_with_parent, load_runner  # noqa: F401  (public here too)
from sparsescale.train.result import RESULT, read_result

DEFAULT_RUNNER = "sparsescale.sweep.worker:train_run"
MIRROR_EVERY_S = 1.0  # how often a staged run's new checkpoints are copied to storage


@dataclass(frozen=True)
class RunTask:
    config_hash: str
    config: dict[str, Any]
    out_dir: str  # the run's durable folder: a path or a storage URI
    runner: str = DEFAULT_RUNNER
    # The coordinator's fingerprint of the run's training tokens: a node whose
    # own corpus cache differs refuses to train (None: not checked).
    data_fingerprint: str | None = None
    # Processes of one DDP run (a sweep's integer gpus_per_run above 1): the
    # worker launches them (sweep/ddp.py). 1: the run trains in the worker itself.
    world_size: int = 1

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def node_name() -> str:
    """The Ray node id when running under Ray, else the host name."""
    try:
        import ray

        if ray.is_initialized():
            return ray.get_runtime_context().get_node_id()
    except ImportError:
        pass
    return platform.node()


def execute(
    task: RunTask, progress: Callable[[dict[str, Any]], None] | None = None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Run one task: (its result dict, the attempt: node, pid and whether it
    resumed from durable files).

    A per-run lock keeps two processes of a node from ever training the same
    run at once (e.g. an orphan of a killed coordinator that has not noticed
    yet). A result already in the durable folder is returned as is: the
    coordinator died after the run finished but before it was recorded."""
    attempt = {"node": node_name(), "pid": os.getpid()}
    config = _resolve_init_from(dict(task.config), task.out_dir)
    if not is_uri(task.out_dir):
        out_dir = Path(task.out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        with RunFolderLock(out_dir, wait=True):  # the same lock `sparsescale train` takes
            attempt["resumed"] = any(p.name not in LOCAL_ONLY for p in out_dir.iterdir())
            return _run(task, config, out_dir, progress), attempt
    local = scratch_root() / "runs" / task.config_hash[:16]
    # pull() replaces the staging folder: the lock lives in a folder of its own
    with RunFolderLock(scratch_root() / "locks" / task.config_hash[:16], wait=True):
        mirror = RunMirror(task.out_dir, local)
        attempt["resumed"] = bool(mirror.pull())
        mirror.start(MIRROR_EVERY_S)
        try:
            result = _run(task, config, local, progress)
        finally:
            mirror.stop()  # the last checkpoint (and the result) reach storage first
        shutil.rmtree(local, ignore_errors=True)  # durable now: scratch keeps nothing
        return result, attempt


def _run(task: RunTask, config: dict[str, Any], out_dir: Path, progress) -> dict[str, Any]:
    (out_dir / "worker.pid").write_text(f"{os.getpid()}\n")
    done = read_result(out_dir / RESULT)  # None for a torn or foreign file: train again
    if done is not None:
        return done.to_dict()
    if task.world_size > 1:
        from sparsescale.sweep.ddp import run_ranks

        return run_ranks(
            task.runner, config, out_dir, task.world_size, progress, task.data_fingerprint
        )
    return call_runner(task.runner, config, out_dir, progress, task.data_fingerprint)


def _resolve_init_from(config: dict[str, Any], out_dir: str) -> dict[str, Any]:
    """ "@<hash>" in init_from (a from-dense run planned by the sweep): the final
    checkpoint of the dense run it continues, in the sibling durable folder. A URI stays a
    URI (the checkpoint is read from storage), so the run's identity is the same on every
    node."""
    from sparsescale.storage import exists
    from sparsescale.train.checkpoint import CHECKPOINT

    init_from = config.get("init_from")
    if isinstance(init_from, str) and init_from.startswith("@"):
        parent = (
            out_dir.rstrip("/").rsplit("/", 1)[0] if is_uri(out_dir) else str(Path(out_dir).parent)
        )
        path = join(
            join(parent, init_from[1:17]), CHECKPOINT
        )  # a finished run's last checkpoint: its final state
        if not exists(path):
            raise FileNotFoundError(f"no checkpoint of the dense pretraining run at {path}")
        config["init_from"] = path
    return config


def train_run(
    config: dict[str, Any],
    out_dir: str,
    progress: Callable | None = None,
    data_fingerprint: str | None = None,
) -> dict[str, Any]:
    """The product runner: one real training run through sparsescale.train.
    With `data_fingerprint`, first checks that this node's tokens are the coordinator's."""
    from sparsescale.train.config import RunConfig
    from sparsescale.train.plan import data_for
    from sparsescale.train.run import train

    cfg = RunConfig(**config)
    if data_fingerprint is not None:
        mine = getattr(data_for(cfg)[1], "fingerprint", None)
        if mine is not None and mine != data_fingerprint:
            raise SparsescaleError(
                f"corpus {cfg.corpus or 'default'}: this node's tokens (fingerprint {mine[:12]}) "
                "differ from "
                f"the coordinator's ({data_fingerprint[:12]}); give every node the same corpus "
                "files"
            )
    return train(cfg, out_dir, quiet=True, progress=progress).to_dict()
