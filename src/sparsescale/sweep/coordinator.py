"""The sweep coordinator: the one process that owns a store.

It plans the runs of a spec, records them, hands runnable ones to an executor,
and writes each result back in its own transaction. It is safe to kill at any
moment: a restart skips finished runs, re-dispatches interrupted ones (their
training resumes from its checkpoint, or a result already on disk is picked
up), and retries failed ones: each invocation gives a failed run up to
`max_failures` attempts, so re-running the command retries it, as the
message after a failure says.
"""

from __future__ import annotations

import contextlib
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sparsescale.locks import StoreLock
from sparsescale.models.registry import BUDGET_AXES
from sparsescale.storage import check_location, is_run_storage, is_uri, join
from sparsescale.sweep.executors import check_gpus_per_run, make_executor, world_size
from sparsescale.sweep.spec import PlannedRun, Resources, SweepSpec, check_runs, expand, load_spec
from sparsescale.sweep.store import Store, check_store
from sparsescale.sweep.worker import DEFAULT_RUNNER, RunTask


@dataclass
class SweepOutcome:
    store: Path
    counts: dict[str, int] = field(default_factory=dict)  # status -> runs, for this sweep's runs
    skipped: int = 0  # runs already finished or diverged when the sweep started
    failed: list[tuple[str, str]] = field(default_factory=list)  # (hash, reason)


def default_store(spec_path: str | Path) -> Path:
    """`runs/<spec stem>.sqlite` in the current folder."""
    return Path("runs") / f"{Path(spec_path).stem}.sqlite"


def run_folder(store_path: str | Path) -> Path:
    """Per-run output folders live beside the store: <store stem>.runs/<hash>/."""
    p = Path(store_path)
    return p.parent / f"{p.stem}.runs"


def check_outputs(
    spec_path: str | Path,
    store_path: str | Path,
    storage: str | None,
    spec: SweepSpec,
    store_what: str = "store",
    storage_what: str = "storage",
) -> str:
    """The output rule (sparsescale.atomic) for a sweep, before anything is
    created, dry runs included: the store is new or a sparsescale store, the
    storage (`storage`, else the spec's, else <store stem>.runs beside the store)
    is a new folder or a sweep's storage, neither is the spec nor the other, and a
    storage URI is reachable and durable. `*_what` name them in errors (the CLI's
    flags). Returns the storage."""
    from sparsescale.atomic import Output
    from sparsescale.atomic import check_outputs as check_all

    if storage is None and spec.storage is not None:
        storage, storage_what = spec.storage, f"{spec_path}: storage"
    storage = storage or str(run_folder(store_path))

    def a_store(path: Path) -> bool:
        check_store(path)  # raises, saying what the file is, when it is not a store
        return True

    outputs = [Output(store_path, store_what, a_store)]
    if not is_uri(storage):
        outputs.append(Output(storage, storage_what, is_run_storage, folder=True))
    check_all(outputs, [spec_path])
    if is_uri(storage):
        check_location(storage, storage_what, create=False)
    return storage


def plan_sweep(
    spec_path: str | Path, check: bool = True, progress=None, gpus_per_run: float | None = None
) -> tuple[SweepSpec, list[PlannedRun]]:
    """Load, expand and (with `check`) validate a spec; raises SparsescaleError
    on the first problem, before anything is trained or written. `progress(done,
    total)` follows the check of a large grid. `gpus_per_run` replaces the
    spec's resources.gpus_per_run (the --gpus-per-run flag)."""
    spec = load_spec(spec_path)
    if gpus_per_run is not None:
        spec.resources = Resources(gpus_per_run=check_gpus_per_run(gpus_per_run, "--gpus-per-run"))
    runs = expand(spec, source=str(spec_path))
    if check:
        runs = check_runs(runs, source=str(spec_path), progress=progress)
    return spec, runs


