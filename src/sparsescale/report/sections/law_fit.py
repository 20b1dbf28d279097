"""The fitted sparse law: `laws.uncertainty.assess` on the sweep's points (the fit, a refit
without the largest N, the bootstrap and the calibration), and the section
that shows its coefficients, their intervals and which of them the runs
determine."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from typing import Any

from sparsescale.laws.jsonsafe import finite_json
from sparsescale.report.determined import determination, equivalent_dense_factors
from sparsescale.report.points import SweepPoints, main_budget
from sparsescale.report.render import esc, fmt

COEFFICIENTS = ("aS", "bS", "cS", "bN", "aD", "bD", "c")
# The report's one fit: the sparse form, Huber on log loss with the paper's delta.
FIT_SETTINGS = {"form": "sparse", "space": "log", "delta": 1e-3}


def assess_sweep(
    pts: SweepPoints, n_boot: int, seed: int, show_progress: bool, fit_settings: dict[str, Any]
):
    """laws.uncertainty.assess on the sweep's points, with S_opt at the report's main budget
    (the largest run's, fixed by the sweep before any fit) and the equivalent
    dense sizes as bootstrap-derived quantities, under a progress bar."""
    from sparsescale.laws.planning import optimal_sparsity
    from sparsescale.laws.points import FitOptions, Points
    from sparsescale.laws.uncertainty.assess import assess

    points = Points(pts.sparsity, pts.n_nonzero, pts.data, pts.loss)
    n_main, c_main = main_budget(pts)
    derived = {
        "S_opt": lambda lw: float(optimal_sparsity(lw, n_main, c_main).sparsity),
        **equivalent_dense_factors(pts.sparsity),
    }
    options = FitOptions(
        seed=seed, units={"N": "non-zero parameters", "D": pts.budget_unit}, **fit_settings
    )
    kwargs = dict(n_boot=n_boot, derived=derived)
    if not show_progress or n_boot == 0:
        return assess(points, options, **kwargs)
    from rich.console import Console
    from rich.progress import Progress

    with Progress(console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("bootstrap", total=n_boot)
        return assess(
            points, options, progress=lambda i, n: bar.update(task, completed=i), **kwargs
        )


@dataclass
class LawFit:
    budget_unit: str
    n_points: int
    coefficients: dict[str, float]
    objective: float
    # bootstrap (low, median, high) per coefficient and derived quantity; {} without a bootstrap
    intervals: dict[str, tuple[float, float, float]]
    # the refit without the largest N: its errors on the held-out runs (laws.holdout), None if it
    # failed
    holdout: dict[str, Any] | None
    determined: list[str]
    undetermined: list[str]
    fit_settings: dict[str, Any]  # form, space, delta of the fit
    diagnostics: dict[str, Any]  # the optimiser's, as laws.fit returned them


def compute(result, pts: SweepPoints, fit_settings: dict[str, Any]) -> LawFit:
    """The section of an AssessResult (`assess_sweep`) on `pts`."""
    law, fit = result.law, result.fit
    intervals = (
        {}
        if result.bootstrap is None
        else {k: tuple(v) for k, v in result.bootstrap.intervals.items()}
    )
    good, bad = determination(intervals, fit.diagnostics.get("at_bound"))
    return LawFit(
        budget_unit=pts.budget_unit,
        n_points=int(len(pts.loss)),
        coefficients={k: float(v) for k, v in law.coefficients.items()},
        objective=float(fit.objective),
        intervals=intervals,
        holdout=None
        if result.holdout is None
        else {k: v for k, v in result.holdout.items() if k not in ("mask", "law")},
        determined=good,
        undetermined=bad,
        fit_settings=dict(fit_settings),
        diagnostics=fit.diagnostics,
    )


def to_json(sec: LawFit) -> dict[str, Any]:
    """summary.json's keys of this section (intervals as low/median/high)."""
    out = asdict(sec)
    out["intervals"] = {
        k: {"low": v[0], "median": v[1], "high": v[2]} for k, v in sec.intervals.items()
    }
    # the optimiser's diagnostics hold whatever scipy returned: anything not JSON becomes its str()
    out["diagnostics"] = json.loads(json.dumps(sec.diagnostics, default=str))
    return finite_json(out)[0]


def _delta(fit_settings: dict[str, Any]) -> str:
    """The Huber delta as written in the page, e.g. 10^-3."""
    delta = fit_settings.get("delta")
    if delta is None:
        return "?"
    exponent = math.log10(delta)
    if abs(exponent - round(exponent)) < 1e-9:
        return (
            f"10<sup>&minus;{-round(exponent)}</sup>"
            if exponent < 0
            else f"10<sup>{round(exponent)}</sup>"
        )
    return f"{delta:g}"


def _factors(sec: LawFit) -> list[tuple[str, tuple[float, float, float]]]:
    return [(k, v) for k, v in sec.intervals.items() if k.startswith("equivalent dense size")]


def to_html(sec: LawFit) -> list[str]:
    space = "log loss" if sec.fit_settings.get("space", "log") == "log" else "loss"
    parts = [
        "<h2>Fitted law</h2>",
        "<p>L(S, N, D) = (a<sub>S</sub>(1&minus;S)<sup>b<sub>S</sub></sup> + c<sub>S</sub>) "
        "N<sup>&minus;b<sub>N</sub></sup> + (a<sub>D</sub>/D)<sup>b<sub>D</sub></sup> + c, "
        f"with N in non-zero parameters and D in {esc(sec.budget_unit)}. Huber loss "
        f"(&delta; = {_delta(sec.fit_settings)}) on {space}; objective {sec.objective:.3g}.</p>",
        "<table><tr><th>coefficient</th><th>value</th><th>bootstrap median</th><th>95% "
        "interval</th></tr>",
    ]
    for name in COEFFICIENTS:
        iv = sec.intervals.get(name)
        parts.append(
            f"<tr><td>{name}</td><td class='num'>{fmt(sec.coefficients[name])}</td>"
            + (
                f"<td class='num'>{fmt(iv[1])}</td><td class='num'>[{fmt(iv[0])}, "
                f"{fmt(iv[2])}]</td>"
                if iv
                else "<td>-</td><td>-</td>"
            )
            + "</tr>"
        )
    parts.append("</table>")
    if sec.intervals:
        factors = [f"{esc(k)}: {v[1]:.2f}x [{v[0]:.2f}, {v[2]:.2f}]" for k, v in _factors(sec)]
        parts.append(
            "<p>Determined by these runs (95% interval no wider than its median, not at a bound): "
            f"<b>{esc(', '.join(sec.determined) or 'none')}</b>. Not determined: "
            f"{esc(', '.join(sec.undetermined) or 'none')}; read those as one of many laws that "
            "fit "
            "equally well, not as measurements.</p>"
            + (f"<p>{'; '.join(factors)}.</p>" if factors else "")
        )
    if sec.diagnostics:
        shown = {
            k: v
            for k, v in sec.diagnostics.items()
            if isinstance(v, (int, float, str, bool, list)) and len(str(v)) < 200
        }
        parts.append(
            "<p>Optimiser diagnostics: "
            + esc(", ".join(f"{k} = {v}" for k, v in shown.items()))
            + "</p>"
        )
    return parts


def holdout_html(sec: LawFit) -> list[str]:
    """The extrapolation check, for the page's summary."""
    if not sec.holdout:
        return []
    h = sec.holdout
    return [
        "<p>Extrapolation check: fitted without the largest size (N = "
        f"{h['held_out_n_nonzero']:,.0f}, "
        f"{h['n_heldout']} runs), the law predicts those runs with a mean absolute error of "
        f"<b>{h['mean_abs_rel_error'] * 100:.2f}%</b> (max "
        f"{h['max_abs_rel_error'] * 100:.2f}%).</p>"
    ]


def to_text(sec: LawFit) -> list:
    """The coefficient table (a rich Table) and the holdout line, for the terminal."""
    from rich.table import Table

    table = Table(title=f"Fitted sparse law ({sec.n_points} runs, objective {sec.objective:.3g})")
    table.add_column("coefficient")
    table.add_column("value", justify="right")
    table.add_column("95% interval", justify="right")
    for name in COEFFICIENTS:
        lo_med_hi = sec.intervals.get(name)
        table.add_row(
            name,
            f"{sec.coefficients[name]:.4g}",
            f"[{lo_med_hi[0]:.4g}, {lo_med_hi[2]:.4g}]" if lo_med_hi else "-",
        )
    out: list = [table]
    if sec.holdout:
        h = sec.holdout
        out.append(
            f"holdout: fit without N = {h['held_out_n_nonzero']:,.0f} ({h['n_heldout']} runs), "
            "predicted "
            f"them with mean |error| {h['mean_abs_rel_error'] * 100:.2f}% "
            f"(max {h['max_abs_rel_error'] * 100:.2f}%)"
        )
    return out


def determination_text(sec: LawFit) -> list[str]:
    """The equivalent dense sizes and what the runs determine, for the terminal
    (printed after the recommendation, as the page does)."""
    out = [f"{name}: {med:.2f}x [{lo:.2f}, {hi:.2f}]" for name, (lo, med, hi) in _factors(sec)]
    if sec.intervals:
        out.append(
            f"determined by these runs (95% interval within its median, not at a bound): "
            f"{', '.join(sec.determined) or 'none'}; not determined: "
            f"{', '.join(sec.undetermined) or 'none'}"
        )
    return out
