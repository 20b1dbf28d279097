"""Which law? The sweep refitted with the average-parameter law (the dense law
on the mean number of parameters over training) and scored against the
sparse law (laws.compare), with each law's S_opt at the recommendation's
budgets: when they disagree, the page shows both S_opt maps side by side."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sparsescale.errors import SparsescaleError
from sparsescale.laws.jsonsafe import finite_json
from sparsescale.report.points import SweepPoints
from sparsescale.report.render import esc, figure
from sparsescale.report.sections.recommendation import SOPT_CAPTION, Recommendation

SOPT_DISAGREE = (
    0.05  # S_opt gap between the two laws' recommendations that the page shows as a disagreement
)


def form_title(name: str) -> str:
    """How the page names a law form: the form's own title (laws.forms)."""
    from sparsescale.laws.forms import get_form

    return get_form(name).title


@dataclass
class LawComparison:
    # laws.compare.Comparison.to_dict(): one score per form, the favoured form and the evidence
    scores: list[dict[str, Any]]
    favoured: str
    strength: str
    akaike_weight: float
    holdouts_agree: bool | None
    verdict: str
    sopt: dict[str, list[float]]  # per form, S_opt at each recommendation's budget
    max_sopt_gap: float
    disagree: bool  # max_sopt_gap > SOPT_DISAGREE


def compute(pts: SweepPoints, rec: Recommendation, seed: int, fit_settings: dict[str, Any]):
    """(comparison, average-parameter law): `compare_forms` on the sweep, plus
    each law's S_opt at the recommendation's budgets and whether they disagree
    by more than SOPT_DISAGREE anywhere. (None, None) with a warning in
    pts.warnings when the average-parameter law cannot be fitted. Its N_avg uses
    the runs' pruning window when they share one (else the cubic 25%-75% default)."""
    from sparsescale.laws.compare import compare_forms
    from sparsescale.laws.planning import optimal_sparsity
    from sparsescale.laws.points import FitOptions, Points
    from sparsescale.laws.schedule import schedule_mean_sparsity_fraction

    windows = pts.prune_windows
    frac = schedule_mean_sparsity_fraction("cubic", *windows[0]) if len(windows) == 1 else None
    try:
        cmp = compare_forms(
            Points(pts.sparsity, pts.n_nonzero, pts.data, pts.loss),
            FitOptions(
                space=fit_settings["space"],
                delta=fit_settings["delta"],
                seed=seed,
                mean_sparsity_fraction=frac,
            ),
        )
        avg = next(sc.law for sc in cmp.scores if sc.form == "avgparam")
        sopt_avg = [
            float(optimal_sparsity(avg, p.n_nonzero, p.compute_flops).sparsity) for p in rec.plans
        ]
    except SparsescaleError as exc:
        pts.warnings.append(f"comparison with the average-parameter law skipped: {exc}")
        return None, None
    avg.name = "average-parameter law"
    sopt_sparse = [p.sparsity for p in rec.plans]
    gap = max(abs(a - b) for a, b in zip(sopt_sparse, sopt_avg))
    return LawComparison(
        **cmp.to_dict(),
        sopt={"sparse": sopt_sparse, "avgparam": sopt_avg},
        max_sopt_gap=float(gap),
        disagree=bool(gap > SOPT_DISAGREE),
    ), avg


def to_json(sec: LawComparison | None) -> dict[str, Any] | None:
    return None if sec is None else finite_json(asdict(sec))[0]


def to_html(sec: LawComparison | None, rec: Recommendation, figures: dict[str, Path]) -> list[str]:
    if not sec:
        return []
    pct = lambda v: "-" if v is None else f"{v * 100:.2f}%"  # noqa: E731
    parts = [
        "<h2>Which law?</h2>",
        "<p>The same runs fitted with the average-parameter law (the dense law on the mean number "
        "of "
        "parameters over training) and scored against the sparse law.</p>",
        "<table><tr><th>law</th><th>free coefficients</th><th>largest-N holdout (mean / max "
        "|error|)</th>"
        "<th>rolling holdouts (mean |error|, points)</th><th>AICc</th></tr>",
    ]
    for sc in sec.scores:
        parts.append(
            f"<tr><td>{form_title(sc['form'])}</td><td class='num'>{sc['n_coefficients']}</td>"
            f"<td class='num'>{pct(sc['holdout_mean_abs_rel_error'])} / "
            f"{pct(sc['holdout_max_abs_rel_error'])}</td>"
            f"<td class='num'>{pct(sc['rolling_mean_abs_rel_error'])} ({sc['rolling_points']})</td>"
            f"<td class='num'>{sc['aicc']:.1f}</td></tr>"
        )
    parts.append(f"</table><p>Verdict: {esc(sec.verdict)}.</p>")
    if sec.disagree:
        parts += _disagreement(sec, rec, figures)
    else:
        parts.append(
            f"<p>Both laws recommend the same sparsity (within {sec.max_sopt_gap:.2f}) at every "
            "budget "
            "above, so the choice of law does not change the advice.</p>"
        )
    return parts


def _disagreement(sec: LawComparison, rec: Recommendation, figures: dict[str, Path]) -> list[str]:
    gaps = [abs(x - y) for x, y in zip(sec.sopt["sparse"], sec.sopt["avgparam"])]
    i = gaps.index(max(gaps))  # the budget where the two plans differ most
    plan, a, b = rec.plans[i], sec.sopt["sparse"][i], sec.sopt["avgparam"][i]
    strong = sec.strength in ("strong", "very strong") and sec.holdouts_agree is True
    advice = (
        f"the comparison favours {form_title(sec.favoured)} and the holdouts agree, "
        "so follow its map"
        if strong
        else "the comparison does not settle which law holds, so treat any sparsity between the "
        "two maps as "
        "supported by these runs and train one run between them before committing a large budget"
    )
    style = "display:flex; gap:1em"
    return [
        f"<p><b>The two laws disagree on S<sub>opt</sub></b>: at N = {plan.n_nonzero:,.0f} and "
        f"{esc(plan.why)} (C = {plan.compute_flops:.3g} FLOPs) the sparse law says S = {a:.2f} "
        "and the "
        f"average-parameter law S = {b:.2f}; {advice}.</p>",
        f"<div style='{style}'><div style='flex:1'>"
        + figure(
            figures["sopt_contours"],
            "optimal sparsity under the sparse law",
            "The paper's sparse law. " + SOPT_CAPTION,
        )
        + "</div><div style='flex:1'>"
        + figure(
            figures["sopt_contours_avgparam"],
            "optimal sparsity under the average-parameter law",
            "The average-parameter law.",
        )
        + "</div></div>",
    ]


def to_text(sec: LawComparison | None) -> list[str]:
    if not sec:
        return []
    return [
        f"against the average-parameter law: {sec.verdict}"
        + ("; the two laws' S_opt disagree (both maps in the report)" if sec.disagree else "")
    ]
