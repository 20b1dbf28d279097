"""`sparsescale report`: from a sweep store to a fitted law, its checks, figures
and one self-contained report.html.

Steps: read the finished runs (diverged ones are left out with a warning),
then `laws.assess` (fit the sparse law, refit without the largest N to
measure extrapolation error, bootstrap the coefficients and the recommended
sparsity, calibrate the prediction intervals), draw the figures and write
the page.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from sparsescale.atomic import write_json, write_text
from sparsescale.errors import SparsescaleError
from sparsescale.laws.regime import check_series, regime_warning
from sparsescale.sweep.export import budget_column
from sparsescale.sweep.lrscan import best_of_lr_scan
from sparsescale.sweep.spec import dense_tokens_of
from sparsescale.report.summary import (COEFFICIENTS, ReportSummary, SweepPoints, pruning_window,
                                        recommendation_sentence)
from sparsescale.sweep.store import Store

MIN_POINTS = 8  # the sparse law has 7 free coefficients


def is_report(folder: Path) -> bool:
    """Whether an existing folder holds an earlier report (its summary.json)."""
    return (folder / "summary.json").is_file()


def default_report_dir(store_path: str | Path, sweep: str | None = None) -> Path:
    """<store stem>-report beside the store; <store stem>-<sweep>-report for a
    named sweep, so reports of two sweeps of one store do not replace each other."""
    p = Path(store_path)
    return p.parent / (f"{p.stem}-{sweep}-report" if sweep else f"{p.stem}-report")


def collect(store_path: str | Path, sweep: str | None = None) -> SweepPoints:
    """Read one sweep of a store (`sweep`: its name; default the only one): finished unstructured runs become fit points; diverged
    runs are reported and excluded; n:m runs and dense pretraining runs are
    described but not fitted (the sparse law is for unstructured sparsity)."""
    with Store(store_path, readonly=True) as store:
        ids = store.sweep_ids(sweep)
        runs = store.runs(sweep_id=ids)
        curves = store.curves()
        sweeps = [s for s in store.sweeps() if s["id"] in ids]
    if not runs:
        raise SparsescaleError(f"{store_path}: the store holds no runs; run `sparsescale sweep SPEC` first")
    runs = [r for r in runs if r["axes"].get("role") != "dense-pretrain"]
    runs, lr_scan = best_of_lr_scan(runs)   # one run per grid point: its best learning rate
    unit = budget_column(runs)
    warnings: list[str] = list(lr_scan.warnings)
    notes = [s["note"] for s in sweeps if s.get("note")]
    if lr_scan.scanned:
        notes.append(f"learning-rate scan: each of the {len(lr_scan.rows)} scanned grid points is fitted with its "
                     "best lr's run (lowest final loss); the table 'Learning rate per point' shows which lr won")
    records, points = [], []
    families = sorted({r["model"] for r in runs if r["model"]})
    for r in runs:
        a = r["axes"]
        budget = a.get(unit, r.get(unit))
        label = f"S={r['sparsity']:g} N={a['n_nonzero']:,} {unit}={budget:,}"
        if r["status"] == "diverged":
            where = f" at step {r['diverged_at_step']}" if r.get("diverged_at_step") is not None else ""
            warnings.append(f"run {label} diverged{where}; it is excluded from the fit")
        if r["status"] in ("finished", "diverged"):
            records.append({"sparsity": r["sparsity"], "n_nonzero_target": a["n_nonzero"], "budget": budget,
                            "status": r["status"], "curve": curves.get(r["config_hash"], [])})
        if r["status"] != "finished":
            continue
        if (r["pattern"] or "unstructured") != "unstructured" or dense_tokens_of(a) > 0:
            continue
        if r["final_loss"] is None or not math.isfinite(r["final_loss"]):
            warnings.append(f"run {label} has no final loss; it is excluded from the fit")
            continue
        points.append((r["sparsity"], r["n_nonzero"], budget, r["final_loss"]))
    not_done = [r for r in runs if r["status"] in ("pending", "running", "failed")]
    if not_done:
        warnings.append(f"{len(not_done)} runs are not finished (pending, running or failed); "
                        "the fit uses the finished ones")
    others = [r for r in runs if r["status"] == "finished"
              and ((r["pattern"] or "unstructured") != "unstructured" or dense_tokens_of(r["axes"]) > 0)]
    if others:
        notes.append(f"{len(others)} finished n:m or pruned-from-dense runs are left out of this law (it is "
                     "for unstructured sparsity trained from scratch); their own sections below fit them")
    if len(points) < MIN_POINTS:
        raise SparsescaleError(f"{store_path}: {len(points)} finished runs; fitting the sparse law needs at "
                               f"least {MIN_POINTS} (it has 7 coefficients)")
    arr = np.array(points, dtype=float)
    if len(set(arr[:, 0])) < 2:
        raise SparsescaleError(f"{store_path}: every finished run has sparsity {arr[0, 0]:g}; the sparse law "
                               "needs at least two sparsities")
    windows = sorted({pruning_window(r) for r in runs if r["status"] == "finished" and r["sparsity"]})
    return SweepPoints(arr[:, 0], arr[:, 1], arr[:, 2], arr[:, 3], unit, records, warnings, notes,
                       ",".join(families), windows, lr_scan=lr_scan.rows)


def equivalent_dense_factors(sparsities) -> dict[str, Any]:
    """Bootstrap-derived quantities: for each S > 0 of the sweep, how much
    larger a dense model has the same N-term, f(S)^(-1/bN). They stay tight
    on sweeps that leave bN and bS themselves undetermined (issue 11)."""
    return {f"equivalent dense size at S={s:g}":
            (lambda lw, s=s: float(lw.sparsity_factor(s) ** (-1.0 / lw["bN"])))
            for s in sorted({float(v) for v in sparsities}) if s > 0}


def determination(intervals: dict[str, tuple[float, float, float]], at_bound) -> tuple[list[str], list[str]]:
    """(determined, undetermined) names: a quantity is determined when its 95%
    interval is at most as wide as its median ((high - low) / median <= 1)
    and, for a coefficient, the fit did not stop at a bound."""
    good, bad = [], []
    for name, (lo, med, hi) in intervals.items():
        ok = name not in (at_bound or []) and med > 0 and (hi - lo) / med <= 1.0
        (good if ok else bad).append(name)
    return good, bad


def main_budget(pts: SweepPoints) -> tuple[float, float]:
    """(N, C) of the report's main recommendation: the largest N of the sweep
    trained on its longest D, C = 6 N D in the law's unit."""
    n_max = float(pts.n_nonzero.max())
    return n_max, 6.0 * n_max * float(pts.data.max())


