"""What `build_report` returns: the report's results as plain data (the same
dicts summary.json holds, for callers and tests) and the typed sections they
were rendered from (for the terminal summary)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sparsescale.report.sections.calibration import Calibration
from sparsescale.report.sections.comparison import LawComparison
from sparsescale.report.sections.fit_figures import FitFigures
from sparsescale.report.sections.from_dense import FromDense
from sparsescale.report.sections.law_fit import LawFit
from sparsescale.report.sections.lr_scan import LrScan
from sparsescale.report.sections.patterns import Patterns
from sparsescale.report.sections.recommendation import Recommendation
from sparsescale.report.sections.regime import Regime


@dataclass
class ReportSections:
    """Every section of one report, in page order (None: the sweep has no such runs)."""

    law_fit: LawFit
    recommendation: Recommendation
    calibration: Calibration
    lr_scan: LrScan
    comparison: LawComparison | None
    regime: Regime
    figures: FitFigures
    from_dense: FromDense | None
    patterns: Patterns | None


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
    fit_settings: dict[str, Any] = field(default_factory=dict)  # form, space, delta of the fit
    determined: list[str] = field(default_factory=list)  # see report.determined.determination
    undetermined: list[str] = field(default_factory=list)
    # Calibration.to_dict() of the rolling holdouts, or None with the reason in calibration_note
    calibration: dict[str, Any] | None = None
    calibration_note: str = ""
    # compare_forms against the average-parameter law: its to_dict(), plus each
    # law's S_opt at the recommendations' budgets ("sopt": {form: [...]}) and "disagree"
    comparison: dict[str, Any] | None = None
    # the from-dense section (pruned from dense vs from scratch vs dense) as summary.json's
    # "pretrained" holds it; None without pruned runs
    pretrained: dict[str, Any] | None = None
    # the n:m section: the pattern laws, what they determine, their figure (a path); None without
    # n:m runs
    patterns: dict[str, Any] | None = None
    # laws.regime.check_series of the fitted runs: each (S, N) series' drops per doubling of D and
    # verdict
    regime: list[dict[str, Any]] = field(default_factory=list)
    # the learning-rate scan's winner per grid point (SweepPoints.lr_scan); empty without a scan
    lr_scan: list[dict[str, Any]] = field(default_factory=list)
    # the typed sections the fields above come from (print_summary renders them)
    sections: ReportSections | None = field(default=None, repr=False, compare=False)
