"""`sparsescale demo`: a built-in sweep end to end. Train the preset's grid,
fit the sparse scaling law, check it by extrapolating to the largest N, and
write the report with an optimal-sparsity recommendation.

Presets are TOML sweep specs packaged in recipes/presets/, their one source:
`sparsescale preset NAME` prints one to copy and edit, and `sparsescale sweep
NAME` runs one by name.
"""

from __future__ import annotations

import os
import time
from importlib import resources
from pathlib import Path

from sparsescale.errors import SparsescaleError

PRESETS = ("quick", "cpu-full", "vit-quick", "nm", "nm-quick", "pretrained", "pretrained-quick", "gpu-small")


def preset_path(name: str) -> Path:
    """The packaged spec file of a preset."""
    if name not in PRESETS:
        raise SparsescaleError(f"--preset: unknown preset {name!r} (choose {', '.join(PRESETS)})")
    return Path(str(resources.files("sparsescale.recipes") / "presets" / f"{name}.toml"))


def spec_or_preset(spec: str | Path) -> Path:
    """A sweep spec path as given, or the packaged preset of that name when no
    such file exists (so `sparsescale sweep quick` runs the quick preset)."""
    path = Path(spec)
    if not path.exists() and str(spec) in PRESETS:
        return preset_path(str(spec))
    return path


def run_demo(preset: str, out_dir: str | Path, workers: int | None = None, n_boot: int = 200):
    """Run a preset into out_dir/<preset>.sqlite and write out_dir/report/.
    Re-running continues where a previous (interrupted) demo stopped."""
    from rich.console import Console

    from sparsescale.report.build import build_report, print_summary
    from sparsescale.sweep.coordinator import plan_sweep, run_sweep
    from sparsescale.sweep.estimate import run_seconds, seconds_per_flop, sweep_seconds

    console = Console(stderr=True)
    out_dir = Path(out_dir)
    spec, runs = plan_sweep(preset_path(preset))
    k = workers or spec.workers or (os.cpu_count() or 1)
    s_per_flop, _ = seconds_per_flop()
    estimate = sweep_seconds([run_seconds(r.plan, s_per_flop) for r in runs], k)
    console.print(f"demo {preset}: {spec.description}", highlight=False)
    console.print(f"{len(runs)} runs, {k} at a time, roughly {estimate / 60:.0f} min", highlight=False)
    if spec.note:
        console.print(f"NOTE: {spec.note}", style="bold yellow", highlight=False)
    store = out_dir / f"{preset}.sqlite"
    t0 = time.time()
    outcome = run_sweep(spec, runs, store, workers=k, show_progress=True)
    train_s = time.time() - t0
    for h, reason in outcome.failed:
        console.print(f"run {h[:12]} failed: {reason}", style="red", highlight=False)
    console.print(f"sweep done in {train_s / 60:.1f} min -> {store}", highlight=False)
    summary = build_report(store, out_dir / "report", n_boot=n_boot)
    print_summary(summary)
    console.print(f"total {(time.time() - t0) / 60:.1f} min", highlight=False)
    return summary
