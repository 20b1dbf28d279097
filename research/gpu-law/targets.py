"""The gpu-law targets (research/gpu-law/PROTOCOL.md section 1) read from what
device.sh writes, into one targets.json:

    python research/gpu-law/targets.py OUT_DIR

reads OUT_DIR/report/summary.json (the sweep's report: fit on N below the
largest, holdout the largest), OUT_DIR/prediction-10x.json (`sparsescale
predict --json` on the whole sweep's law, written before the 10x run),
OUT_DIR/optimal-10x.json (`sparsescale optimal --json` at the 10x run's N and
compute) and OUT_DIR/tenx.csv (`sparsescale export` of the 10x store; the
better lr is the measurement, as the law is fitted to each point's best lr).
A file that is missing leaves its targets unjudged (null), never passed.
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

# The paper's T5 equivalent dense sizes the issue sets ours beside (its
# Figure/Table values for S = 0.5 and 0.75).
T5_EQUIVALENT = {"0.5": 1.77, "0.75": 2.26}
SPREAD_MAX = 1.0          # (high - low) / median of bN and bS
HOLDOUT_MEAN_MAX = 0.015
HOLDOUT_MAX_MAX = 0.03
TENX_REL_MAX = 0.02


def _load(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _target(value, passed, **extra) -> dict:
    return {"value": value, "pass": passed, **extra}


def judge(out: Path) -> dict:
    summary = _load(out / "report" / "summary.json")
    pred = _load(out / "prediction-10x.json")
    opt = _load(out / "optimal-10x.json")
    t: dict[str, dict] = {}

    if summary is not None:
        at_bound = list(summary.get("diagnostics", {}).get("at_bound") or [])
        t["no_coefficient_at_bound"] = _target(at_bound, not at_bound)
        iv = summary.get("intervals", {})
        for name in ("bN", "bS"):
            x = iv.get(name)
            spread = None if not x or not x.get("median") else (x["high"] - x["low"]) / x["median"]
            t[f"{name}_spread"] = _target(spread, None if spread is None else spread <= SPREAD_MAX,
                                          interval=x, target=f"<= {SPREAD_MAX}")
        ho = summary.get("holdout") or {}
        mean, mx = ho.get("mean_abs_rel_error"), ho.get("max_abs_rel_error")
        t["holdout_mean"] = _target(mean, None if mean is None else mean <= HOLDOUT_MEAN_MAX,
                                    target=f"<= {HOLDOUT_MEAN_MAX}", held_out_n=ho.get("held_out_n_nonzero"))
        t["holdout_max"] = _target(mx, None if mx is None else mx <= HOLDOUT_MAX_MAX, target=f"<= {HOLDOUT_MAX_MAX}")
        # the regime check on every (S, N) series of the fitted sizes (below the holdout's N)
        held = ho.get("held_out_n_nonzero")
        series = [s for s in summary.get("regime") or []
                  if held is None or float(s.get("n_nonzero", 0)) < float(held)]
        bad = [s for s in series if s.get("verdict") != "power law"]
        t["regime"] = _target(f"{len(series) - len(bad)} of {len(series)} series a power law",
                              bool(series) and not bad, failing=bad)
        for s, paper in T5_EQUIVALENT.items():
            x = iv.get(f"equivalent dense size at S={s}")
            t[f"equivalent_dense_size_S{s}"] = _target(x and x.get("median"), None, interval=x, t5=paper)

    if pred is not None:
        p = pred["predictions"][0]
        t["prediction_10x"] = _target(p["loss"], None, low=p.get("low"), high=p.get("high"), at=p)
    if opt is not None:
        low = (opt.get("intervals") or {}).get("sparsity", {}).get("low")
        t["sopt_10x"] = _target(opt.get("sparsity"), None if low is None else low > 0,
                                interval=(opt.get("intervals") or {}).get("sparsity"),
                                compute_flops=opt.get("compute_flops"), n_nonzero=opt.get("n_nonzero"))

    rows = []
    if (out / "tenx.csv").is_file():
        with open(out / "tenx.csv", newline="") as f:
            rows = [r for r in csv.DictReader(f) if r.get("status", "finished") == "finished"]
    if rows and pred is not None:
        measured = min(float(r["loss"]) for r in rows)
        p = pred["predictions"][0]
        rel = measured / p["loss"] - 1
        inside = p.get("low") is not None and p["low"] <= measured <= p["high"]
        t["tenx_within_2pct"] = _target(rel, abs(rel) <= TENX_REL_MAX, measured=measured, predicted=p["loss"])
        t["tenx_inside_interval"] = _target(measured, inside, low=p.get("low"), high=p.get("high"))

    judged = [x["pass"] for x in t.values() if x["pass"] is not None]
    return {"targets": t, "all_pass": bool(judged) and all(judged) and "tenx_within_2pct" in t,
            "n_judged": len(judged), "n_passed": sum(judged)}


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: targets.py OUT_DIR", file=sys.stderr)
        return 2
    out = Path(argv[0])
    result = judge(out)
    tmp = out / "targets.json.tmp"
    tmp.write_text(json.dumps(result, indent=2, default=str) + "\n")
    tmp.replace(out / "targets.json")
    for name, x in result["targets"].items():
        mark = {True: "PASS", False: "FAIL", None: "----"}[x["pass"]]
        print(f"{mark} {name}: {x['value']}")
    print(f"{result['n_passed']} of {result['n_judged']} judged targets pass")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
