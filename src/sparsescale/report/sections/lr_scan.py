"""Which learning rate won at each scanned grid point (sweep/lrscan.py picks
the run with the lowest final loss); a winner at the edge of the scan is
marked, since the best lr may lie beyond it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sparsescale.laws.jsonsafe import finite_json
from sparsescale.report.points import SweepPoints
from sparsescale.report.render import esc


@dataclass
class LrScan:
    # one row per scanned grid point: point (its label), lr (the winner), loss, losses ({lr: final
    # loss}), edge
    rows: list[dict[str, Any]] = field(default_factory=list)


def compute(pts: SweepPoints) -> LrScan:
    return LrScan(list(pts.lr_scan))


def to_json(sec: LrScan) -> list[dict[str, Any]]:
    """The rows, each lr key of `losses` written as '%g' (JSON keys are strings)."""
    return finite_json(
        [
            {
                k: (v if k != "losses" else {f"{lr:g}": x for lr, x in v.items()})
                for k, v in row.items()
            }
            for row in sec.rows
        ]
    )[0]


def to_html(sec: LrScan) -> list[str]:
    if not sec.rows:
        return []
    out = [
        "<h3>Learning rate per point</h3>",
        "<p>Each grid point was trained at every lr of the scan; the fit uses the run with the "
        "lowest final "
        "loss. <b>edge</b>: the winner is the smallest or largest lr scanned, so the best may lie "
        "beyond.</p>",
        "<table><tr><th>point</th><th>best lr</th><th>loss</th><th>loss at each "
        "lr</th><th></th></tr>",
    ]
    for r in sec.rows:
        each = ", ".join(f"{lr:g}: {x:.4f}" for lr, x in sorted(r["losses"].items()))
        out.append(
            f"<tr><td>{esc(r['point'])}</td><td>{r['lr']:g}</td><td>{r['loss']:.4f}</td>"
            f"<td>{esc(each)}</td><td>{'edge' if r['edge'] else ''}</td></tr>"
        )
    out.append("</table>")
    return out


def to_text(sec: LrScan) -> list[str]:
    """Nothing: the terminal carries the scan's finding as its warnings (a winner at an edge)."""
    return []
