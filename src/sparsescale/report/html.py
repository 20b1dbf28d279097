"""report.html: one self-contained page (figures embedded as base64 data URIs,
no scripts, no external resources) that can be mailed or archived as is."""

from __future__ import annotations

import base64
import datetime
import html
import math
from pathlib import Path
from typing import Any

from sparsescale.report.summary import COEFFICIENTS, recommendation_sentence

_CSS = """
body { font-family: system-ui, -apple-system, 'Segoe UI', sans-serif; max-width: 1100px; margin: 2em auto;
       padding: 0 1em; color: #222; line-height: 1.45; }
h1 { font-size: 1.6em; } h2 { font-size: 1.25em; margin-top: 2em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: 0.8em 0; } td, th { padding: 0.25em 0.8em; border-bottom: 1px solid #eee; }
th { text-align: left; background: #f6f6f6; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
.summary { background: #eef6ee; border-left: 4px solid #3a3; padding: 0.8em 1em; font-size: 1.05em; }
.warning { background: #fff6e0; border-left: 4px solid #e90; padding: 0.5em 1em; margin: 0.3em 0; }
.note { background: #eef2fa; border-left: 4px solid #47c; padding: 0.5em 1em; margin: 0.3em 0; }
figure { margin: 1em 0; } figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { color: #555; font-size: 0.92em; }
tr.flag td { background: #fff6e0; }
"""


def _img(path: Path, alt: str) -> str:
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return f'<img src="data:image/png;base64,{data}" alt="{html.escape(alt)}">'


def _figure(path: Path, alt: str, caption: str) -> str:
    return f"<figure>{_img(path, alt)}<figcaption>{caption}</figcaption></figure>"


def _fmt(x: float) -> str:
    return f"{x:.4g}"


def _determination(s) -> str:
    """Which quantities the bootstrap pins down (report.build.determination)."""
    esc = html.escape
    factors = [f"{esc(k)}: {v[1]:.2f}x [{v[0]:.2f}, {v[2]:.2f}]" for k, v in s.intervals.items()
               if k.startswith("equivalent dense size")]
    return ("<p>Determined by these runs (95% interval no wider than its median, not at a bound): "
            f"<b>{esc(', '.join(s.determined) or 'none')}</b>. Not determined: "
            f"{esc(', '.join(s.undetermined) or 'none')}; read those as one of many laws that fit equally "
            "well, not as measurements.</p>" + (f"<p>{'; '.join(factors)}.</p>" if factors else ""))



def _delta(fit_settings: dict[str, Any]) -> str:
    """The Huber delta as written in the page, e.g. 10^-3."""
    delta = fit_settings.get("delta")
    if delta is None:
        return "?"
    exponent = math.log10(delta)
    if abs(exponent - round(exponent)) < 1e-9:
        return f"10<sup>&minus;{-round(exponent)}</sup>" if exponent < 0 else f"10<sup>{round(exponent)}</sup>"
    return f"{delta:g}"


def _window_text(windows: list[tuple[float, float]]) -> str:
    if not windows:
        return "no pruned runs"
    spans = " or ".join(f"{a:.0%} to {b:.0%}" for a, b in windows)
    return f"the cubic pruning schedule from {spans} of training"


def _head(s, store_path, points) -> list[str]:
    esc = html.escape
    parts = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
             f"<title>sparsescale report: {esc(str(store_path))}</title><style>{_CSS}</style></head><body>",
             f"<h1>Sparse scaling law for {esc(s.family or 'this sweep')}</h1>",
             f"<p>Store <code>{esc(str(store_path))}</code>, {s.n_points} finished runs fitted, "
             f"generated {datetime.datetime.now().strftime('%Y-%m-%d %H:%M')}.</p>",
             "<h2>Summary</h2>",
             f"<p class='summary'>{esc(recommendation_sentence(s.recommendations[0], s.budget_unit))}"]
    iv = s.recommendations[0].get("interval")
    if iv:
        lo, hi = iv["sparsity"]
        llo, lhi = iv["loss"]
        parts.append(f" Under the bootstrap's coefficient draws this S<sub>opt</sub> lies between {lo:.2f} and "
                     f"{hi:.2f} (95%); the predicted loss between {llo:.4f} and {lhi:.4f} (95% prediction interval).")
    parts.append("</p>")
    parts.append(_calibration(s))
    if s.holdout:
        h = s.holdout
        parts.append(f"<p>Extrapolation check: fitted without the largest size (N = {h['held_out_n_nonzero']:,.0f}, "
                     f"{h['n_heldout']} runs), the law predicts those runs with a mean absolute error of "
                     f"<b>{h['mean_abs_rel_error'] * 100:.2f}%</b> (max {h['max_abs_rel_error'] * 100:.2f}%).</p>")
    parts += [f"<div class='note'>{esc(note)}</div>" for note in points.notes]
    parts += [f"<div class='warning'>Warning: {esc(w)}</div>" for w in s.warnings]
    parts += _lr_table(s.lr_scan)
    return parts


