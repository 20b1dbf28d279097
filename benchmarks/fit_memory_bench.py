"""Time and peak memory of `sparsescale fit` against the number of rows.

Each size runs the real CLI in a fresh subprocess (so peak RSS is that fit's
alone) on a synthetic sweep drawn from the paper's T5 law with 1% log noise.
The fit's working memory is chunked under MEMORY_BUDGET (laws/fit.py), so peak
RSS should grow only with the O(rows) data arrays, not with 4096 x rows.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/fit_memory_bench.py            # 1k .. 250k
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/fit_memory_bench.py 1000 250000
    # the same sizes on another source tree (e.g. an older commit, for before/after):
    git archive <commit> src | tar -x -C /tmp/old
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/fit_memory_bench.py --src /tmp/old/src 1000 10000

Fits above SCORE_ROWS points score their starting candidates on a subsample and
refine on every row (laws/fit.py), so seconds should grow about linearly in rows
once the constant subsample stage (about 2 s) is paid.
"""

from __future__ import annotations

import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from sparsescale.laws.presets import preset


def write_sweep(path: Path, rows: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    law = preset("t5-c4")
    S = rng.choice([0.0, 0.5, 0.75, 0.875], rows)
    N = np.exp(rng.uniform(np.log(1e6), np.log(1e9), rows))
    D = np.exp(rng.uniform(np.log(1e3), np.log(1e6), rows))
    y = law.predict(S, N, D) * np.exp(rng.normal(0, 0.01, rows))
    with open(path, "w") as f:
        f.write("sparsity,n,d,loss\n")
        np.savetxt(f, np.column_stack([S, N, D, y]), delimiter=",", fmt="%.10g")


def run(
    rows: int, folder: Path, vmem_kb: int | None = None, src: str | None = None
) -> tuple[float, float, int]:
    data = folder / f"sweep-{rows}.csv"
    write_sweep(data, rows)
    limit = f"ulimit -v {vmem_kb}; " if vmem_kb else ""
    # this checkout's src unless told otherwise: an installed copy elsewhere must not be what is
    # timed
    path = f"PYTHONPATH={src or Path(__file__).resolve().parents[1] / 'src'} "
    cmd = (
        f"{limit}{path}exec {sys.executable} -c 'from sparsescale.cli import main; main()' fit "
        f"{data} "
        "--sparsity sparsity --params n --data d --loss loss --json > /dev/null"
    )
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t0 = time.perf_counter()
    done = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True)
    elapsed = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # KiB, max over children so far
    if done.returncode != 0:
        print(done.stderr[-2000:], file=sys.stderr)
    return elapsed, max(peak, before) / 1024, done.returncode


def main() -> None:
    args = sys.argv[1:]
    src = None
    if args[:1] == ["--src"]:
        src, args = args[1], args[2:]
    sizes = [int(float(a)) for a in args] or [1000, 10_000, 50_000, 100_000, 250_000]
    print(
        f"{'rows':>10} {'seconds':>9} {'peak RSS MiB':>13} exit  (source: {src or 'this checkout'})"
    )
    with tempfile.TemporaryDirectory() as tmp:
        # ascending sizes: ru_maxrss of children is a running maximum, so each line
        # is that size's peak as long as peaks grow with the size
        for rows in sorted(sizes):
            elapsed, peak, rc = run(rows, Path(tmp), src=src)
            print(f"{rows:>10} {elapsed:>9.1f} {peak:>13.0f} {rc}", flush=True)


if __name__ == "__main__":
    main()
