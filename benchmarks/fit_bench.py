"""Fitting speed on the paper's T5 sweep (48 runs, log space, Huber delta 1e-3).

Prints, from one run on this machine:
  1. the wall time of sparsescale's full global fit (median of repeats),
  2. scipy.optimize.differential_evolution on the same objective and bounds,
     run until it reaches the same optimum (or its iteration cap), and the
     speed ratio between the two,
  3. the wall time of a B=1000 bootstrap.
Targets (issue 2): (1) <= 2 s, ratio >= 5x, (3) <= 60 s.

Usage: python benchmarks/fit_bench.py [--repeats 5]
         [--data T5.csv (default: the copy shipped in sparsescale/laws/paperdata)]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
import pandas as pd

from sparsescale.laws.fit import _Problem, fit_law, huber
from sparsescale.laws.forms import get_form
from sparsescale.laws.points import FitOptions, Points
from sparsescale.laws.uncertainty.bootstrap import bootstrap


def load_t5(path: Path):
    df = pd.read_csv(path)
    S = df["sparsity"].to_numpy(float)
    return (
        S,
        24 * 12 * 768**2 * df["scale"].to_numpy(float) * (1 - S),
        df["steps"].to_numpy(float),
        df["val-loss"].to_numpy(float),
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    from importlib import resources

    packaged = Path(str(resources.files("sparsescale.laws.paperdata").joinpath("t5-data.csv")))
    ap.add_argument("--data", type=Path, default=packaged)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--boot", type=int, default=1000)
    args = ap.parse_args()
    S, N, D, y = load_t5(args.data)

    times, objective = [], None
    for seed in range(args.repeats):
        t0 = time.perf_counter()
        result = fit_law(Points(S, N, D, y), FitOptions(space="log", delta=1e-3, seed=seed))
        times.append(time.perf_counter() - t0)
        objective = result.objective if objective is None else min(objective, result.objective)
    ours = statistics.median(times)
    print(
        f"sparsescale global fit: median {ours:.3f} s over {args.repeats} seeds (min "
        f"{min(times):.3f}, max {max(times):.3f}); "
        f"objective {objective:.6e}; starts at best "
        f"{result.diagnostics['starts_at_best']}/{result.diagnostics['n_starts']}"
    )

    # differential evolution on the identical objective (same parameterisation and bounds)
    from scipy.optimize import differential_evolution

    prob = _Problem(get_form("sparse"), S, N, D, y, "log", 1e-3, None, None)
    # DE searches log amplitudes (normalised units) in a generous box, and the
    # same exponent box as sparsescale.
    bounds = [(-12.0, 6.0)] * 4 + list(get_form("sparse").exponent_bounds)

    def objective_fn(p):
        r, _ = prob.residual_jacobian(np.concatenate([np.exp(p[:4]), p[4:]])[None, :])
        return float(np.mean(huber(r[0], 1e-3))) if np.all(np.isfinite(r)) else 1e3

    target = objective * (1 + 1e-6)
    de_times, de_objs = [], []
    for seed in range(3):
        reached = {"t": None}
        t0 = time.perf_counter()

        def stop(intermediate_result):
            if intermediate_result.fun <= target:
                reached["t"] = time.perf_counter() - t0
                return True
            return False

        res = differential_evolution(
            objective_fn,
            bounds,
            seed=seed,
            maxiter=3000,
            popsize=30,
            tol=1e-14,
            mutation=(0.5, 1.0),
            recombination=0.9,
            polish=True,
            callback=stop,
        )
        elapsed = time.perf_counter() - t0
        de_times.append(reached["t"] or elapsed)
        de_objs.append(res.fun)
        print(
            f"  differential_evolution seed {seed}: {elapsed:.2f} s, objective {res.fun:.6e}, "
            f"{'reached' if res.fun <= target else 'did NOT reach'} the sparsescale optimum, nfev "
            f"{res.nfev}"
        )
    de = statistics.median(de_times)
    print(
        f"differential_evolution: median {de:.2f} s to the same optimum (or to its stop when it "
        "never got there)"
    )
    print(f"speed ratio (DE / sparsescale): {de / ours:.1f}x  [target >= 5x]")

    t0 = time.perf_counter()
    boot = bootstrap(
        Points(S, N, D, y), FitOptions(seed=0, space="log", delta=1e-3), n_boot=args.boot
    )
    bt = time.perf_counter() - t0
    print(
        f"bootstrap B={args.boot}: {bt:.1f} s  [target <= 60 s]; 95% relative widths: "
        + ", ".join(f"{k} {boot.relative_width(k):.2f}" for k in boot.intervals)
    )


if __name__ == "__main__":
    main()
