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

PRESETS = (
    "quick",
    "cpu-full",
    "vit-quick",
    "nm",
    "nm-quick",
    "pretrained",
    "pretrained-quick",
    "gpu-small",
    "gpu-law",
)


def preset_path(name: str, what: str = "--preset") -> Path:
    """The packaged spec file of a preset (`what` names where the name came from)."""
    if name not in PRESETS:
        raise SparsescaleError(f"{what}: unknown preset {name!r} (choose {', '.join(PRESETS)})")
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

    from sparsescale.atomic import check_output
    from sparsescale.report.build import build_report, is_report, print_summary
    from sparsescale.sweep.coordinator import check_outputs, plan_sweep, run_sweep
    from sparsescale.sweep.estimate import default_cost, run_seconds, sweep_seconds
    from sparsescale.sweep.spec import load_spec

    console = Console(stderr=True)
    out_dir = Path(out_dir)
    store = out_dir / f"{preset}.sqlite"
    # what the demo writes in out_dir (store, run folders, report) is new or its own, checked before
    # any work
    check_outputs(
        preset_path(preset), store, None, load_spec(preset_path(preset)), "out_dir", "out_dir"
    )
    check_output(out_dir / "report", what="out_dir", folder=True, ours=is_report)
    spec, runs = plan_sweep(preset_path(preset))
    k = workers or spec.workers or (os.cpu_count() or 1)
    cost = default_cost()
    estimate = sweep_seconds([run_seconds(r.plan, cost, r.config) for r in runs], k)
    console.print(f"demo {preset}: {spec.description}", highlight=False)
    console.print(
        f"{len(runs)} runs, {k} at a time, roughly {estimate / 60:.0f} min", highlight=False
    )
    if spec.note:
        console.print(f"NOTE: {spec.note}", style="bold yellow", highlight=False)
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
