"""A learning-rate scan: `grid.lr = [...]` trains every grid point once per lr;
a law is fitted to the best of them.

A scaling law describes the loss a size reaches when it is trained well, and
the best learning rate shifts with N (smaller for wider models): one lr for
every size makes the large models' points worse than they could be and bends
the fitted exponent. So every reader of a store (the export `fit` reads, the
report, its n:m and pretrained sections) keeps, for each grid point that was
scanned (every axis but lr: S, N, D, pattern, seed, dense prefix), the
finished run with the lowest final loss, and reports which lr won. A winner at
the smallest or largest lr scanned is flagged: the best lr may lie beyond the
range, and the point's loss is then an upper bound on the well-tuned loss.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from sparsescale.sweep.spec import dense_tokens_of

LR_AXIS = "lr"


@dataclass
class LrScan:
    """The outcome of a store's lr scan: one row per scanned grid point, and the
    warnings for winners at an edge of the range."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def scanned(self) -> bool:
        return bool(self.rows)


def _point(run: dict[str, Any]) -> tuple:
    return tuple(sorted((k, v) for k, v in run["axes"].items() if k != LR_AXIS))


_SHORT = {"sparsity": "S", "n_nonzero": "N"}


def _label(axes: dict[str, Any]) -> str:
    parts = []
    for k in (
        "sparsity",
        "n_nonzero",
        "tokens",
        "examples",
        "steps",
        "pattern",
        "seed",
        "dense_tokens",
    ):
        v = dense_tokens_of(axes) if k == "dense_tokens" else axes.get(k)
        if v is None or (k == "dense_tokens" and not v) or (k == "pattern" and v == "unstructured"):
            continue
        text = (
            f"{v:,}"
            if isinstance(v, int) and not isinstance(v, bool)
            else f"{v:g}"
            if isinstance(v, float)
            else v
        )
        parts.append(f"{_SHORT.get(k, k)}={text}")
    return " ".join(parts)


def best_of_lr_scan(runs: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], LrScan]:
    """(the runs with every finished run that lost its lr scan removed, the scan's
    summary). Runs without an lr axis pass through untouched; unfinished runs
    are kept so that the readers still count and report them."""
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for r in runs:
        if LR_AXIS in r["axes"]:
            groups.setdefault(_point(r), []).append(r)
    scan = LrScan()
    losers: set[str] = set()
    for members in groups.values():
        scanned = sorted({float(r["axes"][LR_AXIS]) for r in members})
        done = [
            r
            for r in members
            if r["status"] == "finished"
            and r["final_loss"] is not None
            and math.isfinite(r["final_loss"])
        ]
        if not done:
            continue
        best = min(done, key=lambda r: (r["final_loss"], r["axes"][LR_AXIS]))
        losers |= {r["config_hash"] for r in done if r is not best}
        lr = float(best["axes"][LR_AXIS])
        edge = len(scanned) > 1 and lr in (scanned[0], scanned[-1])
        axes = {k: v for k, v in best["axes"].items() if k != LR_AXIS}
        scan.rows.append(
            {
                "point": _label(axes),
                "axes": axes,
                "lr": lr,
                "loss": float(best["final_loss"]),
                "scanned": scanned,
                "finished": len(done),
                "edge": edge,
                "losses": {float(r["axes"][LR_AXIS]): float(r["final_loss"]) for r in done},
            }
        )
    for side in ("smallest", "largest"):
        at = [
            row
            for row in scan.rows
            if row["edge"] and row["lr"] == row["scanned"][0 if side == "smallest" else -1]
        ]
        if not at:
            continue
        shown = "; ".join(f"{row['point']}: {row['lr']:g}" for row in at[:3]) + (
            "; ..." if len(at) > 3 else ""
        )
        two = (
            " (a scan of two lrs always ends at an edge: scan three or more)"
            if all(len(row["scanned"]) == 2 for row in at)
            else ""
        )
        scan.warnings.append(
            f"lr scan: at {len(at)} of {len(scan.rows)} points the best lr is the {side} scanned "
            f"({shown}); the "
            "best may lie beyond the range, so those points' losses are upper bounds: widen the "
            f"scan{two}"
        )
    kept = [r for r in runs if r["config_hash"] not in losers]
    return kept, scan
