"""The decision rule of research/cpu-scale/PROTOCOL.md section 3, applied to the
design-small store: which 8x window of token budgets is smooth in D.

For each window and each (N, S) series it lists the loss drop per doubling
of D and counts the doublings whose drop grows by more than 15% (a step no
power law in D follows); then it fits the sparse law to the window's runs
and lists the coefficients at a bound.

    .venv/bin/python research/cpu-scale/design_choice.py design-small.sqlite
"""

from __future__ import annotations

import json
import sys

import numpy as np

from sparsescale.laws.fit import fit_law
from sparsescale.report.build import collect
from sparsescale.report.figures import nominal_sizes

WINDOWS = {"0.1M-0.8M": (1e5, 8e5), "0.2M-1.6M": (2e5, 1.6e6)}
GROWTH = 1.15


def series_violations(S, N, D, L, lo, hi) -> tuple[int, dict]:
    bad, detail = 0, {}
    for n in sorted(set(N)):
        for s in sorted(set(S)):
            m = (N == n) & (S == s) & (D >= lo * 0.99) & (D <= hi * 1.01)
            order = np.argsort(D[m])
            d, y = D[m][order], L[m][order]
            drops = [(a - b) / np.log2(d1 / d0) for a, b, d0, d1 in zip(y, y[1:], d, d[1:])]
            grows = sum(b > a * GROWTH for a, b in zip(drops, drops[1:]))
            bad += grows
            detail[f"N={n:.0f} S={s:g}"] = (f"loss {' '.join(f'{v:.4f}' for v in y)} | drop per doubling "
                                             f"{' '.join(f'{v:.4f}' for v in drops)} | growing {grows}")
    return bad, detail


def nominal(n_nonzero: np.ndarray) -> np.ndarray:
    """Each measured N as the round size the sweep asked for (49,937 -> 50,000)."""
    sizes = np.array(nominal_sizes(n_nonzero))
    return sizes[np.abs(np.log(n_nonzero[:, None] / sizes[None, :])).argmin(axis=1)]


def main(store: str) -> None:
    pts = collect(store)
    S, N, D, L = pts.sparsity, nominal(pts.n_nonzero), pts.data, pts.loss
    out = {}
    for name, (lo, hi) in WINDOWS.items():
        bad, detail = series_violations(S, N, D, L, lo, hi)
        m = (D >= lo * 0.99) & (D <= hi * 1.01)
        fit = fit_law(S[m], pts.n_nonzero[m], D[m], L[m], form="sparse", space="log", delta=1e-3)
        pred = fit.law.predict(S[m], pts.n_nonzero[m], D[m])
        out[name] = {"violations": bad, "series": detail, "at_bound": fit.diagnostics.get("at_bound"),
                     "coefficients": fit.law.coefficients,
                     "in_sample_max_err_pct": float(100 * np.max(np.abs(pred / L[m] - 1)))}
    print(json.dumps(out, indent=1, default=float))


if __name__ == "__main__":
    main(sys.argv[1])