def _lr_table(rows: list[dict]) -> list[str]:
    """Which learning rate won at each scanned grid point (an edge winner marked)."""
    if not rows:
        return []
    esc = html.escape
    out = ["<h3>Learning rate per point</h3>",
           "<p>Each grid point was trained at every lr of the scan; the fit uses the run with the lowest final "
           "loss. <b>edge</b>: the winner is the smallest or largest lr scanned, so the best may lie beyond.</p>",
           "<table><tr><th>point</th><th>best lr</th><th>loss</th><th>loss at each lr</th><th></th></tr>"]
    for r in rows:
        each = ", ".join(f"{lr:g}: {x:.4f}" for lr, x in sorted(r["losses"].items()))
        out.append(f"<tr><td>{esc(r['point'])}</td><td>{r['lr']:g}</td><td>{r['loss']:.4f}</td>"
                   f"<td>{esc(each)}</td><td>{'edge' if r['edge'] else ''}</td></tr>")
    out.append("</table>")
    return out


def _calibration(s) -> str:
    """How often the law's 95% prediction intervals covered runs it had not seen
    (rolling holdouts: each next size or training length from the smaller ones)."""
    cal = s.calibration
    if not cal:
        return (f"<p>Calibration of the prediction intervals: could not be measured on this sweep "
                f"({html.escape(s.calibration_note)}).</p>")
    cov = cal["coverage"]["0.95"]
    n = len(cal["folds"])
    text = (f"<p>Calibration: on {n} rolling holdout{'s' if n != 1 else ''} (each next size or training length predicted "
            f"from the smaller ones), the 95% prediction intervals covered <b>{cov['covered']:.0%}</b> of "
            f"{cov['n_points']} held-out runs")
    cv = (cal.get("coverage_leave_one_fold_out") or {}).get("0.95")
    if cv:
        text += f" ({cv['covered']:.0%} when each fold's model error is estimated without it)"
    return text + (f"; the model error grows by {100 * cal['per_efold']:.2f}% per e-fold of extrapolation.</p>")


def _law(s, diagnostics: dict[str, Any]) -> list[str]:
    space = "log loss" if s.fit_settings.get("space", "log") == "log" else "loss"
    parts = ["<h2>Fitted law</h2>",
             "<p>L(S, N, D) = (a<sub>S</sub>(1&minus;S)<sup>b<sub>S</sub></sup> + c<sub>S</sub>) "
             "N<sup>&minus;b<sub>N</sub></sup> + (a<sub>D</sub>/D)<sup>b<sub>D</sub></sup> + c, "
             f"with N in non-zero parameters and D in {html.escape(s.budget_unit)}. Huber loss "
             f"(&delta; = {_delta(s.fit_settings)}) on {space}; objective {s.objective:.3g}.</p>",
             "<table><tr><th>coefficient</th><th>value</th><th>bootstrap median</th><th>95% interval</th></tr>"]
    for name in COEFFICIENTS:
        iv = s.intervals.get(name)
        parts.append(f"<tr><td>{name}</td><td class='num'>{_fmt(s.coefficients[name])}</td>"
                     + (f"<td class='num'>{_fmt(iv[1])}</td><td class='num'>[{_fmt(iv[0])}, {_fmt(iv[2])}]</td>"
                        if iv else "<td>-</td><td>-</td>") + "</tr>")
    parts.append("</table>")
    if s.intervals:
        parts.append(_determination(s))
    if diagnostics:
        shown = {k: v for k, v in diagnostics.items() if isinstance(v, (int, float, str, bool, list)) and len(str(v)) < 200}
        parts.append("<p>Optimiser diagnostics: " + html.escape(", ".join(f"{k} = {v}" for k, v in shown.items())) + "</p>")
    return parts


