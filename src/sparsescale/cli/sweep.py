"""Commands `sweep`, `export`, `report` and `demo`: thin wrappers over
sparsescale.sweep, sparsescale.report and sparsescale.recipes."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Optional

import typer

from sparsescale.cli.app import app


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
    spec: Path = typer.Argument(..., help="Sweep spec TOML, or a preset name (quick, cpu-full, vit-quick)."),
    store: Optional[Path] = typer.Option(None, "--store", help="SQLite store [default: runs/<spec name>.sqlite]."),
    executor: str = typer.Option("local", "--executor", help="local (worker processes) or ray."),
    workers: Optional[int] = typer.Option(None, "--workers", help="Runs at once [default: one 1-thread run per core]."),
    ray_address: Optional[str] = typer.Option(None, "--ray-address", help="Ray cluster address (with --executor ray)."),
    storage: Optional[str] = typer.Option(
        None, "--storage", help="Where run folders (checkpoints, results, dense prefixes) go: a path every node "
                                "sees, or an fsspec URI such as s3://bucket/sweep [default: spec's storage, "
                                "else <store stem>.runs beside the store]."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the runs, their FLOPs and the estimated time; train nothing."),
    runner: Optional[str] = typer.Option(None, "--runner", hidden=True,
                                         help="module:function that trains one run (default: sparsescale.train)."),
) -> None:
    """Train every (S, N, D) run of a sweep spec into a store; safe to stop and re-run.

    Example: sparsescale sweep quick --store runs/quick.sqlite --workers 2
    """
    from sparsescale.recipes.demo import spec_or_preset

    from sparsescale.errors import SparsescaleError
    from sparsescale.sweep.coordinator import default_store, plan_sweep, run_sweep
    from sparsescale.sweep.worker import DEFAULT_RUNNER

    if executor not in ("local", "ray"):
        raise SparsescaleError(f"--executor: unknown executor {executor!r} (choose local or ray)")
    if workers is not None and not 1 <= workers <= 1024:
        raise SparsescaleError(f"--workers: must be between 1 and 1024, got {workers}")
    if ray_address and executor != "ray":
        raise SparsescaleError("--ray-address: only meaningful with --executor ray")
    if storage is not None:
        from sparsescale.storage import check_location

        check_location(storage, "--storage")
    # A custom runner validates its own configs; the training layer's check is for sparsescale.train.
    spec = spec_or_preset(spec)
    spec_obj, runs = _plan_with_bar(plan_sweep, spec, check=runner is None)
    store = store or default_store(spec)
    if dry_run:
        print_plan(spec_obj, runs, store, workers or spec_obj.workers or (os.cpu_count() or 1))
        return
    outcome = run_sweep(spec_obj, runs, store, executor=executor, workers=workers, ray_address=ray_address,
                        runner=runner or DEFAULT_RUNNER, show_progress=True, storage=storage)
    counts = ", ".join(f"{n} {s}" for s, n in sorted(outcome.counts.items()))
    print(f"sweep {spec_obj.name}: {counts} ({outcome.skipped} already in the store) -> {store}")
    for h, reason in outcome.failed:
        print(f"  failed {h[:12]}: {reason}", file=sys.stderr)
    if outcome.failed:
        print(f"re-run the same command to retry them (up to {spec_obj.max_failures} attempts per run each time, "
              f"max_failures in the spec); the reasons are kept in {store}", file=sys.stderr)
        raise SystemExit(1)  # some runs failed: not a usage error (2)
    print(f"next: sparsescale report {store}")


def _plan_with_bar(plan_sweep, spec: Path, check: bool):
    """Plan the sweep; a bar on stderr follows the check of each run (a large
    grid takes seconds to minutes; Ctrl-C stops it with one line)."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    console = Console(stderr=True)
    if not console.is_terminal:   # a log or a pipe: no bar (rich would leave a blank line there)
        return plan_sweep(spec, check=check)
    with Progress(TextColumn("checking runs"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  console=console, transient=True) as bar:
        task = bar.add_task("check", total=None)
        return plan_sweep(spec, check=check, progress=lambda i, n: bar.update(task, completed=i, total=n))


def print_plan(spec, runs, store: Path, workers: int) -> None:
    """The dry run's table: each run, its size, budget, FLOPs and estimated time."""
    from rich.console import Console
    from rich.table import Table

    from sparsescale.sweep.estimate import run_seconds, seconds_per_flop, sweep_seconds
    from sparsescale.sweep.store import Store

    done: dict[str, str] = {}
    finished: list[dict] = []
    if store.exists():
        with Store(store, readonly=True) as s:
            rows = s.runs()
            done = {r["config_hash"]: r["status"] for r in rows}
            finished = [r for r in rows if r["status"] == "finished"]
    s_per_flop, source = seconds_per_flop(finished)
    axis = spec.grid.budget_axis
    table = Table(title=f"sweep {spec.name}: {len(runs)} runs of {spec.family}")
    scan = any("lr" in r.axes for r in runs)   # grid.lr: each run's learning rate is a column
    for col in ("#", "S", "pattern", "N target", "N", "width", axis, *(("lr",) if scan else ()), "steps",
                "FLOPs sparse", "FLOPs dense", "est. time", "status"):
        table.add_column(col, justify="right")
    times = []
    total_sparse = total_dense = 0.0
    for i, run in enumerate(runs, 1):
        p = run.plan
        t = run_seconds(p, s_per_flop)
        status = done.get(run.config_hash, "new")
        if status not in ("finished", "diverged"):
            times.append(t)
        total_sparse += p.get("train_flops_sparse") or 0.0
        total_dense += p.get("train_flops_dense") or 0.0
        table.add_row(str(i), f"{run.config['sparsity']:.4g}", run.axes.get("pattern", "-"),
                      _fmt_count(run.axes["n_nonzero"]), _fmt_count(p.get("n_nonzero")), str(p.get("width", "-")),
                      _fmt_count(run.config[axis]), *((f"{run.axes['lr']:g}",) if scan else ()),
                      _fmt_count(p.get("steps")),
                      _fmt_count(p.get("train_flops_sparse")), _fmt_count(p.get("train_flops_dense")),
                      _fmt_seconds(t), status + (" (dense pretraining)" if run.axes.get("role") else ""))
    console = Console()
    console.print(table)
    console.print(f"total training FLOPs: {_fmt_count(total_sparse)} sparse, {_fmt_count(total_dense)} dense")
    console.print(f"estimated time for the {len(times)} runs to do, {workers} at a time: "
                  f"{_fmt_seconds(sweep_seconds(times, workers))} ({source})")
    console.print(f"store: {store}")


MAX_BOOTSTRAP = 100_000   # far beyond what stable 95% intervals need (a few hundred)


@app.command()
def export(
    store: Path = typer.Argument(..., help="Sweep store (SQLite)."),
    csv: Optional[Path] = typer.Option(None, "--csv", help="Write CSV here."),
    parquet: Optional[Path] = typer.Option(None, "--parquet", help="Write Parquet here."),
    sweep: Optional[str] = typer.Option(None, "--sweep", help="Sweep name [default: the store's only sweep]."),
) -> None:
    """Write one sweep's finished runs as a table that `sparsescale fit` reads (CSV on stdout by default).

    Example: sparsescale export runs/quick.sqlite --csv quick.csv
    then:    sparsescale fit quick.csv --sparsity sparsity --params n_nonzero --data tokens --loss loss
    """
    from sparsescale.atomic import check_output
    from sparsescale.errors import SparsescaleError
    from sparsescale.sweep.export import export as export_table
    from sparsescale.sweep.export import is_export

    if csv and parquet:
        raise SparsescaleError("--csv, --parquet: give one, not both")
    for out, flag in ((csv, "--csv"), (parquet, "--parquet")):
        if out:
            check_output(out, [store], what=flag, ours=is_export)
    text, n = export_table(store, csv=csv, parquet=parquet, sweep=sweep)
    if text:
        sys.stdout.write(text)
    else:
        print(f"wrote {n} runs to {csv or parquet}", file=sys.stderr)


@app.command()
def report(
    store: Path = typer.Argument(..., help="Sweep store (SQLite)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Output folder [default: <store stem>[-<sweep>]-report beside the store]."),
    bootstrap: int = typer.Option(200, "--bootstrap", help=f"Bootstrap resamples for the intervals (0 to {MAX_BOOTSTRAP:,})."),
    seed: int = typer.Option(0, "--seed", help="Seed of the fit and the bootstrap (>= 0)."),
    sweep: Optional[str] = typer.Option(None, "--sweep", help="Sweep name [default: the store's only sweep]."),
) -> None:
    """Fit the sparse scaling law to one sweep's finished runs and write report.html with figures.

    Example: sparsescale report runs/quick.sqlite --out reports/quick
    """
    from sparsescale.atomic import check_output
    from sparsescale.errors import SparsescaleError
    from sparsescale.report.build import build_report, default_report_dir, is_report, print_summary

    if not 0 <= bootstrap <= MAX_BOOTSTRAP:
        raise SparsescaleError(f"--bootstrap: must be between 0 and {MAX_BOOTSTRAP:,}, got {bootstrap}")
    if not 0 <= seed < 2**32:
        raise SparsescaleError(f"--seed: must be between 0 and 2**32-1, got {seed}")
    out = out or default_report_dir(store, sweep)
    check_output(out, [store], what="--out", folder=True, ours=is_report)
    summary = build_report(store, out, n_boot=bootstrap, seed=seed, sweep=sweep)
    print_summary(summary)


@app.command()
def preset(name: str = typer.Argument(..., help="quick, cpu-full or vit-quick.")) -> None:
    """Print a built-in sweep spec, to copy and edit into your own.

    Example: sparsescale preset quick > my-sweep.toml
    """
    from sparsescale.recipes.demo import preset_path

    sys.stdout.write(preset_path(name).read_text(encoding="utf-8"))


@app.command()
def demo(
    preset: str = typer.Option("quick", "--preset", help="quick (~10 min on 2 cores), cpu-full (~1 h) or vit-quick."),
    out: Path = typer.Option(Path("demo"), "--out", help="Folder for the store and the report."),
    workers: Optional[int] = typer.Option(None, "--workers", help="Runs at once [default: one per core]."),
) -> None:
    """Run a built-in sweep end to end: train, fit the law, check it, and write the report.

    Example: sparsescale demo --preset quick --out demo
    """
    from sparsescale.atomic import check_output
    from sparsescale.recipes.demo import run_demo

    check_output(out, what="--out", folder=True)
    run_demo(preset, out, workers=workers)
