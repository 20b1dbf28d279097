"""`sparsescale fit paper:t5 --bootstrap 1000` from the command line (startup,
reading, fit, holdout-free bootstrap, rolling-holdout calibration, printing),
and the in-process T5 global fit, for this checkout and optionally another
source tree, alternating so that both see the same machine load.

Prints wall seconds and the child's CPU seconds (user + sys); on a shared
machine the CPU seconds are the steadier figure, and the ratio between the two
trees from the same run is what to compare.

    git archive <commit> src | tar -x -C /tmp/old
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/fit_cli_bench.py --other /tmp/old/src --repeats 3
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parents[1] / "src"

GLOBAL_FIT = """
import time
from sparsescale.laws.paper import paper_points
from sparsescale.laws.fit import fit_law
from sparsescale.laws.points import FitOptions, Points
S, N, D, y = paper_points('paper:t5')
P = Points(S, N, D, y)
fit_law(P, FitOptions(space='log', delta=1e-3))  # warm the imports and caches
times = []
for seed in range(7):
    t0 = time.perf_counter()
    r = fit_law(P, FitOptions(space='log', delta=1e-3, seed=seed))
    times.append(time.perf_counter() - t0)
times.sort(); print(times[3], repr(r.objective))
"""


def timed(cmd: list[str], src: Path) -> tuple[float, float, str]:
    env = dict(os.environ, PYTHONPATH=str(src))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    import time

    t0 = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{done.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, done.stdout


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument(
        "--other", type=Path, help="another source tree (its src/ folder) to time as well"
    )
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--boot", type=int, default=1000)
    args = ap.parse_args()
    trees = [("this checkout", HERE)] + ([("other", args.other)] if args.other else [])
    cli = [
        sys.executable,
        "-c",
        "from sparsescale.cli import main; main()",
        "fit",
        "paper:t5",
        "--bootstrap",
        str(args.boot),
    ]
    res: dict[str, dict[str, list[float]]] = {
        name: {"wall": [], "cpu": [], "fit": []} for name, _ in trees
    }
    for _ in range(args.repeats):
        for name, src in trees:
            wall, cpu, _ = timed(cli, src)
            res[name]["wall"].append(wall)
            res[name]["cpu"].append(cpu)
            _, _, out = timed([sys.executable, "-c", GLOBAL_FIT], src)
            res[name]["fit"].append(float(out.split()[0]))
            objective = out.split()[1]
    for name, _ in trees:
        r = res[name]
        print(
            f"{name:>14}: fit paper:t5 --bootstrap {args.boot}: wall median "
            f"{statistics.median(r['wall']):.2f} s, "
            f"CPU median {statistics.median(r['cpu']):.2f} s; T5 global fit median "
            f"{statistics.median(r['fit']) * 1e3:.0f} ms"
        )
    if args.other:
        a, b = res["this checkout"], res["other"]
        print(
            "ratios other / this: CLI wall "
            f"{statistics.median(b['wall']) / statistics.median(a['wall']):.2f}x, "
            f"CLI CPU {statistics.median(b['cpu']) / statistics.median(a['cpu']):.2f}x, "
            f"global fit {statistics.median(b['fit']) / statistics.median(a['fit']):.2f}x"
        )
    print(f"last objective: {objective}")


if __name__ == "__main__":
    main()
