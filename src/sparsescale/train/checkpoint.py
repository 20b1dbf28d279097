"""A run's checkpoint: save and load, and the --init-from checkpoint of a dense run.

The checkpoint holds the model, optimizer and pruner state, the per-step
losses and the loop's bookkeeping, plus the run's identity, so that resuming
computes exactly what an uninterrupted run does and a folder holding another
run's checkpoint is refused. It also holds a hash of what the saved state
depends on (the identity and the training data's content): a resume after the
corpus changed would train one curve on two texts, so such a checkpoint, like
an unreadable one, is moved aside with a one-line warning and the run starts
over. Writes are atomic (a killed save leaves the last good checkpoint).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import sys
import time
from pathlib import Path
from typing import Any

from sparsescale.atomic import atomic_path
from sparsescale.errors import SparsescaleError
from sparsescale.hashing import file_digest
from sparsescale.train.config import RunConfig
from sparsescale.train.state import RunState

CHECKPOINT = "checkpoint.pt"


def same_run(stored: dict[str, Any] | None, cfg: RunConfig) -> bool:
    """Whether a stored identity is this config's. Files written before eval_every
    joined the identity (sparsescale 0.1) lack that key and still match."""
    if not isinstance(stored, dict):
        return False
    mine = cfg.identity()
    if "eval_every" not in stored:
        mine = {k: v for k, v in mine.items() if k != "eval_every"}
    return stored == mine


def depends_hash(cfg: RunConfig, data_key: str | None) -> str:
    """What a checkpoint's state depends on: the run's identity, the content of
    its training data (the corpus cache key hashes the files' bytes) and of the
    --init-from weights it started from."""
    init = _init_digest(cfg.init_from) if cfg.init_from else None
    # sort_keys: one identity always serialises to the same bytes, hence the
    # same hash; default=str writes values JSON cannot hold (a Path) as text
    blob = json.dumps(
        {"identity": cfg.identity(), "data": data_key, "init_from": init},
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(blob.encode()).hexdigest()


def _init_digest(location: str) -> str:
    # a storage URI (a sweep's dense prefix): the same digest of the same bytes
    if "://" in location:
        from sparsescale.storage import read_bytes

        return hashlib.blake2b(read_bytes(location, "--init-from"), digest_size=16).hexdigest()
    return file_digest(Path(location).expanduser())


def set_aside(path: Path, reason: str) -> Path:
    """Rename a checkpoint that cannot be resumed to checkpoint.pt.bad-<time>
    (kept for inspection, never deleted) and say so in one line on stderr."""
    dest = path.with_name(f"{path.name}.bad-{time.strftime('%Y%m%d-%H%M%S')}")
    n = 1
    # two set-asides within one second (a retried resume) get -1, -2, ...: an
    # earlier bad checkpoint is never overwritten
    while dest.exists():
        dest = path.with_name(f"{path.name}.bad-{time.strftime('%Y%m%d-%H%M%S')}-{n}")
        n += 1
    try:
        path.rename(dest)
    except FileNotFoundError:  # another rank of the same torchrun job moved it first
        return dest
    print(
        f"sparsescale: warning: {path}: {reason}; moved to {dest.name}, the run starts over",
        file=sys.stderr,
    )
    return dest


def save(
    path: Path,
    cfg: RunConfig,
    model_config,
    model,
    optimizer,
    pruner,
    losses,
    state: RunState,
    depends: str | None = None,
) -> None:
    """Write the checkpoint atomically. The payload's keys are the on-disk
    format (`_PARTS` must be present for `read` to accept a file); the state
    goes as RunState.to_dict(), a plain dict, as it always has."""
    import torch

    # The on-disk format (old files must keep loading): the family and
    # model config (so an --init-from run can rebuild the shape without sizing),
    # the identity (checked before anything loads), the tensors' state dicts
    # and the RunState as a plain dict. The losses go to the CPU: a checkpoint
    # written on a GPU must load on a CPU-only node of a sweep.
    payload = {
        "family": cfg.model,
        "model_config": dataclasses.asdict(model_config),
        "identity": cfg.identity(),
        "depends": depends,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "pruner": pruner.state_dict(),
        "losses": losses.cpu(),
        "state": state.to_dict(),
    }
    # Atomicity: torch.save writes a temporary file in the same folder, and only
    # a complete write is renamed over checkpoint.pt (os.replace, atomic within
    # one file system). A kill mid-save leaves the previous checkpoint intact and
    # a stray temporary, never a torn checkpoint.pt.
    with atomic_path(path) as tmp:
        try:
            torch.save(payload, tmp)
        except RuntimeError as exc:
            # torch reports a failed write (disk full, quota) as a RuntimeError of its zip writer;
            # as an OSError, atomic_path turns it into one line and keeps the last good checkpoint.
            raise OSError(
                f"the write failed, is the disk full? ({' '.join(str(exc).split())[:120]})"
            ) from None


_PARTS = ("model", "optimizer", "pruner", "losses", "state")


def read(path: Path, cfg: RunConfig, device, depends: str | None, n_steps: int) -> dict | None:
    """The checkpoint at `path` if it can resume this run; None after setting
    aside one that is unreadable or whose data changed. Raises SparsescaleError
    for another run's checkpoint (the folder belongs to that run)."""
    import torch

    try:
        # weights_only: a checkpoint is data, never code to run (torch.load would
        # otherwise unpickle arbitrary objects from a file in a shared folder)
        ckpt = torch.load(path, map_location=device, weights_only=True)
        if not isinstance(ckpt, dict) or any(k not in ckpt for k in _PARTS):
            raise ValueError("parts missing")
    except Exception as exc:  # noqa: BLE001 -- truncated, empty, not a torch file: all unreadable
        set_aside(path, f"unreadable checkpoint ({type(exc).__name__})")
        return None
    # identity before data: another run's checkpoint is an error (the folder is
    # taken), while changed data only makes this run's own checkpoint stale
    if not same_run(ckpt.get("identity"), cfg):
        raise SparsescaleError(
            f"--out {path.parent}: holds a checkpoint of a different run; use a new --out folder "
            f"or delete {path}"
        )
    if ckpt.get("depends") != depends:
        set_aside(
            path, "saved with other training data (the corpus changed since) or by an older version"
        )
        return None
    # Same identity but another step count: the budget resolved to other steps
    # (a changed batch default, say); its schedule positions would not match.
    if tuple(ckpt["losses"].shape) != (n_steps,):
        set_aside(path, "its step count does not match this run")
        return None
    return ckpt


def restore(ckpt: dict, model, optimizer, pruner, losses) -> RunState:
    """Load a checkpoint's tensors into the freshly built objects (in place) and
    return its RunState. The optimizer state carries the pruner's masks'
    effect on the moments, and the pruner state its masks and schedule
    position, so the next step is the one the uninterrupted run would take."""
    model.load_state_dict(ckpt["model"])
    optimizer.load_state_dict(ckpt["optimizer"])
    pruner.load_state_dict(ckpt["pruner"])
    # copy_ into the existing tensor: the loop writes each step's loss into this
    # very tensor (on the device), so it must hold the restored values in place
    losses.copy_(ckpt["losses"])
    return RunState.from_dict(ckpt["state"])


def load_init_checkpoint(path: str) -> dict:
    """The checkpoint a run is initialised from (memory-mapped: only the weights are read)."""
    import torch

    if "://" in str(path):  # a storage URI (a sweep's dense prefix on another node's storage)
        return _load_init_uri(str(path))
    p = Path(path).expanduser()
    if not p.is_file():
        raise SparsescaleError(f"--init-from {p}: no such checkpoint file")
    try:
        # mmap: only the model's tensors are read from disk, not the optimizer
        # state beside them (for AdamW twice the weights' size)
        return torch.load(p, map_location="cpu", weights_only=True, mmap=True)
    except Exception as exc:  # not a torch file / not ours
        raise SparsescaleError(
            f"--init-from {p}: not a sparsescale checkpoint ({type(exc).__name__})"
        ) from None


def _load_init_uri(uri: str) -> dict:
    import io

    import torch

    from sparsescale.storage import read_bytes

    data = read_bytes(uri, "--init-from")
    try:
        return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:  # not a torch file / not ours
        raise SparsescaleError(
            f"--init-from {uri}: not a sparsescale checkpoint ({type(exc).__name__})"
        ) from None


def model_config_from_checkpoint(cfg: RunConfig, ckpt: dict):
    from sparsescale.models.sizing import config_class

    if ckpt.get("family") != cfg.model or "model_config" not in ckpt:
        raise SparsescaleError(
            f"--init-from {cfg.init_from}: holds a {ckpt.get('family')!r} model, this run is "
            f"{cfg.model!r}"
        )
    return config_class(cfg.model)(**ckpt["model_config"])
