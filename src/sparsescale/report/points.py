"""A sweep's runs as the report reads them: one sweep of a store (`collect`)
becomes the arrays the sparse law is fitted to, plus every run the curves
figure draws and the warnings and notes about what was left out. Every
section starts from these points (or from the store rows behind them)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sparsescale.errors import SparsescaleError
from sparsescale.sweep.export import budget_column
from sparsescale.sweep.lrscan import best_of_lr_scan
from sparsescale.sweep.spec import dense_tokens_of
from sparsescale.sweep.store import Store

MIN_POINTS = 8  # the sparse law has 7 free coefficients


@dataclass
class SweepPoints:
    """The runs of a store as arrays for the fitter, plus what was left out."""

    sparsity: np.ndarray
    n_nonzero: np.ndarray
    data: np.ndarray
    loss: np.ndarray
    budget_unit: str
    records: list[dict[str, Any]]  # every finished or diverged run, for the curves figure
    warnings: list[str]
    notes: list[str]
    family: str
    # (start, end) fractions of training over which the runs were pruned, as the runs recorded them
    prune_windows: list[tuple[float, float]] = field(default_factory=list)
    # a learning-rate scan's winners, one row per scanned grid point (sweep/lrscan.py); empty
    # without a scan
    lr_scan: list[dict[str, Any]] = field(default_factory=list)


def collect(store_path: str | Path, sweep: str | None = None) -> SweepPoints:
    """Read one sweep of a store (`sweep`: its name; default the only one):
    finished unstructured runs become fit points; diverged
    runs are reported and excluded; n:m runs and dense pretraining runs are
    described but not fitted (the sparse law is for unstructured sparsity)."""
    with Store(store_path, readonly=True) as store:
        ids = store.sweep_ids(sweep)
        runs = store.runs(sweep_id=ids)
        curves = store.curves()
        sweeps = [s for s in store.sweeps() if s["id"] in ids]
    if not runs:
        raise SparsescaleError(
            f"{store_path}: the store holds no runs; run `sparsescale sweep SPEC` first"
        )
    runs = [r for r in runs if r["axes"].get("role") != "dense-pretrain"]
    runs, lr_scan = best_of_lr_scan(runs)  # one run per grid point: its best learning rate
    unit = budget_column(runs)
    warnings: list[str] = list(lr_scan.warnings)
    notes = [s["note"] for s in sweeps if s.get("note")]
    if lr_scan.scanned:
        notes.append(
            f"learning-rate scan: each of the {len(lr_scan.rows)} scanned grid points is fitted "
            "with its "
            "best lr's run (lowest final loss); the table 'Learning rate per point' shows which "
            "lr won"
        )
    records, points = [], []
    families = sorted({r["model"] for r in runs if r["model"]})
    for r in runs:
        a = r["axes"]
        budget = a.get(unit, r.get(unit))
        label = f"S={r['sparsity']:g} N={a['n_nonzero']:,} {unit}={budget:,}"
        if r["status"] == "diverged":
            where = (
                f" at step {r['diverged_at_step']}" if r.get("diverged_at_step") is not None else ""
            )
            warnings.append(f"run {label} diverged{where}; it is excluded from the fit")
        if r["status"] in ("finished", "diverged"):
            records.append(
                {
                    "sparsity": r["sparsity"],
                    "n_nonzero_target": a["n_nonzero"],
                    "budget": budget,
                    "status": r["status"],
                    "curve": curves.get(r["config_hash"], []),
                }
            )
        if r["status"] != "finished":
            continue
        if (r["pattern"] or "unstructured") != "unstructured" or dense_tokens_of(a) > 0:
            continue
        if r["final_loss"] is None or not math.isfinite(r["final_loss"]):
            warnings.append(f"run {label} has no final loss; it is excluded from the fit")
            continue
        points.append((r["sparsity"], r["n_nonzero"], budget, r["final_loss"]))
    not_done = [r for r in runs if r["status"] in ("pending", "running", "failed")]
    if not_done:
        warnings.append(
            f"{len(not_done)} runs are not finished (pending, running or failed); "
            "the fit uses the finished ones"
        )
    others = [
        r
        for r in runs
        if r["status"] == "finished"
        and ((r["pattern"] or "unstructured") != "unstructured" or dense_tokens_of(r["axes"]) > 0)
    ]
    if others:
        notes.append(
            f"{len(others)} finished n:m or pruned-from-dense runs are left out of this law (it is "
            "for unstructured sparsity trained from scratch); their own sections below fit them"
        )
    if len(points) < MIN_POINTS:
        raise SparsescaleError(
            f"{store_path}: {len(points)} finished runs; fitting the sparse law needs at "
            f"least {MIN_POINTS} (it has 7 coefficients)"
        )
    arr = np.array(points, dtype=float)
    if len(set(arr[:, 0])) < 2:
        raise SparsescaleError(
            f"{store_path}: every finished run has sparsity {arr[0, 0]:g}; the sparse law "
            "needs at least two sparsities"
        )
    windows = sorted(
        {pruning_window(r) for r in runs if r["status"] == "finished" and r["sparsity"]}
    )
    return SweepPoints(
        arr[:, 0],
        arr[:, 1],
        arr[:, 2],
        arr[:, 3],
        unit,
        records,
        warnings,
        notes,
        ",".join(families),
        windows,
        lr_scan=lr_scan.rows,
    )


def main_budget(pts: SweepPoints) -> tuple[float, float]:
    """(N, C) of the report's main recommendation: the largest N of the sweep
    trained on its longest D, C = 6 N D in the law's unit."""
    n_max = float(pts.n_nonzero.max())
    return n_max, 6.0 * n_max * float(pts.data.max())


def pruning_window(run: dict[str, Any]) -> tuple[float, float]:
    """A store run's pruning window: from its RunResult, else its config, else the
    RunConfig defaults (which stores written before the window was recorded used)."""
    from sparsescale.train.config import RunConfig

    result, config = run.get("result"), run.get("config") or {}
    out = []
    for key in ("prune_start", "prune_end"):
        value = getattr(result, key, None)
        value = config.get(key) if value is None else value
        out.append(float(RunConfig.model_fields[key].default if value is None else value))
    return out[0], out[1]
