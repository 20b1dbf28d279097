"""The recommendation: S_opt at the sweep's own scale and beyond (the largest
run's budget, and 1x, 5x, 20x the dense compute-optimal budget at the largest
N and at ten times it), with calibrated 95% intervals when the law carries
uncertainty. Its first row is the page's summary sentence."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sparsescale.laws.jsonsafe import finite_json
from sparsescale.report.points import SweepPoints, main_budget
from sparsescale.report.render import esc, figure

SOPT_CAPTION = (
    "Optimal sparsity over (N, C); the dashed line is the dense compute-optimal (Chinchilla) "
    "frontier. Contours of equal S<sub>opt</sub> run parallel to it."
)


@dataclass
class Plan:
    """S_opt at one budget (N non-zeros, C FLOPs in sparse accounting)."""

    n_nonzero: float
    compute_flops: float
    why: str
    sparsity: float
    data: float
    loss: float
    dense_loss: float
    dense_data: float
    equivalent_dense_size: float
    equivalent_dense_factor: float  # equivalent_dense_size / n_nonzero
    # 95% intervals [low, high] of sparsity, data, loss, dense_loss, equivalent_dense_size; None
    # without uncertainty
    interval: dict[str, list[float]] | None = None


@dataclass
class Recommendation:
    plans: list[Plan]
    budget_unit: str
    # the runs' pruning windows (start, end fractions): the sparse FLOPs assume them
    prune_windows: list[tuple[float, float]] = field(default_factory=list)


def compute(law, pts: SweepPoints) -> Recommendation:
    from sparsescale.laws.planning import chinchilla_data, optimal_intervals, optimal_sparsity

    n_max, c_max = main_budget(pts)
    cases = [(n_max, c_max, "your largest run's budget")]
    for n in (n_max, 10 * n_max):
        d_star = chinchilla_data(law, n)
        for mult in (1, 5, 20):
            cases.append((n, 6.0 * n * d_star * mult, f"{mult}x the dense compute-optimal budget"))
    plans = []
    for n, c, why in cases:
        if not (0 < c < float("inf")):
            # a flat law (bN or bD near 0) puts D* at 0 or infinity: no such budget to plan
            continue
        opt = optimal_sparsity(law, n, c, flops="sparse")
        iv = optimal_intervals(
            law, opt, level=0.95, flops="sparse"
        )  # None: the law carries no uncertainty
        plans.append(
            Plan(
                n_nonzero=n,
                compute_flops=c,
                why=why,
                sparsity=float(opt.sparsity),
                data=float(opt.data),
                loss=float(opt.loss),
                dense_loss=float(opt.dense_loss),
                dense_data=float(opt.dense_data),
                equivalent_dense_size=float(opt.equivalent_dense_size),
                equivalent_dense_factor=float(opt.equivalent_dense_size) / n,
                interval=None
                if iv is None
                else {k: [float(v[0]), float(v[1])] for k, v in iv.items()},
            )
        )
    return Recommendation(plans, pts.budget_unit, list(pts.prune_windows))


def to_json(sec: Recommendation) -> list[dict[str, Any]]:
    """summary.json's "recommendations": one object per plan."""
    return finite_json([asdict(p) for p in sec.plans])[0]


def sentence(p: Plan, unit: str) -> str:
    """The recommendation in one sentence (the page's summary, the terminal's first line)."""
    gain = (p.dense_loss - p.loss) / p.dense_loss * 100 if p.dense_loss else 0.0
    if p.sparsity < 0.01:
        return (
            f"At a budget of C = {p.compute_flops:.3g} FLOPs and N = {p.n_nonzero:,.0f} non-zero "
            f"parameters, train dense (S = 0) on D = {p.data:.3g} {unit}: sparsity does not pay "
            "at this budget."
        )
    return (
        f"At a budget of C = {p.compute_flops:.3g} FLOPs and N = {p.n_nonzero:,.0f} non-zero "
        "parameters, "
        f"train at S = {p.sparsity:.2f} on D = {p.data:.3g} {unit}: predicted loss {p.loss:.4f} "
        f"against {p.dense_loss:.4f} dense ({gain:.1f}% lower), as good as a dense model "
        f"{p.equivalent_dense_factor:.2f}x larger."
    )


