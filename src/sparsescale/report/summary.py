"""What a report says, as data: the sweep's points, the fitted summary and the
sentence that states the recommendation. report.build computes these;
report.html renders them (neither imports the other's internals)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

COEFFICIENTS = ("aS", "bS", "cS", "bN", "aD", "bD", "c")


@dataclass
class SweepPoints:
    """The runs of a store as arrays for the fitter, plus what was left out."""
    sparsity: np.ndarray
    n_nonzero: np.ndarray
    data: np.ndarray
    loss: np.ndarray
    budget_unit: str
    records: list[dict[str, Any]]       # every finished or diverged run, for the curves figure
    warnings: list[str]
    notes: list[str]
    family: str
    # (start, end) fractions of training over which the runs were pruned, as the runs recorded them
    prune_windows: list[tuple[float, float]] = field(default_factory=list)
    # a learning-rate scan's winners, one row per scanned grid point (sweep/lrscan.py); empty without a scan
    lr_scan: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class ReportSummary:
    out_dir: Path
    html: Path
    family: str
    budget_unit: str
    n_points: int
    coefficients: dict[str, float]
    objective: float
    intervals: dict[str, tuple[float, float, float]]
    holdout: dict[str, Any] | None
    recommendations: list[dict[str, Any]]
    warnings: list[str] = field(default_factory=list)
    figures: dict[str, Path] = field(default_factory=dict)
    fit_settings: dict[str, Any] = field(default_factory=dict)   # form, space, delta of the fit
    determined: list[str] = field(default_factory=list)     # see report.build.determination
    undetermined: list[str] = field(default_factory=list)
    # Calibration.to_dict() of the rolling holdouts, or None with the reason in calibration_note
    calibration: dict[str, Any] | None = None
    calibration_note: str = ""
    # compare_forms against the average-parameter law: its to_dict(), plus each
    # law's S_opt at the recommendations' budgets ("sopt": {form: [...]}) and "disagree"
    comparison: dict[str, Any] | None = None
    # report.pretrained's section (pruned from dense vs from scratch vs dense); None without pruned runs
    pretrained: dict[str, Any] | None = None
    # report.patterns.pattern_section: the n:m pattern laws, what they determine, their figure (None: no n:m runs)
    patterns: dict[str, Any] | None = None
    # laws.regime.check_series of the fitted runs: each (S, N) series' drops per doubling of D and verdict
    regime: list[dict[str, Any]] = field(default_factory=list)
    # the learning-rate scan's winner per grid point (SweepPoints.lr_scan); empty without a scan
    lr_scan: list[dict[str, Any]] = field(default_factory=list)


def pruning_window(run: dict[str, Any]) -> tuple[float, float]:
    """A store run's pruning window: from its RunResult, else its config, else the
    RunConfig defaults (which stores written before the window was recorded used)."""
    from sparsescale.train.config import RunConfig

    result, config = run.get("result"), run.get("config") or {}
    out = []
    for key in ("prune_start", "prune_end"):
        value = getattr(result, key, None)
        value = config.get(key) if value is None else value
        out.append(float(RunConfig.model_fields[key].default if value is None else value))
    return out[0], out[1]


def recommendation_sentence(rec: dict[str, Any], unit: str) -> str:
    gain = (rec["dense_loss"] - rec["loss"]) / rec["dense_loss"] * 100 if rec["dense_loss"] else 0.0
    if rec["sparsity"] < 0.01:
        return (f"At a budget of C = {rec['compute_flops']:.3g} FLOPs and N = {rec['n_nonzero']:,.0f} non-zero "
                f"parameters, train dense (S = 0) on D = {rec['data']:.3g} {unit}: sparsity does not pay at this budget.")
    return (f"At a budget of C = {rec['compute_flops']:.3g} FLOPs and N = {rec['n_nonzero']:,.0f} non-zero parameters, "
            f"train at S = {rec['sparsity']:.2f} on D = {rec['data']:.3g} {unit}: predicted loss {rec['loss']:.4f} "
            f"against {rec['dense_loss']:.4f} dense ({gain:.1f}% lower), as good as a dense model "
            f"{rec['equivalent_dense_factor']:.2f}x larger.")
