"""Executors: where runs execute. The coordinator sees only this interface:

    executor.slots            how many runs can be in flight at once
    executor.submit(task)     start a run (a RunTask)
    executor.poll(timeout_s)  events that arrived: Event(kind, config_hash, payload, attempt)
                              kind is "finished" (payload: result dict),
                              "failed" (payload: reason) or "progress" (payload: dict);
                              attempt: where a finished run ran ({"node", "pid", "resumed"})
    executor.shutdown()

`local` runs K worker processes on this machine; `ray` runs each run as a Ray
task, on one machine or a cluster.

GPUs (docs/gpu.md). `gpus_per_run` g is 0 (CPU runs), a fraction of one GPU
(floor(1/g) runs share each GPU) or a whole number (g >= 2: one DDP run over g
GPUs, launched inside the worker, sweep/ddp.py). The local executor pins each
worker to its devices with CUDA_VISIBLE_DEVICES, set before the worker imports
torch: K = floor(len(devices) / g) workers for whole g, floor(1/g) per device
for a fraction. Ray does the same for its tasks from their `num_gpus`.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import re
import signal
import traceback
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any

from sparsescale.errors import SparsescaleError
from sparsescale.sweep.worker import RunTask, execute, exit_with_parent


@dataclass
class Event:
    kind: str  # "finished" | "failed" | "progress"
    config_hash: str
    payload: Any
    attempt: dict[str, Any] | None = None


def _describe(exc: BaseException) -> str:
    last = traceback.extract_tb(exc.__traceback__)[-1:] if exc.__traceback__ else []
    where = f" (at {last[0].filename}:{last[0].lineno})" if last else ""
    return f"{type(exc).__name__}: {exc}{where}"


# -- local ----------------------------------------------------------------------------


def _local_worker_main(conn: Connection, threads: int, devices: list[str] | None = None) -> None:
    # Set before torch is imported in this process: one BLAS/OpenMP pool of
    # `threads` threads per run, and the GPUs this worker may see (torch reads
    # CUDA_VISIBLE_DEVICES once, when CUDA initialises).
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(threads)
    if devices is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = ",".join(devices)
    exit_with_parent()
    # Ctrl-C in a terminal reaches the whole process group: the coordinator
    # answers it (stopping the workers with SIGTERM, on which a run checkpoints);
    # a worker's own KeyboardInterrupt would only print a traceback mid-step.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message is None:
            return
        task = RunTask(**message)

        def progress(info: dict[str, Any], _h=task.config_hash) -> None:
            try:
                conn.send(("progress", _h, info, None))
            except (OSError, ValueError):
                pass

        try:
            reply = ("finished", task.config_hash, *execute(task, progress))
        except Exception as exc:  # any failure of the run is reported, the worker lives on
            reply = ("failed", task.config_hash, _describe(exc), None)
        try:
            conn.send(reply)
        except (OSError, ValueError):
            return


@dataclass
class _Worker:
    process: Any
    conn: Connection
    task: RunTask | None = None
    devices: list[str] | None = None


def check_gpus_per_run(g: float, what: str = "gpus_per_run") -> float:
    """0, a fraction in (0, 1) or a whole number of GPUs (at most 64: one node)."""
    if not (g == g and 0 <= g <= 64) or (g > 1 and g != int(g)):
        raise SparsescaleError(
            f"{what}: must be 0, a fraction of one GPU such as 0.5, or a whole number of "
            f"GPUs up to 64, got {g:g}"
        )
    return float(g)


def world_size(gpus_per_run: float) -> int:
    """DDP processes per run: g for a whole g >= 2, else 1."""
    return int(gpus_per_run) if gpus_per_run >= 2 else 1


def visible_gpus() -> list[str]:
    """The CUDA device ids this process may hand out: its own CUDA_VISIBLE_DEVICES
    when set (a worker's ids must be a subset of them), else 0..count-1."""
    import torch

    count = torch.cuda.device_count()
    if count == 0:
        return []
    own = os.environ.get("CUDA_VISIBLE_DEVICES")
    ids = [d.strip() for d in own.split(",") if d.strip()] if own else []
    return ids[:count] if ids else [str(i) for i in range(count)]


def parse_devices(text: str, what: str = "--devices") -> list[str]:
    """'0,1,3' -> ['0', '1', '3']: CUDA ids (or GPU UUIDs), each once."""
    ids = [d.strip() for d in str(text).split(",")]
    if not ids or any(not d or not (d.isdigit() or d.startswith(("GPU-", "MIG-"))) for d in ids):
        raise SparsescaleError(f"{what}: expected CUDA device ids such as 0,1,2,3, got {text!r}")
    if len(set(ids)) != len(ids):
        raise SparsescaleError(f"{what}: a device is listed twice in {text!r}")
    return ids


def device_slots(
    gpus_per_run: float, devices: list[str] | None, what: str = "--gpus-per-run"
) -> list[list[str]] | None:
    """The devices of each local worker (None: CPU runs, no pinning). `devices`
    None means every GPU visible here; none visible is an error, not a hang or
    a silent CPU run. Fractions: floor(1/g) workers per device, spread over the
    devices first (worker i on device i mod len)."""
    if gpus_per_run <= 0:
        return None
    if devices is None:
        devices = visible_gpus()
        if not devices:
            raise SparsescaleError(
                f"{what} {gpus_per_run:g}: no GPU is visible to torch on this machine; "
                "train on CPUs (gpus_per_run = 0), run where GPUs are, or name them "
                "with --devices"
            )
    if gpus_per_run < 1:
        per_device = int(1.0 / gpus_per_run + 1e-9)
        return [[devices[i % len(devices)]] for i in range(per_device * len(devices))]
    g = int(gpus_per_run)
    if g > len(devices):
        raise SparsescaleError(
            f"{what} {g}: a run needs {g} GPUs but only {len(devices)} are available "
            f"({','.join(devices)})"
        )
    return [devices[i * g : (i + 1) * g] for i in range(len(devices) // g)]


class LocalExecutor:
    """K worker processes (spawned, so no state leaks from the coordinator).

    A worker that dies mid-run (killed, out of memory, segfault) is noticed
    through its process sentinel: its run is reported failed and a fresh worker
    takes its place, so the coordinator can retry the run from its checkpoint."""

    def __init__(
        self,
        workers: int | None = None,
        threads_per_run: int = 1,
        gpus_per_run: float = 0,
        devices: list[str] | None = None,
    ):
        self.threads = threads_per_run
        # GPU runs: one worker per device slot (--workers may ask for fewer)
        self._devices = device_slots(gpus_per_run, devices)
        if self._devices is not None:
            self.slots = min(workers or len(self._devices), len(self._devices))
        else:
            self.slots = max(1, workers or max(1, (os.cpu_count() or 1) // max(1, threads_per_run)))
        self._ctx = mp.get_context("spawn")
        self._workers: list[_Worker] = []

    def check(self) -> None:
        """Nothing to ask: the constructor has resolved the devices."""

    def _spawn(self, devices: list[str] | None) -> _Worker:
        parent, child = self._ctx.Pipe(duplex=True)
        proc = self._ctx.Process(
            target=_local_worker_main,
            args=(child, self.threads, devices),
            daemon=True,
            name="sparsescale-worker",
        )
        proc.start()
        child.close()
        return _Worker(proc, parent, devices=devices)

    def start(self, max_runs: int | None = None) -> None:
        """Start the workers (no more than `max_runs`, the runs there are to do)."""
        if max_runs is not None:
            self.slots = max(1, min(self.slots, max_runs))
        while len(self._workers) < self.slots:
            i = len(self._workers)
            self._workers.append(self._spawn(self._devices[i] if self._devices else None))

    def submit(self, task: RunTask) -> None:
        if not self._workers:
            self.start()
        idle = next((w for w in self._workers if w.task is None), None)
        if idle is None:
            raise RuntimeError("LocalExecutor.submit: every worker is busy")
        idle.task = task
        idle.conn.send(task.to_dict())

    def poll(self, timeout_s: float) -> list[Event]:
        busy = [w for w in self._workers if w.task is not None]
        if not busy:
            return []
        handles = {}
        for w in busy:
            handles[w.conn] = w
            handles[w.process.sentinel] = w
        ready = wait(list(handles), timeout=timeout_s)
        events: list[Event] = []
        dead: list[_Worker] = []
        touched = []
        for handle in ready:
            if handles[handle] not in touched:
                touched.append(handles[handle])
        for w in touched:
            try:
                while w.task is not None and w.conn.poll():
                    kind, h, payload, attempt = w.conn.recv()
                    events.append(Event(kind, h, payload, attempt))
                    if kind != "progress":
                        w.task = None
            except (EOFError, OSError):
                pass  # the sentinel reports the death
            if w.task is not None and not w.process.is_alive():
                dead.append(w)
        for w in dead:
            w.process.join(1.0)
            code = w.process.exitcode
            why = (
                f"killed by signal {-code}"
                if code is not None and code < 0
                else f"exit code {code}"
            )
            events.append(Event("failed", w.task.config_hash, f"worker process died ({why})"))
            w.conn.close()
            self._workers[self._workers.index(w)] = self._spawn(
                w.devices
            )  # same devices, fresh process
        return events

    def shutdown(self) -> None:
        """Stop the workers. A worker still training gets SIGTERM, on which a
        run checkpoints and exits, so an interrupted sweep loses little work."""
        for w in self._workers:
            try:
                if w.task is not None:
                    w.process.terminate()
                else:
                    w.conn.send(None)
            except (OSError, ValueError):
                pass
        for w in self._workers:
            w.process.join(15.0 if w.task is not None else 2.0)
            if w.process.is_alive():
                w.process.kill()
                w.process.join(1.0)
            w.conn.close()
        self._workers = []


# -- ray ------------------------------------------------------------------------------


def _ray_task(task_dict: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    task = RunTask(**task_dict)
    return execute(task)


class RayExecutor:
    """Each run is a Ray task with its own resources, on one machine or a
    cluster. Ray does not retry a task itself (`max_retries=0`): a run whose
    worker or whole node dies is reported failed, so the coordinator records
    the attempt and dispatches the run again, to whichever node has room, where
    it resumes from its last durable checkpoint; the same retry limit applies
    as for local runs."""

    def __init__(
        self,
        address: str | None = None,
        workers: int | None = None,
        cpus_per_run: float = 1,
        gpus_per_run: float = 0,
        max_retries: int = 0,
    ):
        try:
            import ray
        except ImportError:
            raise SparsescaleError(
                "--executor ray: Ray is not installed (pip install 'sparsescale[ray]')"
            ) from None
        self._ray = ray
        self._address = address
        self._num_cpus = workers
        self._cpus = cpus_per_run
        self._gpus = gpus_per_run
        self._max_retries = max_retries
        self._refs: dict[Any, str] = {}
        self._started_ray = False
        self.slots = 1

    def check(self) -> None:
        """Connect, and refuse GPU runs no node of the cluster can hold: Ray would
        queue such a task forever (a hang, not an error)."""
        self._connect()
        if self._gpus <= 0:
            return
        ray = self._ray
        per_node = [n.get("Resources", {}).get("GPU", 0.0) for n in ray.nodes() if n.get("Alive")]
        most = max(per_node, default=0.0)
        if most < self._gpus:
            where = f"the most on one node is {most:g}" if most else "it has no GPUs"
            raise SparsescaleError(
                f"--gpus-per-run {self._gpus:g}: no node of the Ray cluster has "
                f"{self._gpus:g} GPU(s) ({where})"
            )

    def _connect(self) -> None:
        ray = self._ray
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        if not ray.is_initialized():
            try:
                if self._address:
                    ray.init(address=self._address, log_to_driver=False)
                else:
                    ray.init(
                        num_cpus=self._num_cpus or os.cpu_count(),
                        include_dashboard=False,
                        log_to_driver=False,
                    )
            except (ConnectionError, RuntimeError, ValueError) as exc:
                raise SparsescaleError(
                    f"--ray-address {self._address}: cannot connect to Ray ({exc})"
                ) from None
            self._started_ray = True

    def start(self, max_runs: int | None = None) -> None:
        ray = self._ray
        self._connect()
        cpus = ray.cluster_resources().get("CPU", 1)
        gpus = ray.cluster_resources().get("GPU", 0)
        by_cpu = int(cpus // (self._cpus * world_size(self._gpus))) if self._cpus else 10**6
        by_gpu = int(gpus // self._gpus) if self._gpus else 10**6
        # Keep a few tasks queued beyond what runs now so the cluster never idles.
        self.slots = max(1, min(by_cpu, by_gpu)) + 1
        self._remote = ray.remote(_ray_task)

    def submit(self, task: RunTask) -> None:
        # a DDP run's ranks each use the run's threads
        ref = self._remote.options(
            num_cpus=self._cpus * world_size(self._gpus),
            num_gpus=self._gpus,
            max_retries=self._max_retries,
            retry_exceptions=False,
        ).remote(task.to_dict())
        self._refs[ref] = task.config_hash

    def poll(self, timeout_s: float) -> list[Event]:
        if not self._refs:
            return []
        ray = self._ray
        ready, _ = ray.wait(list(self._refs), num_returns=len(self._refs), timeout=timeout_s)
        events = []
        for ref in ready:
            h = self._refs.pop(ref)
            try:
                events.append(Event("finished", h, *ray.get(ref)))
            except (
                Exception
            ) as exc:  # RayTaskError, WorkerCrashedError, NodeDiedError (a lost node) ...
                text = str(exc)
                node = re.search(
                    r"node ID: ([0-9a-f]{16,})", text
                )  # Ray names a lost node only in prose
                cause = getattr(
                    exc, "cause", None
                )  # a RayTaskError's first line is Ray's frame: say the run's error
                reason = (
                    f"{type(cause).__name__}: {str(cause).splitlines()[0][:500]}"
                    if cause is not None
                    else f"{type(exc).__name__}: {text.splitlines()[0][:500]}"
                )
                events.append(Event("failed", h, reason, {"node": node.group(1)} if node else None))
        return events

    def shutdown(self) -> None:
        for ref in list(self._refs):
            self._ray.cancel(ref, force=True)
        self._refs.clear()
        if self._started_ray:
            self._ray.shutdown()


def make_executor(
    kind: str,
    workers: int | None = None,
    ray_address: str | None = None,
    threads_per_run: int = 1,
    gpus_per_run: float = 0,
    devices: list[str] | None = None,
):
    """The executor named by `--executor`. `devices` (local only): the GPU ids to
    use [default: every visible GPU when gpus_per_run > 0]."""
    if kind == "local":
        return LocalExecutor(
            workers=workers,
            threads_per_run=threads_per_run,
            gpus_per_run=gpus_per_run,
            devices=devices,
        )
    if devices is not None:
        raise SparsescaleError(
            "--devices: only for --executor local (Ray assigns each task its GPUs)"
        )
    if kind == "ray":
        return RayExecutor(
            address=ray_address,
            workers=workers,
            cpus_per_run=threads_per_run,
            gpus_per_run=gpus_per_run,
        )
    raise SparsescaleError(f"--executor: unknown executor {kind!r} (choose local or ray)")