def run_sweep(
    spec: SweepSpec,
    runs: list[PlannedRun],
    store_path: str | Path,
    executor: str = "local",
    workers: int | None = None,
    ray_address: str | None = None,
    runner: str = DEFAULT_RUNNER,
    max_failures: int | None = None,
    show_progress: bool = False,
    storage: str | None = None,
    devices: list[str] | None = None,
) -> SweepOutcome:
    """Train every run of a planned sweep that the store does not have yet.
    `storage` (else the spec's `storage`, else <store stem>.runs/ beside the
    store) is where every run's durable folder goes: a path every node sees,
    or a storage URI (see sparsescale.storage). The spec's
    resources.gpus_per_run says how many GPUs each run gets; `devices` (local
    executor) which GPU ids to use [default: every visible GPU]. GPUs that do
    not exist are refused before anything is written."""
    store_path = Path(store_path)
    max_failures = spec.max_failures if max_failures is None else max_failures
    threads = int(spec.train.get("threads", 1))
    if store_path.is_file() and store_path.stat().st_size > 0:
        check_store(store_path)  # a foreign file is refused before even its .lock appears beside it
    # GPUs that do not exist are refused first: before the run folders or the store appear
    gpus = spec.resources.gpus_per_run
    slots = workers or spec.workers
    ex = make_executor(
        executor,
        workers=slots,
        ray_address=ray_address,
        threads_per_run=threads,
        gpus_per_run=gpus,
        devices=devices,
    )
    storage = storage or spec.storage or str(run_folder(store_path))
    if not is_uri(storage):  # Ray workers do not share the coordinator's working folder
        storage = str(Path(storage).resolve())
    with contextlib.ExitStack() as stack:
        stack.callback(ex.shutdown)
        ex.check()  # no GPU where runs need one: one line, before the store is touched
        check_location(storage)
        stack.enter_context(StoreLock(store_path))
        store = stack.enter_context(Store(store_path))
        sweep_id = store.add_sweep(
            spec.name, spec.model_dump(mode="json"), runs, storage, note=spec.note
        )
        rows = {r["config_hash"]: r for r in store.runs(sweep_id)}
        for run in runs:  # this planning's tokens, not those of whoever recorded the run first
            rows[run.config_hash]["data_fingerprint"] = run.plan.get("data_fingerprint")
        outcome = SweepOutcome(store_path)
        todo: deque[str] = deque()
        for run in runs:  # spec order: small runs first, dependencies first
            row = rows[run.config_hash]
            if row["status"] in ("finished", "diverged"):
                outcome.skipped += 1
            else:
                todo.append(run.config_hash)
        finished_rows = [r for r in rows.values() if r["status"] == "finished"]
        ui = (
            _ProgressUI(len(runs), outcome.skipped, len(outcome.failed), finished_rows)
            if show_progress
            else _NoUI()
        )
        stack.enter_context(ui)
        if todo:
            ex.start(max_runs=len(todo))
            stack.callback(
                ex.shutdown
            )  # (again) before the store closes: workers stop while it is locked
            _drive(
                store, ex, todo, rows, runner, max_failures, outcome, ui, storage, world_size(gpus)
            )
        outcome.counts = {}
        for r in store.runs(sweep_id):
            outcome.counts[r["status"]] = outcome.counts.get(r["status"], 0) + 1
        return outcome


def _drive(
    store: Store,
    ex,
    todo: deque[str],
    rows: dict[str, dict[str, Any]],
    runner: str,
    max_failures: int,
    outcome: SweepOutcome,
    ui,
    storage: str,
    world: int = 1,
) -> None:
    in_flight: dict[str, float] = {}
    status = {h: r["status"] for h, r in rows.items()}
    while todo or in_flight:
        # Dispatch what can start: every dependency finished.
        blocked = deque()
        while todo and len(in_flight) < ex.slots:
            h = todo.popleft()
            deps = rows[h]["depends_on"]
            if any(
                status.get(d) in ("diverged", "failed") and d not in todo and d not in in_flight
                for d in deps
            ):
                reason = "its dense pretraining run did not finish"
                store.record_failure(h, reason)
                status[h] = "failed"
                outcome.failed.append((h, reason))
                ui.done(h, "failed")
                continue
            if any(status.get(d) != "finished" for d in deps):
                blocked.append(h)
                continue
            store.mark_running(h)
            status[h] = "running"
            # The folder comes from this sweep's storage, not the row: a store may outlive a move.
            ex.submit(
                RunTask(
                    h,
                    rows[h]["config"],
                    join(storage, h[:16]),
                    runner,
                    rows[h]["data_fingerprint"],
                    world,
                )
            )
            in_flight[h] = time.time()
            ui.started(h, rows[h])
        todo.extendleft(reversed(blocked))
        if not in_flight:
            if todo:  # only blocked runs whose dependencies can never finish
                for h in todo:
                    store.record_failure(h, "its dense pretraining run is not in this sweep")
                    outcome.failed.append((h, "dependency missing"))
                todo.clear()
            break
        for ev in ex.poll(0.5):
            if ev.kind == "progress":
                ui.progress(ev.config_hash, ev.payload)
                continue
            in_flight.pop(ev.config_hash, None)
            if ev.kind == "finished":
                store.record_result(ev.config_hash, ev.payload)
                store.record_attempt(ev.config_hash, ev.payload["status"], ev.attempt)
                status[ev.config_hash] = ev.payload["status"]
                ui.done(ev.config_hash, ev.payload["status"], ev.payload)
            else:
                store.record_attempt(ev.config_hash, "failed", ev.attempt, ev.payload)
                failures = store.record_failure(ev.config_hash, ev.payload)
                if (
                    failures - rows[ev.config_hash]["failures"] < max_failures
                ):  # this invocation's attempts
                    todo.append(ev.config_hash)  # retried; training resumes from its checkpoint
                    status[ev.config_hash] = "pending"
                    ui.retry(ev.config_hash, ev.payload)
                else:
                    status[ev.config_hash] = "failed"
                    outcome.failed.append((ev.config_hash, ev.payload))
                    ui.done(ev.config_hash, "failed")
        ui.tick()


