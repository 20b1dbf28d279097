"""Issue 11's acceptance numbers for a sweep that `sparsescale report` (or
`sparsescale demo`) has fitted: which coefficients sit at a bound, the
relative width of each 95% bootstrap interval, the largest-N holdout error,
S_opt with its interval, and the paper's qualitative findings cell by cell.

    .venv/bin/python research/cpu-scale/acceptance.py STORE.sqlite REPORT_DIR [SWEEP]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from sparsescale.report.build import collect
from sparsescale.report.figures import nominal_sizes

EXPONENTS = ("bS", "bN", "bD")


def law_checks(summary: dict) -> dict:
    iv = summary["intervals"]
    width = {k: (v["high"] - v["low"]) / v["median"] if v["median"] else float("inf") for k, v in iv.items()}
    hold = summary["holdout"] or {}
    return {
        "coefficients": summary["coefficients"],
        "at_bound": summary["diagnostics"].get("at_bound"),
        "intervals": {k: [v["low"], v["median"], v["high"]] for k, v in iv.items()},
        "relative_width": width,
        "holdout_mean_pct": 100 * hold.get("mean_abs_rel_error", float("nan")),
        "holdout_max_pct": 100 * hold.get("max_abs_rel_error", float("nan")),
        "S_opt_at_largest_run_budget": summary["recommendations"][0]["sparsity"],
        "equivalent_dense_factor": summary["recommendations"][0]["equivalent_dense_factor"],
        "recommendations": [(r["why"], r["n_nonzero"], r["sparsity"]) for r in summary["recommendations"]],
    }


def cell_table(store: str, sweep: str | None = None) -> list[dict]:
    """Per (N, D) cell: the loss at each S, and the gain of the sparsest over dense."""
    pts = collect(store, sweep=sweep)
    sizes = np.array(nominal_sizes(pts.n_nonzero))   # each measured N as the size asked for
    N = sizes[np.abs(np.log(pts.n_nonzero[:, None] / sizes[None, :])).argmin(axis=1)]
    S, D, L = pts.sparsity, pts.data, pts.loss
    rows = []
    for n in sorted(set(N)):
        for d in sorted(set(D)):
            at = (N == n) & (D == d)
            by_s = {float(s): float(L[at & (S == s)][0]) for s in sorted(set(S[at]))}
            losses = list(by_s.values())
            rows.append({"N": n, "D": d, "loss_by_S": by_s,
                         "falls_with_S": all(b < a for a, b in zip(losses, losses[1:])),
                         "gain_sparsest": losses[0] - losses[-1]})
    return rows


def main(store: str, report_dir: str, sweep: str | None = None) -> None:
    summary = json.loads((Path(report_dir) / "summary.json").read_text())
    out = law_checks(summary)
    cells = cell_table(store, sweep)
    out["cells"] = cells
    gains = {}
    for c in cells:
        gains.setdefault(c["N"], []).append(c["gain_sparsest"])
    out["gain_grows_with_D"] = {f"{n:.0f}": all(b > a for a, b in zip(g, g[1:])) for n, g in gains.items()}
    out["cells_falling_with_S"] = f"{sum(c['falls_with_S'] for c in cells)} of {len(cells)}"
    print(json.dumps(out, indent=1, default=float))


if __name__ == "__main__":
    main(*sys.argv[1:4])