def recommendations(law, pts: SweepPoints) -> list[dict[str, Any]]:
    """S_opt at the sweep's own scale and beyond: the budget of the largest
    dense run in the sweep, and multiples of the dense compute-optimal budget.
    Each carries its calibrated 95% intervals (`interval`: sparsity, data, loss,
    dense_loss, equivalent_dense_size) when the law carries uncertainty."""
    from sparsescale.laws.planning import chinchilla_data, optimal_sparsity

    n_max, c_max = main_budget(pts)
    cases = [(n_max, c_max, "your largest run's budget")]
    for n in (n_max, 10 * n_max):
        d_star = chinchilla_data(law, n)
        for mult in (1, 5, 20):
            cases.append((n, 6.0 * n * d_star * mult, f"{mult}x the dense compute-optimal budget"))
    from sparsescale.laws.intervals import optimal_intervals

    out = []
    for n, c, why in cases:
        if not (0 < c < float("inf")):
            # a flat law (bN or bD near 0) puts D* at 0 or infinity: no such budget to plan
            continue
        opt = optimal_sparsity(law, n, c, flops="sparse")
        iv = optimal_intervals(law, opt, level=0.95, flops="sparse")  # None: the law carries no uncertainty
        out.append({"n_nonzero": n, "compute_flops": c, "why": why, "sparsity": float(opt.sparsity),
                    "data": float(opt.data), "loss": float(opt.loss), "dense_loss": float(opt.dense_loss),
                    "dense_data": float(opt.dense_data),
                    "equivalent_dense_size": float(opt.equivalent_dense_size),
                    "equivalent_dense_factor": float(opt.equivalent_dense_size) / n,
                    "interval": None if iv is None else {k: [float(v[0]), float(v[1])] for k, v in iv.items()}})
    return out


