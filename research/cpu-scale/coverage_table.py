"""Coverage of sparsescale's prediction intervals on rolling holdouts.

For each data set: fit on the smaller sizes (or shorter runs), predict the next,
and count how many held-out points fall inside the nominal 80% and 95%
intervals (bootstrap draws + the model-error term calibrated on the same folds:
"in-sample"), and inside intervals whose model-error rate was estimated without
the scored fold ("leave-one-fold-out", the honest figure). Also shown: the
median relative half-width, the 95% half-width on the largest-N fold, and, for
comparison, the folds trained on only two sizes or lengths that calibration
leaves out (see sparsescale/laws/calibration.py for why).

    python research/cpu-scale/coverage_table.py                        # the paper's T5 and ViT sweeps
    python research/cpu-scale/coverage_table.py --sweep quick=quick.csv --sweep cpu-full=cpu-full.csv
        # CSVs from `sparsescale export STORE --csv FILE` (columns sparsity, n_nonzero, tokens, loss)
"""

from __future__ import annotations

import argparse
import csv

import numpy as np

from sparsescale.laws.calibration import calibrate, coverage, estimate_per_efold, rolling_holdouts
from sparsescale.laws.paper import PAPER_SWEEPS, paper_points


def sweep_points(path: str):
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    budget = next(c for c in ("tokens", "examples", "steps") if c in rows[0])
    cols = {k: np.array([float(r[k]) for r in rows]) for k in ("sparsity", "n_nonzero", budget, "loss")}
    return cols["sparsity"], cols["n_nonzero"], cols[budget], cols["loss"]


def fmt(table, level):
    if not table:
        return "-", "-"
    v = table[level]
    return f"{v['covered']:.0%} ({v['n_points']})", f"{100 * v['median_rel_half_width']:.2f}%"


def row(name, points, settings, n_boot, seed):
    cal = calibrate(*points, n_boot=n_boot, seed=seed, **settings)
    largest = [f for f in cal.folds if f.axis == "N"]
    hw = coverage(largest[-1:], cal.per_efold)["0.95"]["median_rel_half_width"] if largest else float("nan")
    name += "" if cal.min_train_groups == 3 else " (2-group folds only)"
    cells = [name, str(len(cal.folds)), f"{100 * cal.per_efold:.2f}%"]
    for table in (cal.coverage, cal.coverage_cv):
        for level in ("0.8", "0.95"):
            cells += fmt(table, level)
    cells.append(f"{100 * hw:.2f}%")
    two = [f for f in rolling_holdouts(*points, n_boot=n_boot, seed=seed, min_train_groups=2, **settings)
           if f.label not in {g.label for g in cal.folds}] if cal.min_train_groups == 3 else []
    cells.append(fmt(coverage(two, cal.per_efold), "0.95")[0] if two else "-")
    return cells


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sweep", action="append", default=[], help="NAME=CSV from `sparsescale export` (log space, delta 1e-3)")
    ap.add_argument("--boot", type=int, default=100, help="bootstrap draws per fold")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    header = ["data set", "folds", "rate/e-fold", "80% cov", "80% hw", "95% cov", "95% hw",
              "80% cov LOFO", "80% hw LOFO", "95% cov LOFO", "95% hw LOFO", "95% hw largest-N", "95% cov 2-group folds"]
    rows = []
    for sweep in PAPER_SWEEPS.values():
        rows.append(row(f"paper {sweep.name}", paper_points(sweep.name), {"space": sweep.space, "delta": sweep.delta},
                        args.boot, args.seed))
    for spec in args.sweep:
        name, _, path = spec.partition("=")
        rows.append(row(name, sweep_points(path), {"space": "log", "delta": 1e-3}, args.boot, args.seed))
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for cells in rows:
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