_SOPT_CAPTION = ("Optimal sparsity over (N, C); the dashed line is the dense compute-optimal (Chinchilla) "
                 "frontier. Contours of equal S<sub>opt</sub> run parallel to it.")


def _optimal(s, points) -> list[str]:
    parts = ["<h2>Optimal sparsity</h2>",
             "<table><tr><th>N (non-zeros)</th><th>compute C (FLOPs)</th><th>budget</th><th>S<sub>opt</sub></th>"
             f"<th>D ({html.escape(s.budget_unit)})</th><th>loss</th><th>dense loss</th><th>equivalent dense size</th></tr>"]
    for r in s.recommendations:
        iv = r.get("interval") or {}

        def cell(key, fmt, value):
            lo_hi = f" [{fmt.format(iv[key][0])}, {fmt.format(iv[key][1])}]" if key in iv else ""
            return f"<td class='num'>{fmt.format(value)}{lo_hi}</td>"

        parts.append(f"<tr><td class='num'>{r['n_nonzero']:,.0f}</td><td class='num'>{r['compute_flops']:.3g}</td>"
                     f"<td>{html.escape(r['why'])}</td>" + cell("sparsity", "{:.2f}", r["sparsity"])
                     + cell("data", "{:.3g}", r["data"]) + cell("loss", "{:.4f}", r["loss"])
                     + cell("dense_loss", "{:.4f}", r["dense_loss"])
                     + f"<td class='num'>{r['equivalent_dense_factor']:.2f}x</td></tr>")
    parts.append("</table>" + ("<p>Brackets: 95% intervals (S<sub>opt</sub> and D re-planned under every bootstrap "
                               "draw; losses are calibrated prediction intervals).</p>"
                               if s.recommendations[0].get("interval") else ""))
    parts.append("<p>Compute is C = 6 N D c<sub>mul</sub>(S) with sparse FLOPs "
                 f"({_window_text(points.prune_windows)}).</p>")
    if "sopt_contours_avgparam" in s.figures:  # the map is shown beside the other law's, under "Which law?"
        parts.append("<p>The map of S<sub>opt</sub> over (N, C) is shown below, beside the average-parameter "
                     "law's: the two laws disagree on it.</p>")
        return parts
    parts.append(_figure(s.figures["sopt_contours"], "optimal sparsity contour map", _SOPT_CAPTION))
    return parts


def _figures(f: dict[str, Path]) -> list[str]:
    return ["<h2>Loss against size</h2>",
            _figure(f["loss_vs_n"], "loss against N per sparsity with the fitted law",
                    "Final validation loss against non-zero parameters N, per sparsity, with the fitted law."),
            "<h2>Predicted against measured</h2>",
            _figure(f["fit_quality"], "predicted against measured loss",
                    "Each run's measured loss against the law's prediction; held-out runs (largest N) show "
                    "the prediction of the fit made without them."),
            "<h2>Loss curves</h2>",
            _figure(f["loss_curves"], "validation loss curves", "Validation loss during training, every run.")]


def _form_title(name: str) -> str:
    """How the page names a law form: the form's own title (laws.forms)."""
    from sparsescale.laws.forms import get_form

    return get_form(name).title


def _comparison(s) -> list[str]:
    """The sparse law against the average-parameter law; both S_opt maps when they disagree."""
    cmp = s.comparison
    if not cmp:
        return []
    pct = lambda v: "-" if v is None else f"{v * 100:.2f}%"  # noqa: E731
    parts = ["<h2>Which law?</h2>",
             "<p>The same runs fitted with the average-parameter law (the dense law on the mean number of "
             "parameters over training) and scored against the sparse law.</p>",
             "<table><tr><th>law</th><th>free coefficients</th><th>largest-N holdout (mean / max |error|)</th>"
             "<th>rolling holdouts (mean |error|, points)</th><th>AICc</th></tr>"]
    for sc in cmp["scores"]:
        parts.append(f"<tr><td>{_form_title(sc['form'])}</td><td class='num'>{sc['n_coefficients']}</td>"
                     f"<td class='num'>{pct(sc['holdout_mean_abs_rel_error'])} / {pct(sc['holdout_max_abs_rel_error'])}</td>"
                     f"<td class='num'>{pct(sc['rolling_mean_abs_rel_error'])} ({sc['rolling_points']})</td>"
                     f"<td class='num'>{sc['aicc']:.1f}</td></tr>")
    parts.append(f"</table><p>Verdict: {html.escape(cmp['verdict'])}.</p>")
    if cmp["disagree"]:
        parts += _disagreement(s)
    else:
        parts.append(f"<p>Both laws recommend the same sparsity (within {cmp['max_sopt_gap']:.2f}) at every budget "
                     "above, so the choice of law does not change the advice.</p>")
    return parts


