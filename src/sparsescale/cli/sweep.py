"""`sparsescale sweep`: every run of a sweep spec trained into a store, its
dry run (the plan, FLOPs and estimated time), and `--adaptive` rounds of
`next` + sweep. Needs PyTorch."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Optional

import typer

from sparsescale.cli.app import app
from sparsescale.cli.common import (
    check_design_flags,
    checked_toml,
    propose_from,
    require_torch,
    written_by_next,
)


def _fmt_count(x: float | None) -> str:
    if x is None:
        return "-"
    for div, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= div:
            return f"{x / div:.3g}{suffix}"
    return f"{x:.3g}"


def _fmt_seconds(s: float) -> str:
    if s < 90:
        return f"{s:.0f} s"
    if s < 5400:
        return f"{s / 60:.1f} min"
    return f"{s / 3600:.1f} h"


@app.command()
def sweep(
    spec: Path = typer.Argument(
        ..., help="Sweep spec TOML, or a preset name (quick, cpu-full, vit-quick)."
    ),
    store: Optional[Path] = typer.Option(
        None, "--store", help="SQLite store [default: runs/<spec name>.sqlite]."
    ),
    executor: str = typer.Option("local", "--executor", help="local (worker processes) or ray."),
    workers: Optional[int] = typer.Option(
        None, "--workers", help="Runs at once [default: one 1-thread run per core]."
    ),
    ray_address: Optional[str] = typer.Option(
        None, "--ray-address", help="Ray cluster address (with --executor ray)."
    ),
    storage: Optional[str] = typer.Option(
        None,
        "--storage",
        help="Where run folders (checkpoints, results, dense prefixes) go: a path every node "
        "sees, or an fsspec URI such as s3://bucket/sweep [default: spec's storage, "
        "else <store stem>.runs beside the store].",
    ),
    gpus_per_run: Optional[float] = typer.Option(
        None,
        "--gpus-per-run",
        help="GPUs per run: 0 (CPU), a fraction (runs share a GPU) or a whole number "
        "(one DDP run over that many) [default: the spec's resources, else 0].",
    ),
    devices: Optional[str] = typer.Option(
        None,
        "--devices",
        help="GPU ids the local executor uses, e.g. 0,1,2,3 [default: every visible GPU].",
    ),
    dry_run: bool = typer.Option(
        False,
        "--dry-run",
        help="Print the runs, their FLOPs and the estimated time; train nothing.",
    ),
    calibrate: bool = typer.Option(
        False,
        "--calibrate",
        help="With --dry-run: time a few steps of the smallest and largest runs on the "
        "device the runs would use, and estimate device-hours from that.",
    ),
    runner: Optional[str] = typer.Option(
        None,
        "--runner",
        hidden=True,
        help="module:function that trains one run (default: sparsescale.train).",
    ),
    force: bool = typer.Option(
        False,
        "--force",
        help="Run even when a run's memory floor exceeds what this machine has free.",
    ),
    adaptive: int = typer.Option(
        0,
        "--adaptive",
        help="After the spec's runs, this many rounds of `sparsescale next` + sweep (needs "
        "--target and --budget).",
    ),
    target: Optional[str] = typer.Option(
        None,
        "--target",
        help="With --adaptive: the number to pin down (as for `sparsescale next`).",
    ),
    budget: Optional[str] = typer.Option(
        None,
        "--budget",
        help="With --adaptive: compute per round, FLOPs or a share of the compute spent (25%).",
    ),
    next_bootstrap: int = typer.Option(
        200, "--next-bootstrap", help="With --adaptive: bootstrap draws behind each round's choice."
    ),
) -> None:
    """Train every (S, N, D) run of a sweep spec into a store; safe to stop and re-run.

    Example: sparsescale sweep quick --store runs/quick.sqlite --workers 2
    """
    require_torch("sweep")  # planning builds the models; before anything is checked or written
    from sparsescale.errors import SparsescaleError
    from sparsescale.recipes.demo import spec_or_preset
    from sparsescale.sweep.coordinator import check_outputs, default_store, plan_sweep, run_sweep
    from sparsescale.sweep.spec import load_spec
    from sparsescale.sweep.worker import DEFAULT_RUNNER

    if executor not in ("local", "ray"):
        raise SparsescaleError(f"--executor: unknown executor {executor!r} (choose local or ray)")
    if workers is not None and not 1 <= workers <= 1024:
        raise SparsescaleError(f"--workers: must be between 1 and 1024, got {workers}")
    if ray_address and executor != "ray":
        raise SparsescaleError("--ray-address: only meaningful with --executor ray")
    if calibrate and not dry_run:
        raise SparsescaleError(
            "--calibrate: only with --dry-run (it times runs instead of training them)"
        )
    from sparsescale.sweep.executors import check_gpus_per_run, parse_devices

    if gpus_per_run is not None:
        check_gpus_per_run(gpus_per_run, "--gpus-per-run")
    device_ids = parse_devices(devices) if devices is not None else None
    if device_ids is not None and executor != "local":
        raise SparsescaleError(
            "--devices: only for --executor local (Ray assigns each task its GPUs)"
        )
    parsed_target = _check_adaptive(adaptive, target, budget, next_bootstrap, dry_run)
    spec = spec_or_preset(spec)
    _check_devices(spec, gpus_per_run, device_ids, executor, dry_run)
    store = store or default_store(spec)
    # Before the grid is checked, and before the store, its lock or a run folder exists (dry runs
    # too).
    check_outputs(spec, store, storage, load_spec(spec), "--store", "--storage")
    # A custom runner validates its own configs; the training layer's check is for
    # sparsescale.train.
    spec_obj, runs = _plan_with_bar(
        plan_sweep, spec, check=runner is None, gpus_per_run=gpus_per_run
    )
    # Host memory is what a local CPU run needs; a GPU run checks the GPU's free memory where it
    # trains (the run's own check), since this host's RAM says nothing about it.
    if (
        runner is None
        and executor == "local"
        and not force
        and spec_obj.resources.gpus_per_run == 0
    ):
        _check_memory(runs, spec)
    if dry_run:
        print_plan(
            spec_obj,
            runs,
            store,
            _parallel_runs(spec_obj, workers, device_ids, executor),
            calibrate=calibrate,
        )
        return
    go = dict(
        executor=executor,
        workers=workers,
        ray_address=ray_address,
        runner=runner or DEFAULT_RUNNER,
        show_progress=True,
        storage=storage,
        devices=device_ids,
    )
    _report_outcome(spec_obj, run_sweep(spec_obj, runs, store, **go), store)
    for round_ in range(1, adaptive + 1):
        next_path = _adaptive_round(
            round_, adaptive, store, spec_obj.name, parsed_target, budget, next_bootstrap
        )
        if next_path is None:
            break
        # each round runs on the devices of the first (the written spec carries no resources)
        spec_next, runs_next = _plan_with_bar(
            plan_sweep,
            next_path,
            check=runner is None,
            gpus_per_run=spec_obj.resources.gpus_per_run,
        )
        _report_outcome(spec_next, run_sweep(spec_next, runs_next, store, **go), store)
    print(f"next: sparsescale report {store}")


def _check_adaptive(adaptive: int, target, budget, next_bootstrap: int, dry_run: bool):
    """--adaptive's companions, checked before anything trains; the parsed target or None."""
    from sparsescale.errors import SparsescaleError

    if not 0 <= adaptive <= 100:
        raise SparsescaleError(f"--adaptive: must be between 0 and 100 rounds, got {adaptive}")
    if adaptive == 0:
        for flag, value in (("--target", target), ("--budget", budget)):
            if value is not None:
                raise SparsescaleError(f"{flag}: only meaningful with --adaptive ROUNDS")
        return None
    if dry_run:
        raise SparsescaleError(
            "--adaptive: cannot be planned by --dry-run (each round depends on the last's results)"
        )
    if target is None or budget is None:
        raise SparsescaleError(
            "--adaptive: needs --target and --budget (see `sparsescale next --help`)"
        )
    parsed = check_design_flags(target, budget, next_bootstrap)
    from sparsescale.units import parse_quantity

    text = budget.strip()
    value = parse_quantity(text[:-1] if text.endswith("%") else text, "--budget")
    if not value > 0:
        raise SparsescaleError(
            f"--budget: {budget!r} must be a positive number of FLOPs (or a share like 25%)"
        )
    return parsed


