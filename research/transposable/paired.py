"""Paired loss differences of the transposable sweep (sweep.toml): per cell
(target N, D, seed) the final loss of 2:4 minus unstructured, 2:4T minus
unstructured and 2:4T minus 2:4, all at S = 0.5, and their means with 95%
intervals, two ways: Student t over the cells, and a percentile bootstrap
that resamples cells (the pairs stay together, so what the cells share, such
as their N and D, cancels).

The three runs of a cell share N, D, seed, initialisation, data order and
evaluation tokens; only the mask constraint differs (and the MLP width where
the sizer must round it to a multiple of m: reported per pair as same_shape).

Usage: python research/transposable/paired.py STORE.sqlite [--out paired.json]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from scipy import stats

from sparsescale.sweep.store import Store

PAIRS = (("2:4", "unstructured"), ("2:4T", "unstructured"), ("2:4T", "2:4"))


def cells(store_path: Path) -> dict[tuple, dict[str, dict]]:
    with Store(store_path, readonly=True) as store:
        runs = store.runs(sweep_id=store.sweep_ids(None))
    out: dict[tuple, dict[str, dict]] = {}
    for r in runs:
        if r["status"] != "finished":
            continue
        key = (r["axes"]["n_nonzero"], r["axes"]["tokens"], r["seed"])
        mc = getattr(r.get("result"), "model_config", None) or {}
        out.setdefault(key, {})[r["pattern"] or "unstructured"] = {
            "loss": r["final_loss"], "n_nonzero": r["n_nonzero"],
            "shape": (mc.get("depth"), mc.get("width"), mc.get("mlp_hidden"))}
    return out


def interval(diffs: np.ndarray, n_boot: int = 10_000, seed: int = 0) -> dict[str, float]:
    n = diffs.size
    mean = float(diffs.mean())
    half = float(stats.t.ppf(0.975, n - 1) * diffs.std(ddof=1) / np.sqrt(n)) if n > 1 else float("nan")
    rng = np.random.default_rng(seed)
    boot = diffs[rng.integers(0, n, size=(n_boot, n))].mean(axis=1)
    return {"mean": mean, "t_low": mean - half, "t_high": mean + half,
            "boot_low": float(np.quantile(boot, 0.025)), "boot_high": float(np.quantile(boot, 0.975)),
            "cells": n, "worse_in": int((diffs > 0).sum())}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("store", type=Path)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    table = cells(args.store)
    result: dict = {"pairs": {}, "cells": []}
    for key, runs in sorted(table.items()):
        row = {"n_nonzero": key[0], "tokens": key[1], "seed": key[2],
               **{f"loss {p}": r["loss"] for p, r in runs.items()}}
        for a, b in PAIRS:
            if a in runs and b in runs:
                row[f"{a} - {b}"] = runs[a]["loss"] - runs[b]["loss"]
                row[f"{a} vs {b} same_shape"] = runs[a]["shape"] == runs[b]["shape"]
        result["cells"].append(row)
    for a, b in PAIRS:
        diffs = np.array([c[f"{a} - {b}"] for c in result["cells"] if f"{a} - {b}" in c])
        if diffs.size:
            result["pairs"][f"{a} - {b}"] = interval(diffs)
    print(f"{'N':>7} {'D':>8} seed " + " ".join(f"{a + ' - ' + b:>20}" for a, b in PAIRS))
    for c in result["cells"]:
        print(f"{c['n_nonzero']:>7} {c['tokens']:>8} {c['seed']:>4} "
              + " ".join(f"{c.get(f'{a} - {b}', float('nan')):>+20.4f}" for a, b in PAIRS))
    for name, iv in result["pairs"].items():
        print(f"{name}: mean {iv['mean']:+.4f} nats, 95% t [{iv['t_low']:+.4f}, {iv['t_high']:+.4f}], "
              f"bootstrap [{iv['boot_low']:+.4f}, {iv['boot_high']:+.4f}], worse in {iv['worse_in']} of {iv['cells']} cells")
    if args.out:
        args.out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