def summary_html(sec: Recommendation) -> list[str]:
    """The page's summary paragraph: the main recommendation and its intervals."""
    main = sec.plans[0]
    parts = [f"<p class='summary'>{esc(sentence(main, sec.budget_unit))}"]
    if main.interval:
        lo, hi = main.interval["sparsity"]
        llo, lhi = main.interval["loss"]
        parts.append(
            f" Under the bootstrap's coefficient draws this S<sub>opt</sub> lies between {lo:.2f} "
            "and "
            f"{hi:.2f} (95%); the predicted loss between {llo:.4f} and {lhi:.4f} (95% prediction "
            "interval)."
        )
    parts.append("</p>")
    return parts


def _window_text(windows: list[tuple[float, float]]) -> str:
    if not windows:
        return "no pruned runs"
    spans = " or ".join(f"{a:.0%} to {b:.0%}" for a, b in windows)
    return f"the cubic pruning schedule from {spans} of training"


def to_html(sec: Recommendation, figures: dict[str, Path]) -> list[str]:
    """The table of plans and the S_opt map (`figures`: fit_figures' paths); when
    the two laws disagree the map moves beside the other law's, under "Which law?"."""
    parts = [
        "<h2>Optimal sparsity</h2>",
        "<table><tr><th>N (non-zeros)</th><th>compute C "
        "(FLOPs)</th><th>budget</th><th>S<sub>opt</sub></th>"
        f"<th>D ({esc(sec.budget_unit)})</th><th>loss</th><th>dense loss</th><th>equivalent dense "
        "size</th></tr>",
    ]
    for p in sec.plans:
        iv = p.interval or {}

        def cell(key, spec, value):
            lo_hi = f" [{spec.format(iv[key][0])}, {spec.format(iv[key][1])}]" if key in iv else ""
            return f"<td class='num'>{spec.format(value)}{lo_hi}</td>"

        parts.append(
            f"<tr><td class='num'>{p.n_nonzero:,.0f}</td><td class='num'>{p.compute_flops:.3g}</td>"
            f"<td>{esc(p.why)}</td>"
            + cell("sparsity", "{:.2f}", p.sparsity)
            + cell("data", "{:.3g}", p.data)
            + cell("loss", "{:.4f}", p.loss)
            + cell("dense_loss", "{:.4f}", p.dense_loss)
            + f"<td class='num'>{p.equivalent_dense_factor:.2f}x</td></tr>"
        )
    parts.append(
        "</table>"
        + (
            "<p>Brackets: 95% intervals (S<sub>opt</sub> and D re-planned under every bootstrap "
            "draw; losses are calibrated prediction intervals).</p>"
            if sec.plans[0].interval
            else ""
        )
    )
    parts.append(
        "<p>Compute is C = 6 N D c<sub>mul</sub>(S) with sparse FLOPs "
        f"({_window_text(sec.prune_windows)}).</p>"
    )
    if "sopt_contours_avgparam" in figures:
        parts.append(
            "<p>The map of S<sub>opt</sub> over (N, C) is shown below, beside the "
            "average-parameter "
            "law's: the two laws disagree on it.</p>"
        )
        return parts
    parts.append(figure(figures["sopt_contours"], "optimal sparsity contour map", SOPT_CAPTION))
    return parts


def to_text(sec: Recommendation) -> list[str]:
    main = sec.plans[0]
    out = [sentence(main, sec.budget_unit)]
    iv = main.interval
    if iv:
        out.append(
            f"  (95% intervals: S_opt [{iv['sparsity'][0]:.2f}, {iv['sparsity'][1]:.2f}], "
            f"loss [{iv['loss'][0]:.4f}, {iv['loss'][1]:.4f}])"
        )
    return out