def _adaptive_round(
    round_: int, rounds: int, store: Path, name: str, target, budget: str, n_boot: int
) -> Path | None:
    """Propose the next batch from the store and write it as a spec beside it; None when
    nothing fits."""
    from sparsescale.atomic import check_output, write_text

    _, proposal, nxt = propose_from(
        str(store), target, budget, sweep=name, bootstrap=n_boot, seed=round_
    )
    lo, _, hi = proposal.interval
    if nxt is None:
        print(
            f"adaptive round {round_}/{rounds}: {target.label} width {hi - lo:.3g}; no run fits "
            "the budget, stopping"
        )
        return None
    path = check_output(
        store.with_name(f"{store.stem}-adaptive-{round_}.toml"),
        [store],
        what="--adaptive",
        ours=written_by_next,
    )
    write_text(path, checked_toml(nxt, str(path)))
    print(
        f"adaptive round {round_}/{rounds}: {target.label} width {hi - lo:.3g}; "
        f"{len(proposal.runs)} runs "
        f"({proposal.spent_flops:.3g} FLOPs) expected to bring it to "
        f"{proposal.expected_width:.3g} -> {path}"
    )
    return path


def _report_outcome(spec_obj, outcome, store: Path) -> None:
    counts = ", ".join(f"{n} {s}" for s, n in sorted(outcome.counts.items()))
    print(f"sweep {spec_obj.name}: {counts} ({outcome.skipped} already in the store) -> {store}")
    for h, reason in outcome.failed:
        print(f"  failed {h[:12]}: {reason}", file=sys.stderr)
    if outcome.failed:
        print(
            f"re-run the same command to retry them (up to {spec_obj.max_failures} attempts per "
            "run each time, "
            f"max_failures in the spec); the reasons are kept in {store}",
            file=sys.stderr,
        )
        raise SystemExit(1)  # some runs failed: not a usage error (2)


