"""A store's results as one table that `sparsescale fit` reads directly:
columns sparsity, n_nonzero, tokens (or examples or steps) and loss, one row
per finished run, plus descriptive columns (pattern, seed, model, FLOPs)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sparsescale.errors import SparsescaleError
from sparsescale.models.registry import BUDGET_AXES
from sparsescale.sweep.store import Store


def budget_column(rows: list[dict[str, Any]]) -> str:
    """The data-budget unit the runs were specified in (their grid axis)."""
    for axis in BUDGET_AXES:
        if any(axis in r["axes"] for r in rows):
            return axis
    return "tokens"


def result_rows(store: Store, statuses=("finished",)) -> list[dict[str, Any]]:
    """One flat dict per run with the given statuses (dense pretraining runs
    of `init_from_dense` experiments excluded: they are a means, not a point)."""
    rows = [r for r in store.runs(status=statuses) if r["axes"].get("role") != "dense-pretrain"]
    axis = budget_column(rows)
    out = []
    for r in rows:
        # The grid's D; for init_from_dense runs it is the total, dense part included.
        budget = r["axes"].get(axis, r[axis])
        out.append({
            "sparsity": r["sparsity"], "n_nonzero": r["n_nonzero"], axis: budget, "loss": r["final_loss"],
            "pattern": r["pattern"] or "unstructured", "seed": r["seed"], "model": r["model"],
            "init_from_dense": r["axes"].get("init_from_dense", 0.0), "status": r["status"],
            "total_params": r["total_params"], "embedding_params": r["embedding_params"],
            "train_flops_dense": r["train_flops_dense"], "train_flops_sparse": r["train_flops_sparse"],
            "wall_s": r["wall_s"], "config_hash": r["config_hash"],
        })
    return out


def export(store_path: str | Path, csv: str | Path | None = None, parquet: str | Path | None = None) -> tuple[str, int]:
    """Write the finished runs of a store as CSV or Parquet (atomically).
    With neither path, returns the CSV text instead. Returns (text, rows)."""
    import pandas as pd

    from sparsescale.atomic import atomic_path

    if csv and parquet:
        raise SparsescaleError("export: give --csv or --parquet, not both")
    with Store(store_path, readonly=True) as store:
        rows = result_rows(store)
    if not rows:
        raise SparsescaleError(f"{store_path}: no finished runs to export yet")
    frame = pd.DataFrame(rows)
    if parquet:
        with atomic_path(parquet, suffix=".parquet") as tmp:
            frame.to_parquet(tmp, index=False)
        return "", len(frame)
    text = frame.to_csv(index=False)
    if csv:
        from sparsescale.atomic import write_text

        write_text(csv, text)
        return "", len(frame)
    return text, len(frame)
