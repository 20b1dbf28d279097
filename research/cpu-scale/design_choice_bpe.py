"""The window rule of research/cpu-scale/PROTOCOL.md section 8, applied to the
design-small-bpe store: which contiguous window of token budgets (at least
three, so that two successive drops can be compared) behaves like a power
law in D in every (N, S) cell.

A cell is usable in a window when every ratio of successive drops in final
loss per doubling of D lies in [0.5, 1.15]: a power law with 0 < b <= 1
gives ratios 2^-b in [0.5, 1); below 0.5 the run is still in its initial
crash, above 1.15 the loss is taking a step. It also fits the sparse law to
each window's runs and lists the coefficients at a bound (information only:
the rule does not use it).

    .venv/bin/python research/cpu-scale/design_choice_bpe.py design-small-bpe.sqlite
"""

from __future__ import annotations

import json
import sys

import numpy as np

from design_choice import nominal   # same folder: run from the repository root or research/cpu-scale/
from sparsescale.laws.fit import fit_law
from sparsescale.report.build import collect

RATIO = (0.5, 1.15)
MIN_USABLE = 8   # of the 9 (N, S) cells


def cell(d: np.ndarray, y: np.ndarray) -> dict:
    drops = [(a - b) / np.log2(d1 / d0) for a, b, d0, d1 in zip(y, y[1:], d, d[1:])]
    ratios = [b / a if a > 0 else float("inf") for a, b in zip(drops, drops[1:])]
    return {"loss": [round(float(v), 4) for v in y], "drop_per_doubling": [round(float(v), 4) for v in drops],
            "ratios": [round(float(v), 3) for v in ratios],
            "usable": all(RATIO[0] <= r <= RATIO[1] for r in ratios)}


def main(store: str) -> None:
    pts = collect(store)
    S, N, D, L = pts.sparsity, nominal(pts.n_nonzero), pts.data, pts.loss
    budgets = sorted(set(D))
    windows = [(i, j) for i in range(len(budgets)) for j in range(i + 2, len(budgets))]
    out = {}
    for i, j in windows:
        lo, hi = budgets[i], budgets[j]
        m = (D >= lo) & (D <= hi)
        cells = {}
        for n in sorted(set(N)):
            for s in sorted(set(S)):
                c = m & (N == n) & (S == s)
                order = np.argsort(D[c])
                cells[f"N={n:.0f} S={s:g}"] = cell(D[c][order], L[c][order])
        fit = fit_law(S[m], pts.n_nonzero[m], D[m], L[m], form="sparse", space="log", delta=1e-3)
        out[f"{lo / 1e6:g}M-{hi / 1e6:g}M"] = {
            "width": hi / lo, "usable_cells": sum(v["usable"] for v in cells.values()), "cells": cells,
            "at_bound": fit.diagnostics.get("at_bound"), "coefficients": fit.law.coefficients}
    ok = [k for k, v in out.items() if v["usable_cells"] >= MIN_USABLE]
    # widest first, then the larger budgets; if none qualifies, most usable cells first
    key = lambda k: (out[k]["width"], float(k.split("-")[1][:-1]))
    chosen = max(ok, key=key) if ok else max(out, key=lambda k: (out[k]["usable_cells"], *key(k)))
    print(json.dumps({"chosen": chosen, "rule_met": bool(ok), "windows": out}, indent=1, default=float))


if __name__ == "__main__":
    main(sys.argv[1])