def _check_memory(runs, spec: Path) -> None:
    """The largest run's memory floor against this machine (local workers train
    here; Ray nodes check their own when they train)."""
    from sparsescale.train.plan import check_memory, memory_floor

    if not runs:
        return
    big = max(runs, key=lambda r: memory_floor(r.plan, r.config.get("optimizer") or "adafactor")[0])
    where = ", ".join(f"{k}={v}" for k, v in big.axes.items() if k != "role")
    check_memory(big.plan, big.config, f"{spec}: run ({where})")


def _check_devices(
    spec: Path, gpus_per_run: float | None, devices: list[str] | None, executor: str, dry_run: bool
) -> None:
    """GPU requests this machine cannot meet, refused before the (slow) planning of the runs."""
    from sparsescale.errors import SparsescaleError
    from sparsescale.sweep.executors import device_slots
    from sparsescale.sweep.spec import load_spec

    g = gpus_per_run if gpus_per_run is not None else load_spec(spec).resources.gpus_per_run
    if devices is not None and g <= 0:
        raise SparsescaleError(
            "--devices: the runs use no GPU; give --gpus-per-run (or the spec's "
            "resources.gpus_per_run) as well"
        )
    if executor == "local" and not dry_run:  # a dry run may plan a GPU sweep on a laptop
        device_slots(g, devices)


