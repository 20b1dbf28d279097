"""Does `sparsescale next` pin a target down with less compute than a grid or a
random order? A simulation on the paper's sweeps and on a known synthetic law.

Regenerate (niced, about 10-20 CPU minutes on 2 shared cores):

    PYTHONPATH=src nice -n 10 python research/adaptive/simulate.py --out research/adaptive/results

Paper pools (T5: 48 runs, ViT: 112). The largest-N group is the holdout; the
rest is the candidate pool. All strategies start from the same seed design
(the cheapest pool runs that span two values of each of S, N and D) and add
runs in batches of BATCH of the pool's compute, paying each run's FLOPs
(6 N D tokens_per_unit c_mul(S)):
  - adaptive: laws.design.propose on the pool's remaining runs, batch budget,
    min_share 0 (every batch is filled with the best runs per FLOP: the CLI's
    0.5% floor would end the batch early and the strategies would not pay alike);
  - grid: the pool in small-to-large order (N, then D, then S), as a sweep runs;
  - random: the pool in a random order, 20 seeds.
After each batch: the target's 95% bootstrap interval width and the largest-N
holdout's mean absolute relative error. Target: the equivalent dense size
factor at S = 0.75 (the paper's headline number).

Synthetic: the ViT/JFT law (Table 1) with noise at the ViT fit's residual
scale; candidates drawn from a continuous box of (S, N, D); target S_opt at
N = 1e8 non-zeros and 5x the dense compute-optimal budget; error |S_opt fit -
S_opt true| against cumulative compute for the same three strategies (grid: a
4 x 4 x 4 grid in small-to-large order).

Bootstrap sizes are reduced for the simulation (BOOT = 40 draws per design
step, EVAL_BOOT = 100 per reported width, instead of the CLI's 200): the widths are noisier than the
CLI's; the comparisons are between strategies under the same noise.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np

from sparsescale.errors import SparsescaleError
from sparsescale.laws.design import Target, propose, run_flops
from sparsescale.laws.fit import fit_law
from sparsescale.laws.forms import preset
from sparsescale.laws.paper import paper_points, paper_sweep
from sparsescale.laws.planning import dense_optimal_compute, optimal_sparsity
from sparsescale.laws.uncertainty import bootstrap, group_by_size

BOOT = 40           # draws behind each design step
EVAL_BOOT = 100     # draws behind each reported width (sorted runs: the same set gives the same draws)
BATCH = 0.08        # of the pool's compute per batch
RANDOM_SEEDS = 20
TARGET = Target("equivalent-size", {"S": 0.75})


def seed_design(pool: np.ndarray, flops: np.ndarray) -> list[int]:
    """The cheapest runs that together hold two values of each of S, N, D (and >= 8 runs)."""
    order = np.argsort(flops)
    chosen: list[int] = []
    for i in order:
        chosen.append(int(i))
        sub = pool[chosen]
        if len(chosen) >= 8 and all(len(np.unique(sub[:, j])) >= 2 for j in range(3)):
            break
    return chosen


def evaluate(pool, y, idx, holdout, sweep, seed=0):
    """(width of the target's 95% interval, holdout mean |rel error|) from the runs idx."""
    idx = sorted(idx)
    S, N, D = pool[idx].T
    try:
        fit = fit_law(S, N, D, y[idx], space=sweep.space, delta=sweep.delta, seed=seed, n_starts=16)
        boot = bootstrap(S, N, D, y[idx], n_boot=EVAL_BOOT, seed=seed, reference=fit, derived={"t": TARGET.of},
                         space=sweep.space, delta=sweep.delta)
    except SparsescaleError:
        return math.nan, math.nan
    lo, _, hi = boot.intervals["t"]
    hS, hN, hD, hy = holdout
    err = float(np.mean(np.abs(fit.law.predict(hS, hN, hD) - hy) / hy))
    return float(hi - lo), err


def order_run(pool, y, flops, holdout, sweep, order, seed_idx):
    """Grid or random: add runs in `order` batch by batch; one row per batch."""
    total = flops.sum()
    idx = list(seed_idx)
    rest = [i for i in order if i not in idx]
    rows = []
    while True:
        w, e = evaluate(pool, y, idx, holdout, sweep)
        rows.append((float(flops[idx].sum() / total), w, e))
        if not rest:
            return rows
        spent = 0.0
        while rest and (spent == 0.0 or spent + flops[rest[0]] <= BATCH * total):
            spent += flops[rest[0]]
            idx.append(rest.pop(0))


def adaptive_run(pool, y, flops, holdout, sweep, seed_idx, tpu, target=TARGET, seed=0):
    total = flops.sum()
    idx = list(seed_idx)
    rows = []
    while True:
        left = [i for i in range(len(pool)) if i not in idx]
        S, N, D = pool[idx].T
        w, e = evaluate(pool, y, idx, holdout, sweep, seed)
        rows.append((float(flops[idx].sum() / total), w, e))
        if not left:
            return rows
        try:
            prop = propose((S, N, D, y[idx]), target, pool[left], BATCH * total, tokens_per_unit=tpu, n_boot=BOOT,
                           seed=seed, space=sweep.space, delta=sweep.delta, min_share=0.0)
            picked = [left[int(np.flatnonzero((pool[left] == [r["sparsity"], r["n_nonzero"], r["data"]]).all(1))[0])]
                      for r in prop.runs]
        except SparsescaleError:
            picked = []
        if not picked:  # nothing informative fits: take the cheapest remaining run (pay and move on)
            picked = [min(left, key=lambda i: flops[i])]
        idx += picked


def paper_pool(name: str, rng_seeds: int):
    sweep = paper_sweep(name)
    S, N, D, y = paper_points(name)
    g = group_by_size(N)
    hold = g == g.max()
    pool = np.column_stack([S, N, D])[~hold]
    yp = y[~hold]
    holdout = (S[hold], N[hold], D[hold], y[hold])
    flops = run_flops(*pool.T, sweep.tokens_per_unit)
    seed_idx = seed_design(pool, flops)
    t0 = time.time()
    full_w, full_e = evaluate(pool, yp, list(range(len(pool))), holdout, sweep)
    out = {"pool_runs": int(len(pool)), "holdout_runs": int(hold.sum()), "seed_runs": len(seed_idx),
           "full_width": full_w, "full_holdout_error": full_e}
    out["adaptive"] = adaptive_run(pool, yp, flops, holdout, sweep, seed_idx, sweep.tokens_per_unit)
    grid_order = list(np.lexsort((pool[:, 0], pool[:, 2], pool[:, 1])))
    out["grid"] = order_run(pool, yp, flops, holdout, sweep, grid_order, seed_idx)
    out["random"] = [order_run(pool, yp, flops, holdout, sweep, list(np.random.default_rng(s).permutation(len(pool))),
                               seed_idx) for s in range(rng_seeds)]
    out["seconds"] = time.time() - t0
    return out


def synthetic(rng_seeds: int, n_candidates: int = 300):
    """S_opt error against compute on a known law with a continuous candidate box."""
    law = preset("vit-jft")
    tpu = law.tokens_per_unit
    n_t = 1e8
    c_t = 5.0 * float(dense_optimal_compute(law, n_t))  # law units
    truth = optimal_sparsity(law, n_t, c_t).sparsity
    target = Target("sopt", {"N": n_t, "C": c_t * tpu})
    sweep = paper_sweep("paper:vit")
    rng = np.random.default_rng(123)
    # the ViT fit's residual scale (linear loss): the paper's noise level
    S0, N0, D0, y0 = paper_points("paper:vit")
    fit0 = fit_law(S0, N0, D0, y0, space="linear", delta=1e-2)
    sigma = float(1.4826 * np.median(np.abs(fit0.law.predict(S0, N0, D0) - y0)))
    box = np.column_stack([1 - np.exp(rng.uniform(np.log(1 - 0.9375), 0.0, n_candidates)),
                           np.exp(rng.uniform(np.log(2e6), np.log(3e7), n_candidates)),
                           np.exp(rng.uniform(np.log(1e8), np.log(2e9), n_candidates))])
    ys = law.predict(*box.T) + rng.normal(0, sigma, n_candidates)
    gS = [0.0, 0.5, 0.75, 0.875]
    gN = np.exp(np.linspace(np.log(2e6), np.log(3e7), 4))
    gD = np.exp(np.linspace(np.log(1e8), np.log(2e9), 4))
    grid = np.array([(s, n, d) for n in gN for d in gD for s in gS])
    yg = law.predict(*grid.T) + rng.normal(0, sigma, len(grid))

    def error(points, yy):
        try:
            f = fit_law(*points.T, yy, space="linear", delta=1e-2, n_starts=16, tokens_per_unit=tpu)
            return abs(optimal_sparsity(f.law, n_t, c_t).sparsity - truth)
        except SparsescaleError:
            return math.nan

    def track(points, yy, order, seed_idx):
        fl = run_flops(*points.T, tpu)
        idx, rows = list(seed_idx), []
        rest = [i for i in order if i not in idx]
        total = run_flops(*grid.T, tpu).sum()
        step = BATCH * total
        while True:
            rows.append((float(fl[idx].sum()), error(points[idx], yy[idx])))
            if not rest or fl[idx].sum() > 1.5 * total:  # the comparison ends at 1.5x the grid's compute
                return rows
            spent = 0.0
            while rest and (spent == 0.0 or spent + fl[rest[0]] <= step):
                spent += fl[rest[0]]
                idx.append(rest.pop(0))

    grid_fl = run_flops(*grid.T, tpu)
    out = {"truth": truth, "sigma": sigma, "grid_total_flops": float(grid_fl.sum())}
    seed_g = seed_design(grid, grid_fl)
    out["grid"] = track(grid, yg, list(np.lexsort((grid[:, 0], grid[:, 2], grid[:, 1]))), seed_g)
    # adaptive and random draw from the continuous box, from the same seed runs (put first)
    pts = np.vstack([grid[seed_g], box])
    yy = np.concatenate([yg[seed_g], ys])
    fl = run_flops(*pts.T, tpu)
    seed_b = list(range(len(seed_g)))
    out["random"] = [track(pts, yy, seed_b + list(len(seed_g) + np.random.default_rng(s).permutation(n_candidates)),
                           seed_b) for s in range(rng_seeds)]
    idx, rows = list(seed_b), []
    budget = BATCH * grid_fl.sum()
    while fl[idx].sum() <= 1.5 * grid_fl.sum():
        rows.append((float(fl[idx].sum()), error(pts[idx], yy[idx])))
        left = [i for i in range(len(pts)) if i not in idx]
        try:
            prop = propose((*pts[idx].T, yy[idx]), target, pts[left], budget, tokens_per_unit=tpu, n_boot=BOOT,
                           space="linear", delta=1e-2, min_share=0.0)
            picked = [left[int(np.flatnonzero((pts[left] == [r["sparsity"], r["n_nonzero"], r["data"]]).all(1))[0])]
                      for r in prop.runs]
        except SparsescaleError:
            picked = []
        idx += picked or [min(left, key=lambda i: fl[i])]
    out["adaptive"] = rows
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, default=Path("research/adaptive/results"))
    ap.add_argument("--random-seeds", type=int, default=RANDOM_SEEDS)
    ap.add_argument("--only", choices=["t5", "vit", "synthetic"], action="append")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for name in args.only or ["t5", "vit", "synthetic"]:
        t0 = time.time()
        res = synthetic(args.random_seeds) if name == "synthetic" else paper_pool(f"paper:{name}", args.random_seeds)
        res["boot"], res["eval_boot"], res["batch"], res["cpu_seconds"] = BOOT, EVAL_BOOT, BATCH, time.process_time()
        (args.out / f"{name}.json").write_text(json.dumps(res, indent=1))
        print(f"{name}: {time.time() - t0:.0f} s", flush=True)


if __name__ == "__main__":
    main()