def _label(row: dict[str, Any]) -> str:
    a = row["axes"]
    budget = next((f"{k[0].upper()}={a[k]:.3g}" for k in BUDGET_AXES if k in a), "")
    pat = "" if a.get("pattern", "unstructured") == "unstructured" else f" {a['pattern']}"
    return f"S={a['sparsity']:.3g}{pat} N={a['n_nonzero']:.3g} {budget}"


class _NoUI:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def started(self, h, row): ...
    def progress(self, h, info): ...
    def done(self, h, status, result=None): ...
    def retry(self, h, reason): ...
    def tick(self): ...


class _ProgressUI(_NoUI):
    """A rich progress bar for the sweep and one per run in flight. A run's bar
    follows the steps its worker reports; for a runner that reports none it
    follows the elapsed time against the run's estimated time (its FLOPs at
    the speed of the runs finished so far), capped below 100% until it ends."""

    def __init__(
        self,
        total: int,
        skipped: int,
        failed: int,
        finished_rows: list[dict[str, Any]] | None = None,
    ):
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        from sparsescale.sweep.estimate import seconds_per_flop

        self.console = Console(stderr=True)
        self.bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.fields[info]}"),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=self.console,
            transient=False,
        )
        self.sweep = self.bar.add_task(
            "sweep", total=total, completed=skipped + failed, info="runs"
        )
        self.rows: dict[str, dict[str, Any]] = {}
        self.finished: list[dict[str, Any]] = list(finished_rows or [])
        self.s_per_flop = seconds_per_flop(self.finished)[0]

    def __enter__(self):
        self.bar.start()
        return self

    def __exit__(self, *exc):
        self.bar.stop()
        return False

    def started(self, h, row):
        flops = (row.get("plan") or {}).get("train_flops_dense") or 0.0
        task = self.bar.add_task(f"  {_label(row)}", total=100, info="", completed=0)
        self.rows[h] = {
            "task": task,
            "t0": time.time(),
            "flops": flops,
            "steps": (row.get("plan") or {}).get("steps"),
            "reported": False,
        }

    def progress(self, h, info):
        r = self.rows.get(h)
        total = info.get("steps") or (r or {}).get("steps")  # train() reports its own total
        if r and total and "step" in info:
            r["reported"] = True
            text = f"loss {info['loss']:.3f}" if isinstance(info.get("loss"), (int, float)) else ""
            self.bar.update(r["task"], completed=100.0 * info["step"] / total, info=text)

    def tick(self):
        now = time.time()
        for r in self.rows.values():
            if not r["reported"] and r["flops"]:
                est = r["flops"] * self.s_per_flop
                self.bar.update(
                    r["task"],
                    completed=min(99.0, 100.0 * (now - r["t0"]) / max(est, 1e-9)),
                    info=f"~{max(0.0, est - (now - r['t0'])):.0f} s left",
                )

    def done(self, h, status, result=None):
        r = self.rows.pop(h, None)
        if r is not None:
            self.bar.remove_task(r["task"])
        if result and result.get("wall_s") and result.get("train_flops_dense"):
            from sparsescale.sweep.estimate import seconds_per_flop

            self.finished.append(result)
            self.s_per_flop = seconds_per_flop(self.finished)[0]
        self.bar.advance(self.sweep)
        if status != "finished":
            self.console.print(f"run {h[:12]}: {status}")

    def retry(self, h, reason):
        r = self.rows.pop(h, None)
        if r is not None:
            self.bar.remove_task(r["task"])
        self.console.print(f"run {h[:12]} failed ({reason}); retrying")
