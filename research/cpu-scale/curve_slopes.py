"""Where does a run's validation curve stop looking like a power law in D?

For L(D) = c + A D^-b the local slope -dL/dln D = b A D^-b only ever shrinks
as D grows. A slope that GROWS between two validation points is a step (a
training phase change), which no power law in D can follow. Prints each
run's curve and its slopes between successive points, marking growth.
Read the marks against the evaluation's noise: a 16k-token point has a
standard error near 0.03 nats, a 65k-token point 0.013
(research/cpu-scale/noise_floor.py).

    .venv/bin/python research/cpu-scale/curve_slopes.py STORE.sqlite
"""

from __future__ import annotations

import math
import sys

from sparsescale.sweep.store import Store


def slopes(curve: list[dict]) -> list[tuple[float, float, float]]:
    """(tokens at the interval's end, val loss there, -dL/dln D over the interval)."""
    pts = [(p["tokens"], p["val_loss"]) for p in curve if p["val_loss"] is not None and p["tokens"]]
    return [(d1, l1, (l0 - l1) / math.log(d1 / d0)) for (d0, l0), (d1, l1) in zip(pts, pts[1:])]


def main(path: str) -> None:
    with Store(path, readonly=True) as store:
        curves = store.curves()
        for run in store.runs(status="finished"):
            axes = run["axes"]
            print(f"N={axes.get('n_nonzero')} S={axes.get('sparsity')} D={axes.get('tokens')} "
                  f"width={run['plan'].get('width', '?')}")
            prev = math.inf
            curve = curves.get(run["config_hash"], [])
            if run["config"].get("final_eval_tokens"):
                curve = curve[:-1]  # the final point is another (larger) sample: not comparable
            for tokens, loss, slope in slopes(curve):
                flag = "  <- slope grows" if slope > prev * 1.15 else ""
                print(f"  {tokens / 1e6:6.2f}M  loss {loss:.4f}  -dL/dlnD {slope:.4f}{flag}")
                prev = slope


if __name__ == "__main__":
    main(sys.argv[1])
