"""`sparsescale report`: from a sweep store to a fitted law, its checks, figures
and one self-contained report.html.

Steps: read the finished runs (report.points; diverged ones are left out with
a warning), then `laws.uncertainty.assess` (fit the sparse law, refit without the largest
N to measure extrapolation error, bootstrap the coefficients and the
recommended sparsity, calibrate the prediction intervals), then compute each
section (report/sections/), draw the figures and write the page, law.json and
summary.json. This module only orders the sections and assembles their
renderings; the sections import nothing from it.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from sparsescale.atomic import write_json, write_text
from sparsescale.errors import SparsescaleError
from sparsescale.laws.jsonsafe import finite_json
from sparsescale.report.html import page
from sparsescale.report.lawfile import write_law
from sparsescale.report.points import SweepPoints, collect
from sparsescale.report.sections import (
    calibration,
    comparison,
    fit_figures,
    from_dense,
    law_fit,
    lr_scan,
    patterns,
    recommendation,
    regime,
)
from sparsescale.report.summary import ReportSections, ReportSummary


def is_report(folder: Path) -> bool:
    """Whether an existing folder holds an earlier report (its summary.json)."""
    return (folder / "summary.json").is_file()


def default_report_dir(store_path: str | Path, sweep: str | None = None) -> Path:
    """<store stem>-report beside the store; <store stem>-<sweep>-report for a
    named sweep, so reports of two sweeps of one store do not replace each other."""
    p = Path(store_path)
    return p.parent / (f"{p.stem}-{sweep}-report" if sweep else f"{p.stem}-report")


def build_report(
    store_path: str | Path,
    out_dir: str | Path,
    n_boot: int = 200,
    seed: int = 0,
    show_progress: bool = True,
    sweep: str | None = None,
) -> ReportSummary:
    """Fit, check and plot one sweep of a store (`sweep`: its name; default the
    only one); write report.html and friends into out_dir. Numerical warnings of
    the optimiser's trial points (overflow in exp far from the optimum) are
    expected and say nothing about the result, so they are not printed."""
    import warnings

    from sparsescale.atomic import check_output

    check_output(out_dir, [store_path], what="out_dir", folder=True, ours=is_report)
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        return _build(store_path, Path(out_dir), n_boot, seed, show_progress, sweep)


def _build(
    store_path, out_dir: Path, n_boot: int, seed: int, show_progress: bool, sweep: str | None
) -> ReportSummary:
    if n_boot < 0:
        raise SparsescaleError(f"--bootstrap: must be >= 0, got {n_boot}")
    pts = collect(store_path, sweep)
    settings = dict(law_fit.FIT_SETTINGS)
    result = law_fit.assess_sweep(pts, n_boot, seed, show_progress, settings)
    law = result.law
    pts.warnings.extend(result.warnings)
    # The order below is the order of the warnings and notes on the page: each
    # step may add to pts.warnings (and the patterns to pts.notes).
    reg = regime.compute(pts)
    if reg.warning is not None:
        pts.warnings.append(reg.warning)
    fit = law_fit.compute(result, pts, settings)
    rec = recommendation.compute(law, pts)
    cmp, avg_law = comparison.compute(pts, rec, seed, settings)
    figs = fit_figures.compute(
        law, pts, result.holdout, out_dir, avg_law if cmp is not None and cmp.disagree else None
    )
    cal = calibration.compute(result, n_boot)
    pat = patterns.compute(store_path, sweep, law, pts, out_dir, n_boot, seed)
    lr = lr_scan.compute(pts)
    warnings = list(pts.warnings)  # the from-dense section keeps its own warnings
    fd = from_dense.compute(store_path, sweep, out_dir, law, n_boot, seed)
    secs = ReportSections(
        law_fit=fit,
        recommendation=rec,
        calibration=cal,
        lr_scan=lr,
        comparison=cmp,
        regime=reg,
        figures=figs,
        from_dense=fd,
        patterns=pat,
    )
    summary = _summary(secs, pts, out_dir, warnings)
    law.name = pts.family or Path(store_path).stem
    write_law(
        out_dir / "law.json", law, summary.patterns
    )  # with its uncertainty: `sparsescale predict --law` reads it
    write_json(out_dir / "summary.json", _summary_json(summary))
    write_text(summary.html, _page(secs, pts, summary, store_path, out_dir))
    return summary


def _summary(
    secs: ReportSections, pts: SweepPoints, out_dir: Path, warnings: list[str]
) -> ReportSummary:
    """The sections as the plain data `build_report` has always returned."""
    fit = secs.law_fit
    return ReportSummary(
        out_dir=out_dir,
        html=out_dir / "report.html",
        family=pts.family,
        budget_unit=pts.budget_unit,
        n_points=fit.n_points,
        coefficients=fit.coefficients,
        objective=fit.objective,
        intervals=fit.intervals,
        holdout=fit.holdout,
        recommendations=[asdict(p) for p in secs.recommendation.plans],
        warnings=warnings,
        figures=secs.figures.paths,
        fit_settings=fit.fit_settings,
        determined=fit.determined,
        undetermined=fit.undetermined,
        calibration=secs.calibration.calibration,
        calibration_note=secs.calibration.note,
        comparison=None if secs.comparison is None else asdict(secs.comparison),
        pretrained=from_dense.to_json(secs.from_dense),
        patterns=None if secs.patterns is None else asdict(secs.patterns),
        regime=secs.regime.series,
        lr_scan=secs.lr_scan.rows,
        sections=secs,
    )


def _page(
    secs: ReportSections, pts: SweepPoints, s: ReportSummary, store_path, out_dir: Path
) -> str:
    """report.html: the Summary (recommendation, calibration, extrapolation check,
    notes, warnings, lr scan), then every section in page order."""
    figs = secs.figures.paths
    summary = (
        recommendation.summary_html(secs.recommendation)
        + calibration.to_html(secs.calibration)
        + law_fit.holdout_html(secs.law_fit)
    )
    body = (
        law_fit.to_html(secs.law_fit)
        + recommendation.to_html(secs.recommendation, figs)
        + comparison.to_html(secs.comparison, secs.recommendation, figs)
        + regime.to_html(secs.regime)
        + fit_figures.to_html(secs.figures)
        + from_dense.to_html(secs.from_dense, out_dir)
        + patterns.to_html(secs.patterns)
    )
    return page(
        store_path,
        s.family,
        s.n_points,
        summary,
        pts.notes,
        s.warnings,
        lr_scan.to_html(secs.lr_scan),
        body,
    )


def _summary_json(s: ReportSummary) -> dict[str, Any]:
    """summary.json: each section's to_json, in the file's historical key order."""
    secs = s.sections
    fit = law_fit.to_json(secs.law_fit)
    cal = calibration.to_json(secs.calibration)
    return finite_json(
        {
            "family": s.family,
            "budget_unit": s.budget_unit,
            "n_points": s.n_points,
            "coefficients": fit["coefficients"],
            "objective": fit["objective"],
            "intervals": fit["intervals"],
            "holdout": fit["holdout"],
            "recommendations": recommendation.to_json(secs.recommendation),
            "warnings": s.warnings,
            "diagnostics": fit["diagnostics"],
            "figures": fit_figures.to_json(secs.figures),
            "determined": fit["determined"],
            "undetermined": fit["undetermined"],
            "calibration": cal["calibration"],
            "calibration_note": cal["calibration_note"],
            "comparison": comparison.to_json(secs.comparison),
            "pretrained": from_dense.to_json(secs.from_dense),
            "patterns": patterns.to_json(secs.patterns),
            "regime": regime.to_json(secs.regime),
            "lr_scan": lr_scan.to_json(secs.lr_scan),
        }
    )[0]


def print_summary(s: ReportSummary) -> None:
    """The report's essentials on the terminal: each section's to_text, in the
    order of the page's argument (law, recommendation, checks, the other sections)."""
    from rich.console import Console

    secs = s.sections
    console = Console()
    lines = (
        law_fit.to_text(secs.law_fit)
        + recommendation.to_text(secs.recommendation)
        + calibration.to_text(secs.calibration)
        + comparison.to_text(secs.comparison)
        + law_fit.determination_text(secs.law_fit)
        + from_dense.to_text(secs.from_dense)
        + patterns.to_text(secs.patterns)
        + lr_scan.to_text(secs.lr_scan)
        + regime.to_text(secs.regime)
        + fit_figures.to_text(secs.figures)
    )
    for line in (
        lines
    ):  # strings unhighlighted, as the page writes them; tables and styled texts as they are
        console.print(line, highlight=False) if isinstance(line, str) else console.print(line)
    for w in s.warnings:
        console.print(f"warning: {w}", style="yellow", highlight=False)
    console.print(f"report: {s.html}")