def _plan_with_bar(plan_sweep, spec: Path, check: bool, gpus_per_run: float | None = None):
    """Plan the sweep; a bar on stderr follows the check of each run (a large
    grid takes seconds to minutes; Ctrl-C stops it with one line)."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    console = Console(stderr=True)
    if not console.is_terminal:  # a log or a pipe: no bar (rich would leave a blank line there)
        return plan_sweep(spec, check=check, gpus_per_run=gpus_per_run)
    with Progress(
        TextColumn("checking runs"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task("check", total=None)
        return plan_sweep(
            spec,
            check=check,
            progress=lambda i, n: bar.update(task, completed=i, total=n),
            gpus_per_run=gpus_per_run,
        )


def _parallel_runs(spec, workers: int | None, devices: list[str] | None, executor: str) -> int:
    """Runs at once, as the executor would start them: one per device slot for GPU
    runs (the local devices, or the GPUs visible here for a dry run of a Ray
    sweep), else --workers, the spec's workers or one per core."""
    from sparsescale.sweep.executors import device_slots, visible_gpus

    g = spec.resources.gpus_per_run
    if g > 0:
        ids = devices if devices is not None else visible_gpus()
        if ids:
            slots = len(device_slots(g, ids))
            return min(workers, slots) if workers else slots
    return workers or spec.workers or (os.cpu_count() or 1)


def print_plan(spec, runs, store: Path, workers: int, calibrate: bool = False) -> None:
    """The dry run's table: each run, its size, budget, FLOPs, estimated time and
    device-hours (GPU-hours for GPU runs, core-hours for CPU runs)."""
    from rich.console import Console
    from rich.table import Table

    from sparsescale.sweep.estimate import default_cost, run_seconds, sweep_seconds
    from sparsescale.sweep.executors import world_size
    from sparsescale.sweep.store import Store

    done: dict[str, str] = {}
    finished: list[dict] = []
    if store.exists():
        with Store(store, readonly=True) as s:
            rows = s.runs()
            done = {r["config_hash"]: r["status"] for r in rows}
            finished = [r for r in rows if r["status"] == "finished"]
    gpus = spec.resources.gpus_per_run
    if calibrate:
        from sparsescale.sweep.calibrate import calibrate as time_runs

        cost = time_runs(runs, world_size(gpus), progress=lambda m: print(m, file=sys.stderr))
    else:
        cost = default_cost(finished)
    # what one run holds while it trains: its GPUs, else its CPU threads
    per_run, unit = (gpus, "GPU-h") if gpus > 0 else (float(spec.train.get("threads", 1)), "core-h")
    axis = spec.grid.budget_axis
    table = Table(title=f"sweep {spec.name}: {len(runs)} runs of {spec.family}")
    scan = any("lr" in r.axes for r in runs)  # grid.lr: each run's learning rate is a column
    for col in (
        "#",
        "S",
        "pattern",
        "N target",
        "N",
        "width",
        axis,
        *(("lr",) if scan else ()),
        "steps",
        "FLOPs sparse",
        "FLOPs dense",
        "est. time",
        unit,
        "status",
    ):
        table.add_column(col, justify="right")
    times = []
    total_sparse = total_dense = 0.0
    for i, run in enumerate(runs, 1):
        p = run.plan
        t = run_seconds(p, cost, run.config)
        status = done.get(run.config_hash, "new")
        if status not in ("finished", "diverged"):
            times.append(t)
        total_sparse += p.get("train_flops_sparse") or 0.0
        total_dense += p.get("train_flops_dense") or 0.0
        table.add_row(
            str(i),
            f"{run.config['sparsity']:.4g}",
            run.axes.get("pattern", "-"),
            _fmt_count(run.axes["n_nonzero"]),
            _fmt_count(p.get("n_nonzero")),
            str(p.get("width", "-")),
            _fmt_count(run.config[axis]),
            *((f"{run.axes['lr']:g}",) if scan else ()),
            _fmt_count(p.get("steps")),
            _fmt_count(p.get("train_flops_sparse")),
            _fmt_count(p.get("train_flops_dense")),
            _fmt_seconds(t),
            f"{t * per_run / 3600:.3g}",
            status + (" (dense pretraining)" if run.axes.get("role") else ""),
        )
    console = Console()
    console.print(table)
    console.print(
        f"total training FLOPs: {_fmt_count(total_sparse)} sparse, {_fmt_count(total_dense)} dense"
    )
    hours = sum(times) * per_run / 3600
    console.print(
        f"estimated time for the {len(times)} runs to do, {workers} at a time: "
        f"{_fmt_seconds(sweep_seconds(times, workers))}, {hours:.3g} {unit} in total "
        f"({'GUESS: ' if cost.guess else ''}{cost.source})"
    )
    console.print(f"store: {store}")
