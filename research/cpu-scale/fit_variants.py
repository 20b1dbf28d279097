"""Lever "fitting protocol" (issue 11), POST HOC: refit subsets of the demo's
runs, and the demo's runs in linear space, to see which of the acceptance
failures come from which runs. Chosen after the demo's holdout was seen, so
these holdout errors are not clean extrapolation tests; they say where the
law's trouble lies, not what a new preset would score.

    .venv/bin/python research/cpu-scale/fit_variants.py DEMO_STORE.sqlite
"""

from __future__ import annotations

import json
import sys

import numpy as np

from sparsescale.laws.fit import fit_law
from sparsescale.laws.uncertainty import bootstrap, holdout_largest_n
from sparsescale.report.build import collect


def summarise(S, N, D, L, space: str = "log") -> dict:
    kw = {"form": "sparse", "space": space, "delta": 1e-3 if space == "log" else 1e-2}
    fit = fit_law(S, N, D, L, seed=0, **kw)
    derived = {f"eq_dense S={s:g}": (lambda law, s=s: float(law.sparsity_factor(s) ** (-1.0 / law["bN"])))
               for s in sorted(set(S)) if s > 0}
    boot = bootstrap(S, N, D, L, n_boot=200, seed=0, derived=derived, reference=fit, **kw)
    hold = holdout_largest_n(S, N, D, L, seed=0, **kw)

    def rel(name):
        lo, med, hi = boot.intervals[name]
        return round(float((hi - lo) / med), 2) if med else float("inf")

    return {"runs": int(len(L)), "at_bound": fit.diagnostics.get("at_bound"),
            "coefficients": {k: float(f"{v:.4g}") for k, v in fit.law.coefficients.items()},
            "rel_width": {k: rel(k) for k in ("bS", "bN", "bD", *derived)},
            "eq_dense": {k: [round(float(v), 2) for v in boot.intervals[k]] for k in derived},
            "holdout_mean_pct": round(100 * hold["mean_abs_rel_error"], 2),
            "holdout_max_pct": round(100 * hold["max_abs_rel_error"], 2)}


def main(store: str) -> None:
    pts = collect(store)
    S, N, D, L = pts.sparsity, pts.n_nonzero, pts.data, pts.loss
    variants = {
        "all 36 runs": np.ones(len(L), bool),
        "without D = 0.4M": D > 4.5e5,
        "without N = 12.5k": N > 2e4,
        "without D = 0.4M and N = 12.5k": (D > 4.5e5) & (N > 2e4),
    }
    out = {name: summarise(S[m], N[m], D[m], L[m]) for name, m in variants.items()}
    out["all 36 runs, linear space"] = summarise(S, N, D, L, space="linear")
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main(sys.argv[1])
