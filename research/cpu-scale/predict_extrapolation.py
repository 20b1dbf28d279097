"""What a store's data determine, with 95% bootstrap intervals: the
equivalent dense size of each sparsity level (a sparse model with N
non-zeros has the loss of a dense model with factor x N parameters), and the
written-down prediction for issue 11's extrapolation run: the law evaluated
at about 10x the compute of the store's largest run (N and D each about
3.16x larger). Run it, commit its output, and only then train the target.

    .venv/bin/python research/cpu-scale/predict_extrapolation.py STORE.sqlite [N_BOOT]
"""

from __future__ import annotations

import json
import sys

import numpy as np

from sparsescale.laws.fit import fit_law
from sparsescale.laws.uncertainty import bootstrap
from sparsescale.report.build import collect

FIT = {"form": "sparse", "space": "log", "delta": 1e-3}


def main(store: str, n_boot: int = 200) -> None:
    pts = collect(store)
    S, N, D, L = pts.sparsity, pts.n_nonzero, pts.data, pts.loss
    k = np.sqrt(10.0)
    n_target, d_target = float(N.max()) * k, float(D.max()) * k
    targets = {f"S={s:g}": s for s in sorted(set(S))}
    fit = fit_law(S, N, D, L, seed=0, **FIT)
    derived = {name: (lambda law, s=s: float(law.predict(s, n_target, d_target))) for name, s in targets.items()}
    # equal N-terms: f(S) N^-bN = f(0) (xN)^-bN  =>  x = f(S)^(-1/bN)
    factors = {f"equivalent_dense_factor S={s:g}": s for s in sorted(set(S)) if s > 0}
    derived.update({name: (lambda law, s=s: float(law.sparsity_factor(s) ** (-1.0 / law["bN"])))
                    for name, s in factors.items()})
    boot = bootstrap(S, N, D, L, n_boot=n_boot, seed=0, derived=derived, reference=fit, **FIT)
    out = {"n_nonzero": n_target, "tokens": d_target, "runs_fitted": int(len(L)), "n_boot": n_boot,
           "predicted_loss": {name: {"point": float(fit.law.predict(s, n_target, d_target)),
                                     "interval_95": [float(boot.intervals[name][0]), float(boot.intervals[name][2])]}
                              for name, s in targets.items()},
           "equivalent_dense_factor": {name: [float(v) for v in boot.intervals[name]] for name in factors},
           "coefficients": fit.law.coefficients}
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 200)
