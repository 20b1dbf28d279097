"""One run over several devices: the worker launches its DDP ranks itself.

A sweep with `gpus_per_run = k` (an integer above 1) trains each run as k
processes of DistributedDataParallel, started here, inside whichever worker
got the run (a local worker or a Ray task), the way torchrun would start them:
each rank gets RANK, LOCAL_RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT and
calls the same runner. All ranks see the worker's devices (its
CUDA_VISIBLE_DEVICES, set by the local executor or by Ray) and rank r trains on
the r-th of them (train/run.py: cuda:LOCAL_RANK, NCCL); on a CPU they use gloo.
Seeing all k devices, rather than one each, is what lets NCCL use peer-to-peer
copies between them. Each rank reads its 1/k share of every global batch, so
the run computes what one process would (train/run.py, data/loaders.py); rank
0 writes the checkpoints and result.json.

Ranks are subprocesses rather than multiprocessing children because a local
worker is a daemon process, which may not have children of its own. Rank 0's
progress comes back as JSON lines on its stdout.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable

PROGRESS = "sparsescale-progress "
KILL_AFTER_S = 10.0  # a rank left waiting on a dead peer's collective never returns: kill it


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_ranks(
    runner: str,
    config: dict[str, Any],
    out_dir: Path,
    world: int,
    progress: Callable[[dict[str, Any]], None] | None = None,
    data_fingerprint: str | None = None,
) -> dict[str, Any]:
    """Train one run as `world` DDP processes; return rank 0's result dict.
    Raises RuntimeError naming the first rank that failed (the others are
    stopped). SIGTERM to this process reaches every rank, which checkpoints."""
    from sparsescale.train.result import RESULT, read_result

    payload = json.dumps(
        {
            "runner": runner,
            "config": config,
            "out_dir": str(out_dir),
            "data_fingerprint": data_fingerprint,
        }
    )
    port = _free_port()
    procs, logs = [], []
    for rank in range(world):
        env = dict(
            os.environ,
            RANK=str(rank),
            LOCAL_RANK=str(rank),
            WORLD_SIZE=str(world),
            LOCAL_WORLD_SIZE=str(world),
            MASTER_ADDR="127.0.0.1",
            MASTER_PORT=str(port),
        )
        log = tempfile.TemporaryFile()
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "sparsescale.sweep.ddp", payload],
                env=env,
                stdout=subprocess.PIPE if rank == 0 else subprocess.DEVNULL,
                stderr=log,
                text=True,
            )
        )
        logs.append(log)
    reader = threading.Thread(
        target=_forward_progress, args=(procs[0].stdout, progress), daemon=True
    )
    reader.start()
    stopped = []
    previous = None
    if threading.current_thread() is threading.main_thread():

        def forward(signum, frame):
            stopped.append(signum)
            for p in procs:
                if p.poll() is None:
                    p.send_signal(signal.SIGTERM)

        previous = signal.signal(signal.SIGTERM, forward)
    try:
        failed = _wait(procs)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    reader.join(5.0)
    if stopped:  # checkpointed on SIGTERM: end the way SIGTERM would have ended this process
        os.kill(os.getpid(), signal.SIGTERM)
        raise SystemExit(128 + signal.SIGTERM)
    if failed is not None:
        rank, code = failed
        logs[rank].seek(0)
        lines = [
            ln for ln in logs[rank].read().decode("utf-8", "replace").splitlines() if ln.strip()
        ]
        raise RuntimeError(
            f"DDP rank {rank} of {world} exited with code {code}: "
            f"{lines[-1][:500] if lines else 'no output'}"
        )
    if read_result(Path(out_dir) / RESULT) is None:
        raise RuntimeError(f"DDP: the {world} ranks exited but rank 0 wrote no {RESULT}")
    # the file as written: a custom runner's own fields travel as they would without DDP
    return json.loads((Path(out_dir) / RESULT).read_text())


def _wait(procs: list[subprocess.Popen]) -> tuple[int, int] | None:
    """Wait for every rank; on the first failure stop the rest. (rank, exit code) of it, or None."""
    while True:
        codes = [p.poll() for p in procs]
        bad = next(((r, c) for r, c in enumerate(codes) if c not in (None, 0)), None)
        if bad is not None:
            for p in procs:
                if p.poll() is None:
                    p.terminate()
            deadline = time.time() + KILL_AFTER_S
            for p in procs:
                try:
                    p.wait(max(0.1, deadline - time.time()))
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
            return bad
        if all(c == 0 for c in codes):
            return None
        time.sleep(0.1)


def _forward_progress(stream, progress) -> None:
    for line in stream:
        if progress is not None and line.startswith(PROGRESS):
            try:
                progress(json.loads(line[len(PROGRESS) :]))
            except Exception:  # a progress bar never stops a run
                pass


def _rank_main(payload: str) -> None:
    """One rank: the runner, as torchrun would call it, with rank 0 reporting progress."""
    from sparsescale.sweep.runner import call_runner, exit_with_parent

    exit_with_parent()
    task = json.loads(payload)

    def progress(info: dict[str, Any]) -> None:
        print(PROGRESS + json.dumps(info), flush=True)

    rank0 = os.environ.get("RANK") == "0"
    call_runner(
        task["runner"],
        task["config"],
        Path(task["out_dir"]),
        progress if rank0 else None,
        task["data_fingerprint"],
    )


if __name__ == "__main__":
    _rank_main(sys.argv[1])
