"""PROTOCOL.md section 13: the analysis of the past-the-step sweep, fixed
before its runs came back.

1. Window: section 8's rule on the N <= 50k cells only (ratios of successive
   drops per doubling of D in [0.5, 1.15]; widest contiguous window of at
   least three budgets usable for 8 of the 9 cells, tie: larger budgets;
   if none, the most usable cells).
2. Fit: the sparse law on N <= 50k inside the window (Huber on log loss,
   delta 1e-3, 200 bootstrap draws, model error calibrated on rolling
   holdouts): coefficients at a bound and (high - low) / median per exponent.
3. Holdouts, never fitted: every N = 100k and N = 200k run inside the window
   (mean and max error per size, and whether the 95% prediction interval
   holds it), and beyond it: the runs above the window's top budget.
4. The paper's checks per (N, D) cell: loss falls with S; the gain of
   S = 0.75 over dense grows with D; S_opt at (N = 200k, C = 6 N D_top)
   with its bootstrap interval; equivalent dense sizes.

    PYTHONPATH=research/cpu-scale .venv/bin/python research/cpu-scale/past_step.py STORE.sqlite [N_BOOT [SWEEP]]
"""

from __future__ import annotations

import json
import sys

import numpy as np

from design_choice import nominal
from design_choice_bpe import MIN_USABLE, cell
from sparsescale.laws.assess import assess
from sparsescale.laws.planning import optimal_sparsity
from sparsescale.report.build import collect

FIT = {"form": "sparse", "space": "log", "delta": 1e-3}
FIT_MAX_N = 50_000
EXPONENTS = ("bS", "bN", "bD")


def choose_window(S, N, D, L) -> tuple[tuple[float, float], dict]:
    budgets = sorted(set(D))
    table = {}
    for i in range(len(budgets)):
        for j in range(i + 2, len(budgets)):
            lo, hi = budgets[i], budgets[j]
            cells = {}
            for n in sorted(set(N)):
                for s in sorted(set(S)):
                    c = (N == n) & (S == s) & (D >= lo) & (D <= hi)
                    order = np.argsort(D[c])
                    cells[f"N={n:.0f} S={s:g}"] = cell(D[c][order], L[c][order])
            table[(lo, hi)] = {"usable_cells": sum(v["usable"] for v in cells.values()), "cells": cells}
    key = lambda w: (w[1] / w[0], w[1])
    ok = [w for w, v in table.items() if v["usable_cells"] >= MIN_USABLE]
    chosen = max(ok, key=key) if ok else max(table, key=lambda w: (table[w]["usable_cells"], *key(w)))
    return chosen, {"rule_met": bool(ok), "windows": {f"{lo / 1e6:g}M-{hi / 1e6:g}M": v for (lo, hi), v in table.items()}}


def holdout(law, unc, S, N, D, L, mask) -> dict:
    pred = law.predict(S[mask], N[mask], D[mask])
    lo, hi = unc.loss_interval(law, S[mask], N[mask], D[mask])
    err = (pred - L[mask]) / L[mask]
    rows = [{"S": float(s), "N": float(n), "D": float(d), "loss": float(y), "predicted": float(p),
             "interval_95": [float(a), float(b)], "error_pct": float(100 * e), "inside": bool(a <= y <= b)}
            for s, n, d, y, p, a, b, e in zip(S[mask], N[mask], D[mask], L[mask], pred, lo, hi, err)]
    return {"runs": len(rows), "mean_abs_pct": float(100 * np.abs(err).mean()) if rows else None,
            "max_abs_pct": float(100 * np.abs(err).max()) if rows else None,
            "inside_95": f"{sum(r['inside'] for r in rows)} of {len(rows)}", "rows": rows}


def main(store: str, n_boot: int = 200, sweep: str | None = None) -> None:
    pts = collect(store, sweep=sweep)
    S, N, D, L, Nx = pts.sparsity, nominal(pts.n_nonzero), pts.data, pts.loss, pts.n_nonzero
    small = N <= FIT_MAX_N
    (lo, hi), windows = choose_window(S[small], N[small], D[small], L[small])
    inside = (D >= lo) & (D <= hi)
    fit = small & inside
    n_top = float(Nx[N == N.max()].max())
    derived = {f"equivalent_dense_factor S={s:g}": (lambda law, s=s: float(law.sparsity_factor(s) ** (-1.0 / law["bN"])))
               for s in sorted(set(S)) if s > 0}
    derived["S_opt"] = lambda law: float(optimal_sparsity(law, n_top, 6.0 * n_top * hi).sparsity)
    a = assess(S[fit], Nx[fit], D[fit], L[fit], n_boot=n_boot, holdout=False, calibrated=True, seed=0,
               derived=derived, **FIT)
    law, unc, iv = a.law, a.law.uncertainty, a.bootstrap.intervals
    widths = {k: float((iv[k][2] - iv[k][0]) / iv[k][1]) for k in EXPONENTS}
    out = {
        "window": [lo, hi], "window_rule": {k: v for k, v in windows.items() if k != "windows"},
        "fitted_runs": int(fit.sum()), "coefficients": law.coefficients,
        "at_bound": a.fit.diagnostics.get("at_bound"),
        "intervals": {k: [float(x) for x in v] for k, v in iv.items()},
        "exponent_relative_width": widths, "warnings": a.warnings,
        "holdout_in_window": {f"N={n:.0f}": holdout(law, unc, S, Nx, D, L, inside & (N == n))
                              for n in sorted(set(N[~small]))},
        "beyond_window": {f"N={n:.0f}": holdout(law, unc, S, Nx, D, L, (D > hi) & (N == n))
                          for n in sorted(set(N))},
    }
    cells, gains = [], {}
    for n in sorted(set(N)):
        for d in sorted(set(D)):
            at = (N == n) & (D == d)
            by_s = {float(s): float(L[at & (S == s)][0]) for s in sorted(set(S[at]))}
            if len(by_s) < 2:
                continue
            ys = list(by_s.values())
            cells.append({"N": float(n), "D": float(d), "loss_by_S": by_s,
                          "falls_with_S": all(b < q for q, b in zip(ys, ys[1:])), "gain_sparsest": ys[0] - ys[-1]})
            gains.setdefault(f"{n:.0f}", []).append(ys[0] - ys[-1])
    out["cells_falling_with_S"] = f"{sum(c['falls_with_S'] for c in cells)} of {len(cells)}"
    out["gain_grows_with_D"] = {n: all(b > q for q, b in zip(g, g[1:])) for n, g in gains.items()}
    out["cells"] = cells
    out["window_table"] = windows["windows"]
    print(json.dumps(out, indent=1, default=float))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 200, sys.argv[3] if len(sys.argv) > 3 else None)