def _disagreement(s) -> list[str]:
    cmp = s.comparison
    gaps = [abs(x - y) for x, y in zip(cmp["sopt"]["sparse"], cmp["sopt"]["avgparam"])]
    i = gaps.index(max(gaps))  # the budget where the two plans differ most
    rec, a, b = s.recommendations[i], cmp["sopt"]["sparse"][i], cmp["sopt"]["avgparam"][i]
    strong = cmp["strength"] in ("strong", "very strong") and cmp["holdouts_agree"] is True
    advice = (f"the comparison favours {_form_title(cmp['favoured'])} and the holdouts agree, "
              "so follow its map" if strong else
              "the comparison does not settle which law holds, so treat any sparsity between the two maps as "
              "supported by these runs and train one run between them before committing a large budget")
    style = "display:flex; gap:1em"
    return [f"<p><b>The two laws disagree on S<sub>opt</sub></b>: at N = {rec['n_nonzero']:,.0f} and "
            f"{html.escape(rec['why'])} (C = {rec['compute_flops']:.3g} FLOPs) the sparse law says S = {a:.2f} and the "
            f"average-parameter law S = {b:.2f}; {advice}.</p>",
            f"<div style='{style}'><div style='flex:1'>"
            + _figure(s.figures["sopt_contours"], "optimal sparsity under the sparse law",
                      "The paper's sparse law. " + _SOPT_CAPTION)
            + "</div><div style='flex:1'>"
            + _figure(s.figures["sopt_contours_avgparam"], "optimal sparsity under the average-parameter law",
                      "The average-parameter law.") + "</div></div>"]


def _regime(s) -> list[str]:
    """Each (S, N) series' loss against D and whether it falls like a power law (laws.regime)."""
    from sparsescale.report.figures import _short

    series = [x for x in s.regime if x["verdict"] != "too short"]
    if not series:
        return []
    bad = sum(x["verdict"] != "power law" for x in series)
    parts = ["<h2>Does the loss fall with D like a power law?</h2>",
             "<p>At fixed S and N the law is E + A D<sup>-b</sup>, so the loss drop per doubling of D must "
             "shrink by the same factor at every doubling. A <i>step</i> (drops that grow: the runs leave a "
             "plateau) or a <i>crash</i> (drops that collapse: the first budgets are still in the initial "
             "descent) is a regime the law's D term cannot follow, and its extrapolation in D inherits the "
             f"miss. Here {len(series) - bad} of {len(series)} series follow a power law.</p>",
             f"<table><tr><th>S</th><th>N</th><th>D ({html.escape(s.budget_unit)})</th>"
             "<th>loss drop per doubling of D</th><th>verdict</th></tr>"]
    for x in series:
        cls = "" if x["verdict"] == "power law" else " class='flag'"
        parts.append(f"<tr{cls}><td>{x['sparsity']:g}</td><td>{x['n_nonzero']:,.0f}</td>"
                     f"<td>{', '.join(_short(d) for d in x['data'])}</td>"
                     f"<td>{', '.join(f'{v:.3f}' for v in x['drops'])}</td><td>{x['verdict']}</td></tr>")
    parts.append("</table>")
    return parts


def _pretrained(s) -> list[str]:
    from sparsescale.report.pretrained import render_html

    return render_html(getattr(s, "pretrained", None), s.out_dir)


def render_report(summary, points, diagnostics: dict[str, Any], store_path) -> str:
    """The page for a ReportSummary and the SweepPoints it was fitted to."""
    from sparsescale.report.patterns import pattern_html

    parts = (_head(summary, store_path, points) + _law(summary, diagnostics) + _optimal(summary, points)
             + _comparison(summary) + _regime(summary) + _figures(summary.figures) + _pretrained(summary)
             + pattern_html(summary.patterns, _img) + ["</body></html>\n"])
    return "\n".join(parts)
