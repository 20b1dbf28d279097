"""A run's checkpoint: save and load, and the --init-from checkpoint of a dense run.

The checkpoint holds the model, optimizer and pruner state, the per-step
losses and the loop's bookkeeping, plus the run's identity, so that resuming
computes exactly what an uninterrupted run does and a folder holding another
run's checkpoint is refused. Writes are atomic (a killed save leaves the last
good checkpoint).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from sparsescale.atomic import atomic_path
from sparsescale.errors import SparsescaleError
from sparsescale.train.config import RunConfig

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


def save(path: Path, cfg: RunConfig, model_config, model, optimizer, pruner, losses, state: dict) -> None:
    import torch

    payload = {
        "family": cfg.model, "model_config": dataclasses.asdict(model_config), "identity": cfg.identity(),
        "model": model.state_dict(), "optimizer": optimizer.state_dict(), "pruner": pruner.state_dict(),
        "losses": losses.cpu(), "state": dict(state),
    }
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def load(path: Path, cfg: RunConfig, device, model, optimizer, pruner, losses, state: dict) -> None:
    """Restore a checkpoint into the freshly built objects (in place)."""
    import torch

    ckpt = torch.load(path, map_location=device, weights_only=True)
    if not same_run(ckpt.get("identity"), cfg):
        raise SparsescaleError(
            f"--out {path.parent}: holds a checkpoint of a different run; use a new --out folder or delete {path}"
        )
    model.load_state_dict(ckpt["model"])
    optimizer.load_state_dict(ckpt["optimizer"])
    pruner.load_state_dict(ckpt["pruner"])
    losses.copy_(ckpt["losses"])
    state.update(ckpt["state"])


def load_init_checkpoint(path: str) -> dict:
    """The checkpoint a run is initialised from (memory-mapped: only the weights are read)."""
    import torch

    if "://" in str(path):   # a storage URI (a sweep's dense prefix on another node's storage)
        return _load_init_uri(str(path))
    p = Path(path).expanduser()
    if not p.is_file():
        raise SparsescaleError(f"--init-from {p}: no such checkpoint file")
    try:
        return torch.load(p, map_location="cpu", weights_only=True, mmap=True)
    except Exception as exc:  # not a torch file / not ours
        raise SparsescaleError(f"--init-from {p}: not a sparsescale checkpoint ({type(exc).__name__})") from None


def _load_init_uri(uri: str) -> dict:
    import io

    import torch

    from sparsescale.storage import read_bytes

    data = read_bytes(uri, "--init-from")
    try:
        return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:  # not a torch file / not ours
        raise SparsescaleError(f"--init-from {uri}: not a sparsescale checkpoint ({type(exc).__name__})") from None


def model_config_from_checkpoint(cfg: RunConfig, ckpt: dict):
    from sparsescale.models.sizing import config_class

    if ckpt.get("family") != cfg.model or "model_config" not in ckpt:
        raise SparsescaleError(
            f"--init-from {cfg.init_from}: holds a {ckpt.get('family')!r} model, this run is {cfg.model!r}"
        )
    return config_class(cfg.model)(**ckpt["model_config"])
