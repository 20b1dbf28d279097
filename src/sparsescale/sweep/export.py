"""A store's results as one table that `sparsescale fit` reads directly:
columns sparsity, n_nonzero, tokens (or examples or steps) and loss, one row
per finished run of one sweep, plus descriptive columns (sweep name, pattern,
seed, model, FLOPs)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sparsescale.errors import SparsescaleError
from sparsescale.models.registry import BUDGET_AXES
from sparsescale.sweep.compute import compute_accounting
from sparsescale.sweep.lrscan import best_of_lr_scan
from sparsescale.sweep.spec import dense_tokens_of
from sparsescale.sweep.store import Store
from sparsescale.train.config import DEFAULT_LR


def budget_column(rows: list[dict[str, Any]]) -> str:
    """The data-budget unit the runs were specified in (their grid axis)."""
    for axis in BUDGET_AXES:
        if any(axis in r["axes"] for r in rows):
            return axis
    return "tokens"


def result_rows(
    store: Store, statuses=("finished",), sweep: str | None = None
) -> list[dict[str, Any]]:
    """One flat dict per run of the sweep called `sweep` (default: the store's
    only one) with the given statuses (the dense runs that from-dense runs
    continue excluded: they are a means, not a point).
    train_flops_* are a run's own training; total_flops_* add its dense
    prefix as if the run were trained alone, amortised_flops_sparse shares
    the prefix among its users (sparsescale.sweep.compute). A sweep that scans
    the learning rate (grid.lr) gives one row per grid point: its best lr's run
    (sweep/lrscan.py); the `lr` column says which lr that was."""
    ids = store.sweep_ids(sweep)
    name = sweep if sweep is not None else next((s["name"] for s in store.sweeps()), "")
    every = store.runs(sweep_id=ids)
    rows = [
        r for r in every if r["status"] in statuses and r["axes"].get("role") != "dense-pretrain"
    ]
    cost = compute_accounting(
        every
    )  # a pruned run's dense prefix is another row: its FLOPs count too
    rows, _ = best_of_lr_scan(rows)
    axis = budget_column(rows)
    out = []
    for r in rows:
        # The grid's D; for from-dense runs it is the total, dense part included.
        budget = r["axes"].get(axis, r[axis])
        d0 = dense_tokens_of(r["axes"])
        # Columns keep their names from before from_dense / dense_tokens (the CSV is
        # a format others read): init_from_dense is the dense fraction D0 / D (as
        # recorded, for stores that recorded it), dense_prefix is D0.
        fraction = r["axes"].get("init_from_dense", d0 / budget if budget else 0.0)
        out.append(
            {
                "sparsity": r["sparsity"],
                "n_nonzero": r["n_nonzero"],
                axis: budget,
                "loss": r["final_loss"],
                "sweep": name,
                "pattern": r["pattern"] or "unstructured",
                "seed": r["seed"],
                "model": r["model"],
                "init_from_dense": fraction,
                "status": r["status"],
                "total_params": r["total_params"],
                "embedding_params": r["embedding_params"],
                "train_flops_dense": r["train_flops_dense"],
                "train_flops_sparse": r["train_flops_sparse"],
                "wall_s": r["wall_s"],
                "config_hash": r["config_hash"],
                "lr": _lr(r),
                "dense_prefix": d0,
                "prefix_flops": cost[r["config_hash"]]["prefix_flops"],
                "total_flops_dense": cost[r["config_hash"]]["total_flops_dense"],
                "total_flops_sparse": cost[r["config_hash"]]["total_flops_sparse"],
                "amortised_flops_sparse": cost[r["config_hash"]]["amortised_flops_sparse"],
            }
        )
    return out


def _lr(run: dict[str, Any]) -> float:
    """The run's peak learning rate: its grid or [train] value, else the optimizer's default."""
    cfg = run["config"]
    return float(cfg.get("lr") or DEFAULT_LR[cfg.get("optimizer", "adafactor")])


def is_export(path: Path) -> bool:
    """Whether an existing file is an earlier export: its CSV header, or a
    Parquet file whose columns begin as ours do (any other table is someone's)."""
    with open(path, "rb") as f:
        head = f.read(64)
    if head.startswith(b"sparsity,n_nonzero,"):
        return True
    if not head.startswith(b"PAR1"):
        return False
    import pyarrow
    import pyarrow.parquet as pq

    try:
        return pq.read_schema(path).names[:2] == ["sparsity", "n_nonzero"]
    except (pyarrow.ArrowException, OSError):
        return False


def export(
    store_path: str | Path,
    csv: str | Path | None = None,
    parquet: str | Path | None = None,
    sweep: str | None = None,
) -> tuple[str, int]:
    """Write the finished runs of one sweep of a store (`sweep`: its name; default
    the only one) as CSV or Parquet, atomically, never over the store itself.
    With neither path, returns the CSV text instead. Returns (text, rows)."""
    import pandas as pd

    from sparsescale.atomic import atomic_path, check_output, write_text

    if csv and parquet:
        raise SparsescaleError("export: give csv or parquet, not both")
    for out, what in ((csv, "csv"), (parquet, "parquet")):
        if out:
            check_output(out, [store_path], what=what, ours=is_export)
    with Store(store_path, readonly=True) as store:
        rows = result_rows(store, sweep=sweep)
    if not rows:
        raise SparsescaleError(f"{store_path}: no finished runs to export yet")
    frame = pd.DataFrame(rows)
    if parquet:
        with atomic_path(parquet, suffix=".parquet") as tmp:
            frame.to_parquet(tmp, index=False)
        return "", len(frame)
    text = frame.to_csv(index=False)
    if csv:
        write_text(csv, text)
        return "", len(frame)
    return text, len(frame)
