"""Summarise research/adaptive/results/*.json against the targets, and plot them.

    PYTHONPATH=src python research/adaptive/analyse.py --results research/adaptive/results

Writes summary.json and adaptive.png (report style: sparsescale.report.figures'
headless matplotlib, labelled axes, grid at alpha 0.3) into the results folder.

Targets checked:
  paper pools: adaptive reaches 1.25x the full pool's interval width with at most
  30% of the pool's compute; at equal compute its width is >= 1.5x narrower than
  the median random order's (compared at each adaptive checkpoint up to 30%);
  synthetic: |S_opt error| <= 0.02 with at most half the grid order's compute.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from sparsescale.atomic import save_figure, write_json
from sparsescale.report.figures import _pyplot


def at(rows, c, col):
    """The value of column `col` of the last state whose compute is <= c (step function)."""
    best = None
    for r in rows:
        if r[0] <= c + 1e-12:
            best = r[col]
    return np.nan if best is None else best


def first_reach(rows, threshold, col=1):
    """The compute from which the value stays at or below threshold to the end
    of the curve (a seed design of 8 runs can give a spuriously narrow interval:
    a first crossing would count it)."""
    reach = None
    for r in rows:
        ok = np.isfinite(r[col]) and r[col] <= threshold
        if ok and reach is None:
            reach = r[0]
        elif not ok:
            reach = None
    return reach


def paper_summary(res):
    full = res["full_width"]
    ad, grid, rnd = res["adaptive"], res["grid"], res["random"]
    goal = 1.25 * full
    out = {"full_width": full, "goal_width": goal,
           "compute_to_goal": {"adaptive": first_reach(ad, goal), "grid": first_reach(grid, goal),
                               "random_median": float(np.median([first_reach(r, goal) or 1.0 for r in rnd]))}}
    ratios = []
    for c, w, _ in ad:
        if c > 0.30 + 1e-9:
            break
        med = float(np.nanmedian([at(r, c, 1) for r in rnd]))
        ratios.append({"compute": c, "adaptive_width": w, "random_median_width": med,
                       "ratio": med / w if w > 0 else None, "grid_width": at(grid, c, 1)})
    out["equal_compute"] = ratios
    last = ratios[-1]["ratio"] if ratios else None
    out["met_compute_target"] = out["compute_to_goal"]["adaptive"] is not None and out["compute_to_goal"]["adaptive"] <= 0.30
    out["ratio_to_random_median_at_last_checkpoint_within_30pct"] = last
    out["ratios_within_30pct_beyond_seed"] = [r["ratio"] for r in ratios[1:]]
    out["met_ratio_target"] = last is not None and last >= 1.5
    return out


def synthetic_summary(res):
    total = res["grid_total_flops"]

    def reach(rows):
        """First compute (fraction of the grid's) with |error| <= 0.02, and the
        compute from which it stays there to the end of the curve."""
        first = next((c / total for c, e in rows if np.isfinite(e) and e <= 0.02), None)
        stay = first_reach([(c / total, e) for c, e in rows], 0.02)
        return first if first is None else (first, stay)

    ad, grid = reach(res["adaptive"]), reach(res["grid"])
    rnd = [reach(r) for r in res["random"]]
    final = {k: res[k][-1][1] for k in ("adaptive", "grid")}
    return {"truth": res["truth"], "sigma": res["sigma"],
            "compute_to_0.02_over_grid_total_first_and_sustained": {
                "adaptive": ad, "grid": grid,
                "random_median_first": float(np.median([r[0] if r is not None else np.inf for r in rnd])),
                "random_reaching": sum(r is not None for r in rnd)},
            "error_at_end": final,
            "median_error_by_compute": {k: [(round(c / total, 3), e) for c, e in res[k]] for k in ("adaptive", "grid")},
            "met": ad is not None and grid is not None and ad[0] <= 0.5 * grid[0]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--results", type=Path, default=Path("research/adaptive/results"))
    args = ap.parse_args()
    res = {n: json.loads((args.results / f"{n}.json").read_text()) for n in ("t5", "vit", "synthetic")
           if (args.results / f"{n}.json").exists()}
    summary = {n: (synthetic_summary(r) if n == "synthetic" else paper_summary(r)) for n, r in res.items()}
    write_json(args.results / "summary.json", summary)
    print(json.dumps(summary, indent=1))

    plt = _pyplot()
    names = [n for n in ("t5", "vit") if n in res]
    fig, axes = plt.subplots(1, len(names) + ("synthetic" in res), figsize=(5.2 * (len(names) + 1), 4.4))
    axes = np.atleast_1d(axes)
    colors = {"adaptive": "C3", "grid": "C0", "random": "0.55"}
    for ax, n in zip(axes, names):
        r = res[n]
        for rr in r["random"]:
            ax.plot([x[0] for x in rr], [x[1] for x in rr], color=colors["random"], lw=0.6, alpha=0.35)
        c = np.linspace(0, 1, 101)
        ax.plot(c, [np.nanmedian([at(rr, x, 1) for rr in r["random"]]) for x in c], color="k", lw=1.2, ls=":",
                label=f"random order, median of {len(r['random'])}")
        for k in ("grid", "adaptive"):
            ax.plot([x[0] for x in r[k]], [x[1] for x in r[k]], color=colors[k], lw=2, marker="o", ms=3,
                    label="small-to-large grid" if k == "grid" else "adaptive (next)")
        ax.axhline(r["full_width"], color="0.3", lw=1, label="full pool")
        ax.axhline(1.25 * r["full_width"], color="0.3", lw=1, ls="--", label="1.25x full pool")
        ax.axvline(0.3, color="C2", lw=1, ls="--", label="30% of the pool's compute")
        ax.set_yscale("log")
        ax.set_ylim(0.5 * r["full_width"], 20 * r["full_width"])
        ax.set_xlabel("cumulative training compute (fraction of the pool's FLOPs)")
        ax.set_ylabel("95% interval width, equivalent dense size at S = 0.75")
        ax.set_title(f"paper:{n}: {r['pool_runs']} pool runs, largest N held out", fontsize=11)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    if "synthetic" in res:
        ax = axes[-1]
        r = res["synthetic"]
        total = r["grid_total_flops"]
        for rr in r["random"]:
            ax.plot([x[0] / total for x in rr], [x[1] for x in rr], color=colors["random"], lw=0.6, alpha=0.35)
        for k in ("grid", "adaptive"):
            ax.plot([x[0] / total for x in r[k]], [x[1] for x in r[k]], color=colors[k], lw=2, marker="o", ms=3,
                    label="4x4x4 grid, small to large" if k == "grid" else "adaptive (next)")
        ax.plot([], [], color=colors["random"], label="random points of the box")
        ax.axhline(0.02, color="C2", lw=1, ls="--", label="|error| = 0.02")
        ax.set_yscale("log")
        ax.set_xlabel("cumulative training compute (fraction of the grid's FLOPs)")
        ax.set_ylabel(f"|S_opt fitted - S_opt true| (true {r['truth']:.3f})")
        ax.set_title("synthetic ViT law, paper noise", fontsize=11)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, args.results / "adaptive.png", dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