def build_report(store_path: str | Path, out_dir: str | Path, n_boot: int = 200, seed: int = 0,
                 show_progress: bool = True, sweep: str | None = None) -> ReportSummary:
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


def _build(store_path, out_dir: Path, n_boot: int, seed: int, show_progress: bool, sweep: str | None) -> ReportSummary:
    from sparsescale.report.html import render_report

    if n_boot < 0:
        raise SparsescaleError(f"--bootstrap: must be >= 0, got {n_boot}")
    pts = collect(store_path, sweep)
    fit_kwargs = {"form": "sparse", "space": "log", "delta": 1e-3}
    result = _assess(pts, n_boot, seed, show_progress, fit_kwargs)
    law, fit = result.law, result.fit
    pts.warnings.extend(result.warnings)
    regime = check_series(pts.sparsity, pts.n_nonzero, pts.data, pts.loss)
    if (why := regime_warning(regime)) is not None:
        pts.warnings.append(why)
    intervals = {} if result.bootstrap is None else {k: tuple(v) for k, v in result.bootstrap.intervals.items()}
    recs = recommendations(law, pts)
    comparison, avg_law = compare_laws(pts, recs, seed, fit_kwargs)
    fig_paths = _draw_figures(law, pts, result.holdout, out_dir,
                              avg_law if comparison is not None and comparison["disagree"] else None)
    calibration, calibration_note = _calibration(result, n_boot)
    from sparsescale.report.patterns import pattern_section, write_law

    patterns = pattern_section(store_path, sweep, law, pts, out_dir, n_boot, seed)  # None without n:m runs

    summary = ReportSummary(
        out_dir=out_dir, html=out_dir / "report.html", family=pts.family, budget_unit=pts.budget_unit,
        n_points=int(len(pts.loss)), coefficients={k: float(v) for k, v in law.coefficients.items()},
        objective=float(fit.objective), intervals=intervals,
        holdout=None if result.holdout is None else {k: v for k, v in result.holdout.items() if k not in ("mask", "law")},
        recommendations=recs, warnings=list(pts.warnings), figures=fig_paths, fit_settings=dict(fit_kwargs),
        calibration=calibration, calibration_note=calibration_note, comparison=comparison, patterns=patterns,
        regime=[x.to_dict() for x in regime], lr_scan=pts.lr_scan)
    summary.determined, summary.undetermined = determination(intervals, fit.diagnostics.get("at_bound"))
    from sparsescale.report.pretrained import pretrained_section

    summary.pretrained = pretrained_section(store_path, sweep, out_dir, law, n_boot, seed)
    law.name = pts.family or Path(store_path).stem
    write_law(out_dir / "law.json", law, patterns)  # with its uncertainty: `sparsescale predict --law` reads it
    write_json(out_dir / "summary.json", _summary_json(summary, fit))
    write_text(summary.html, render_report(summary, pts, fit.diagnostics, store_path))
    return summary


