"""Sparse training core: masks, schedules, the gradual pruner, sparse AdaFactor.

`from sparsescale.sparsity import GradualPruner, SparseAdafactor`. The torch-based
names load lazily so that `sparsescale.sparsity.schedules` (pure Python + numpy)
can be imported, e.g. by `laws/planning.py`, without importing torch.
"""

from __future__ import annotations

from typing import Any

_LAZY = {
    "GradualPruner": "sparsescale.sparsity.pruner",
    "select_prunable": "sparsescale.sparsity.selection",
    "select_embeddings": "sparsescale.sparsity.selection",
    "one_shot_prune": "sparsescale.sparsity.pruner",
    "select_token_embeddings": "sparsescale.sparsity.selection",
    "SelectionWarning": "sparsescale.sparsity.selection",
    "SparseAdafactor": "sparsescale.sparsity.adafactor",
    "save_sparse": "sparsescale.sparsity.export",
    "load_sparse": "sparsescale.sparsity.export",
    "sparsify_for_inference": "sparsescale.sparsity.export",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'sparsescale.sparsity' has no attribute {name!r}")


__all__ = list(_LAZY)