def _assess(pts: SweepPoints, n_boot: int, seed: int, show_progress: bool, fit_kwargs: dict[str, Any]):
    """laws.assess on the sweep's points, with S_opt at the report's main budget
    (the largest run's, fixed by the sweep before any fit) and the equivalent
    dense sizes as bootstrap-derived quantities, under a progress bar."""
    from sparsescale.laws.assess import assess
    from sparsescale.laws.planning import optimal_sparsity

    S, N, D, L = pts.sparsity, pts.n_nonzero, pts.data, pts.loss
    n_main, c_main = main_budget(pts)
    derived = {"S_opt": lambda lw: float(optimal_sparsity(lw, n_main, c_main).sparsity), **equivalent_dense_factors(S)}
    kwargs = dict(n_boot=n_boot, seed=seed, derived=derived,
                  units={"N": "non-zero parameters", "D": pts.budget_unit}, **fit_kwargs)
    if not show_progress or n_boot == 0:
        return assess(S, N, D, L, **kwargs)
    from rich.console import Console
    from rich.progress import Progress

    with Progress(console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("bootstrap", total=n_boot)
        return assess(S, N, D, L, progress=lambda i, n: bar.update(task, completed=i), **kwargs)


SOPT_DISAGREE = 0.05  # S_opt gap between the two laws' recommendations that the page shows as a disagreement


def _calibration(result, n_boot: int) -> tuple[dict[str, Any] | None, str]:
    """The rolling-holdout calibration assess measured, or why there is none."""
    if result.calibration is not None:
        return result.calibration.to_dict(), ""
    if n_boot == 0:
        return None, "no bootstrap was run (bootstrap 0), so the law carries no intervals to calibrate"
    why = [w for w in result.warnings if w.startswith("intervals not calibrated")]
    return None, why[0] if why else "the rolling holdouts could not be fitted on this sweep"


def compare_laws(pts: SweepPoints, recs: list[dict[str, Any]], seed: int, fit_kwargs: dict[str, Any]):
    """(comparison, average-parameter law): `compare_forms` on the sweep, plus
    each law's S_opt at the recommendations' budgets and whether they disagree
    by more than SOPT_DISAGREE anywhere. (None, None) with a warning when the
    average-parameter law cannot be fitted. Its N_avg uses the runs' pruning
    window when they share one (else the cubic 25%-75% default)."""
    from sparsescale.laws.compare import compare_forms
    from sparsescale.laws.forms import schedule_mean_sparsity_fraction
    from sparsescale.laws.planning import optimal_sparsity

    windows = pts.prune_windows
    frac = schedule_mean_sparsity_fraction("cubic", *windows[0]) if len(windows) == 1 else None
    try:
        cmp = compare_forms(pts.sparsity, pts.n_nonzero, pts.data, pts.loss, space=fit_kwargs["space"],
                            delta=fit_kwargs["delta"], seed=seed, mean_sparsity_fraction=frac)
        avg = next(sc.law for sc in cmp.scores if sc.form == "avgparam")
        sopt_avg = [float(optimal_sparsity(avg, r["n_nonzero"], r["compute_flops"]).sparsity) for r in recs]
    except SparsescaleError as exc:
        pts.warnings.append(f"comparison with the average-parameter law skipped: {exc}")
        return None, None
    avg.name = "average-parameter law"
    sopt_sparse = [r["sparsity"] for r in recs]
    gap = max(abs(a - b) for a, b in zip(sopt_sparse, sopt_avg))
    out = cmp.to_dict()
    out.update(sopt={"sparse": sopt_sparse, "avgparam": sopt_avg}, max_sopt_gap=float(gap),
               disagree=bool(gap > SOPT_DISAGREE))
    return out, avg


def _draw_figures(law, pts: SweepPoints, holdout, out_dir: Path, avg_law=None) -> dict[str, Path]:
    """The page's figures; with avg_law (the laws disagree on S_opt) its S_opt map too."""
    from sparsescale.report import figures
    from sparsescale.report.curves import plot_loss_curves

    S, N, D, L = pts.sparsity, pts.n_nonzero, pts.data, pts.loss
    fig_paths = {name: out_dir / f"{name}.png" for name in ("loss_curves", "loss_vs_n", "fit_quality", "sopt_contours")}
    plot_loss_curves(pts.records, fig_paths["loss_curves"], budget_unit=pts.budget_unit)
    figures.plot_loss_vs_n(law, S, N, D, L, fig_paths["loss_vs_n"])
    predicted = np.asarray(law.predict(S, N, D), dtype=float)
    mask = np.zeros(len(L), dtype=bool)
    if holdout is not None:
        mask = np.asarray(holdout["mask"], dtype=bool)
        predicted[mask] = np.asarray(holdout["predicted"], dtype=float)  # the extrapolation, not the full fit
    figures.plot_fit_quality(S, predicted, L, mask, fig_paths["fit_quality"])
    c_all = 6.0 * N * D
    ranges = dict(n_range=(float(N.min()) / 3, float(N.max()) * 100),
                  c_range=(float(c_all.min()) / 3, float(c_all.max()) * 1000))
    side = avg_law is not None  # same axes for both maps, so the two compare point by point
    figures.plot_sopt_contours(law, fig_paths["sopt_contours"], flops="sparse", **ranges,
                               title="S_opt under the paper's sparse law" if side else None)
    if side:
        fig_paths["sopt_contours_avgparam"] = out_dir / "sopt_contours_avgparam.png"
        figures.plot_sopt_contours(avg_law, fig_paths["sopt_contours_avgparam"], flops="sparse", **ranges,
                                   title="S_opt under the average-parameter law")
    return fig_paths


def _summary_json(s: ReportSummary, fit) -> dict[str, Any]:
    return {
        "family": s.family, "budget_unit": s.budget_unit, "n_points": s.n_points,
        "coefficients": s.coefficients, "objective": s.objective,
        "intervals": {k: {"low": v[0], "median": v[1], "high": v[2]} for k, v in s.intervals.items()},
        "holdout": s.holdout, "recommendations": s.recommendations, "warnings": s.warnings,
        "diagnostics": json.loads(json.dumps(fit.diagnostics, default=str)),
        "figures": {k: v.name for k, v in s.figures.items()},
        "determined": s.determined, "undetermined": s.undetermined,
        "calibration": s.calibration, "calibration_note": s.calibration_note or None,
        "comparison": s.comparison, "pretrained": s.pretrained,
        "patterns": None if s.patterns is None else {**s.patterns, "figure": s.patterns["figure"].name},
        "regime": s.regime,
        "lr_scan": [{k: (v if k != "losses" else {f"{lr:g}": x for lr, x in v.items()}) for k, v in row.items()}
                    for row in s.lr_scan],
    }


def print_summary(s: ReportSummary) -> None:
    """The report's essentials on the terminal."""
    from rich.console import Console
    from rich.table import Table

    console = Console()
    table = Table(title=f"Fitted sparse law ({s.n_points} runs, objective {s.objective:.3g})")
    table.add_column("coefficient")
    table.add_column("value", justify="right")
    table.add_column("95% interval", justify="right")
    for name in COEFFICIENTS:
        lo_med_hi = s.intervals.get(name)
        table.add_row(name, f"{s.coefficients[name]:.4g}",
                      f"[{lo_med_hi[0]:.4g}, {lo_med_hi[2]:.4g}]" if lo_med_hi else "-")
    console.print(table)
    if s.holdout:
        h = s.holdout
        console.print(f"holdout: fit without N = {h['held_out_n_nonzero']:,.0f} ({h['n_heldout']} runs), predicted "
                      f"them with mean |error| {h['mean_abs_rel_error'] * 100:.2f}% "
                      f"(max {h['max_abs_rel_error'] * 100:.2f}%)")
    console.print(recommendation_sentence(s.recommendations[0], s.budget_unit), highlight=False)
    iv = s.recommendations[0].get("interval")
    if iv:
        console.print(f"  (95% intervals: S_opt [{iv['sparsity'][0]:.2f}, {iv['sparsity'][1]:.2f}], "
                      f"loss [{iv['loss'][0]:.4f}, {iv['loss'][1]:.4f}])", highlight=False)
    if s.calibration:
        cov = s.calibration["coverage"]["0.95"]
        console.print(f"calibration: 95% prediction intervals covered {cov['covered']:.0%} of {cov['n_points']} "
                      f"runs held out in {len(s.calibration['folds'])} rolling holdout(s)", highlight=False)
    if s.comparison:
        console.print(f"against the average-parameter law: {s.comparison['verdict']}"
                      + ("; the two laws' S_opt disagree (both maps in the report)" if s.comparison["disagree"] else ""),
                      highlight=False)
    for name in s.intervals:
        if name.startswith("equivalent dense size"):
            lo, med, hi = s.intervals[name]
            console.print(f"{name}: {med:.2f}x [{lo:.2f}, {hi:.2f}]", highlight=False)
    if s.intervals:
        console.print(f"determined by these runs (95% interval within its median, not at a bound): "
                      f"{', '.join(s.determined) or 'none'}; not determined: {', '.join(s.undetermined) or 'none'}",
                      highlight=False)
    if s.pretrained:
        from sparsescale.report.pretrained import print_section

        print_section(console, s.pretrained)
    if s.patterns:
        from sparsescale.report.patterns import print_patterns

        print_patterns(console, s.patterns)
    for w in s.warnings:
        console.print(f"warning: {w}", style="yellow", highlight=False)
    console.print(f"report: {s.html}")
