"""The from-dense section: pruning a pretrained dense model (sweeps with
`dense_prefix` or `init_from_dense` runs): sparse-from-scratch, pruned-from-
dense and dense at equal total compute (a table and a figure), the sparse law
fitted to the pruned runs with bootstrap intervals (written as
pruned-law.json, which `sparsescale from-dense` reads), and one
worked answer to "prune my dense model to what sparsity, for how long?".

Compute is the sparse-FLOP accounting (the paper's main one) of each run
trained alone: a pruned run's dense prefix is charged in full at dense cost
(sparsescale.sweep.compute); the sweep's actual total counts each prefix once.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sparsescale.errors import SparsescaleError
from sparsescale.laws import from_dense as pre
from sparsescale.laws.jsonsafe import finite_json
from sparsescale.laws.points import FitOptions, Points
from sparsescale.report.determined import determination, equivalent_dense_factors
from sparsescale.report.points import MIN_POINTS
from sparsescale.report.render import esc, figure, num
from sparsescale.sweep.compute import compute_accounting, sweep_total_flops
from sparsescale.sweep.spec import dense_tokens_of

PRUNED_LAW = "pruned-law.json"
# The file names (and summary.json's key "pretrained") predate the section's name.
FIGURE = "pretrained_compute.png"


@dataclass
class FromDenseLaw:
    """The sparse law fitted to the dense and pruned runs (laws.from_dense.fit_pruned_law)."""

    law_file: str
    coefficients: dict[str, float]
    intervals: dict[str, list[float]]  # bootstrap [low, median, high]; {} without a bootstrap
    determined: list[str]
    undetermined: list[str]
    n_points: int
    from_dense: dict[str, Any]  # the law's fit["from_dense"]: dense fractions, run counts
    holdout: dict[str, Any] | None
    example: dict[str, Any] | None  # `sparsescale from-dense` for the sweep's largest dense model


@dataclass
class FromDense:
    budget_unit: str
    accounting: str
    # per pruned run: its loss against scratch and dense at the same total FLOPs, and the law's
    # saving
    table: list[dict[str, Any]]
    warnings: list[str]
    sweep_total_flops: dict[str, float]  # per accounting: what the sweep trained, each prefix once
    alone_total_flops: float  # its runs' FLOPs as if each trained alone (prefix charged)
    frontiers: dict[str, list]  # per method: [(flops, loss)] of its lower envelope
    figure: str  # FIGURE, in the report folder
    law: FromDenseLaw | None = (
        None  # None when the pruned law could not be fitted (a warning says why)
    )


def _method(r: dict[str, Any]) -> str | None:
    if (r["pattern"] or "unstructured") != "unstructured":
        return None
    if dense_tokens_of(r["axes"]) > 0:
        return pre.PRUNED
    return pre.DENSE if not r["sparsity"] else pre.SCRATCH


def method_points(rows: list[dict[str, Any]], unit: str) -> list[dict[str, Any]]:
    """Finished unstructured grid runs as method-labelled points with their
    total compute (prefix included) and their own (continuation) compute."""
    cost = compute_accounting(rows)
    out = []
    for r in rows:
        method = _method(r)
        c = cost[r["config_hash"]]
        if (
            r["status"] != "finished"
            or method is None
            or r["axes"].get("role") == "dense-pretrain"
            or r["final_loss"] is None
            or not math.isfinite(r["final_loss"])
            or c["total_flops_sparse"] is None
        ):
            continue
        budget = r["axes"].get(unit, r.get(unit))
        d0 = dense_tokens_of(r["axes"])  # whichever names the store's version recorded
        out.append(
            {
                "method": method,
                "sparsity": float(r["sparsity"]),
                "n_target": r["axes"]["n_nonzero"],
                "n_nonzero": float(r["n_nonzero"]),
                "data": float(budget),
                "dense_prefix": float(d0),
                "loss": float(r["final_loss"]),
                "flops": c["total_flops_sparse"],
                "flops_continuation": c["own_flops_sparse"],
                "prefix_users": c["prefix_users"],
            }
        )
    return out


def compute(
    store_path, sweep: str | None, out_dir: Path, scratch_law, n_boot: int, seed: int
) -> FromDense | None:
    """The section, or None when the sweep has no finished pruned-from-dense
    run. Writes the figure and pruned-law.json into out_dir."""
    from sparsescale.sweep.export import budget_column
    from sparsescale.sweep.lrscan import best_of_lr_scan
    from sparsescale.sweep.store import Store

    with Store(store_path, readonly=True) as store:
        rows = store.runs(sweep_id=store.sweep_ids(sweep))
    # an lr scan's losing runs leave; the dense prefixes stay (their FLOPs are charged to their
    # users)
    prefixes = [r for r in rows if r["axes"].get("role") == "dense-pretrain"]
    rows = (
        prefixes
        + best_of_lr_scan([r for r in rows if r["axes"].get("role") != "dense-pretrain"])[0]
    )
    unit = budget_column([r for r in rows if r["axes"].get("role") != "dense-pretrain"])
    points = method_points(rows, unit)
    if not any(p["method"] == pre.PRUNED for p in points):
        return None
    out: dict[str, Any] = {
        "budget_unit": unit,
        "accounting": "sparse FLOPs; a pruned run's dense prefix in full",
        "table": pre.equal_compute_table(points),
        "warnings": [],
    }
    out["sweep_total_flops"] = {acc: sweep_total_flops(rows, acc) for acc in ("sparse", "dense")}
    out["alone_total_flops"] = float(sum(p["flops"] for p in points))
    for row in out["table"]:
        # How much compute training from scratch (the report's from-scratch law) needs for
        # the pruned run's loss, over what pruning cost: > 1 means pruning was cheaper.
        need = pre.scratch_compute_for_loss(
            scratch_law, row["sparsity"], _n_of(points, row), row["loss"]
        )
        row.update(
            scratch_flops_for_same_loss=need,
            saving_prefix_charged=need / row["flops"],
            saving_prefix_sunk=need / row["flops_continuation"],
        )
    out["frontiers"] = {m: pre.frontier(points, m) for m in pre.METHODS}
    _plot(points, out["frontiers"], out_dir / FIGURE, unit)
    out["figure"] = FIGURE
    law = _pruned_law(points, unit, out_dir, n_boot, seed, out["warnings"])
    # summary.json stays valid JSON and every renderer reads the same values: an unreachable
    # loss's inf FLOPs become None (shown as '-', left out of the terminal's medians)
    clean = finite_json(out)[0]
    return FromDense(**clean, law=None if not law else FromDenseLaw(**finite_json(law)[0]))


def to_json(sec: FromDense | None) -> dict[str, Any] | None:
    """summary.json's "pretrained": the section's fields, the law's flattened in (absent
    without a law)."""
    if sec is None:
        return None
    out = asdict(sec)
    law = out.pop("law")
    return finite_json({**out, **(law or {})})[0]


def _n_of(points, row) -> float:
    """The measured N of a table row's run (the grid's target is only nominal)."""
    return next(
        p["n_nonzero"]
        for p in points
        if p["method"] == pre.PRUNED
        and p["n_target"] == row["n_target"]
        and p["sparsity"] == row["sparsity"]
        and p["data"] == row["data"]
    )


def _pruned_law(
    points, unit: str, out_dir: Path, n_boot: int, seed: int, warnings: list[str]
) -> dict[str, Any]:
    """Fit the sparse law to the dense and pruned runs, save it, and answer one
    practitioner's question with it; {} (and a warning) when it cannot be fitted."""
    use = [p for p in points if p["method"] in (pre.DENSE, pre.PRUNED)]
    if len(use) < MIN_POINTS:
        warnings.append(
            f"pruned law not fitted: {len(use)} dense and pruned runs, it needs {MIN_POINTS}"
        )
        return {}
    cols = {
        k: np.array([p[k] for p in use], dtype=float)
        for k in ("sparsity", "n_nonzero", "data", "loss", "dense_prefix")
    }
    try:
        runs = Points(
            cols["sparsity"],
            cols["n_nonzero"],
            cols["data"],
            cols["loss"],
            dense_tokens=cols["dense_prefix"],
        )
        options = FitOptions(
            seed=seed,
            units={"N": "non-zero parameters", "D": unit},
            tokens_per_unit=1.0 if unit == "tokens" else None,
        )
        res = pre.fit_pruned_law(
            runs, options, n_boot=n_boot, derived=equivalent_dense_factors(cols["sparsity"])
        )
    except SparsescaleError as exc:
        warnings.append(f"pruned law not fitted: {exc}")
        return {}
    warnings.extend(f"pruned law: {w}" for w in res.warnings)
    law = res.law
    law.name = "pruned-from-dense"
    law.save(out_dir / PRUNED_LAW)
    intervals = (
        {}
        if res.bootstrap is None
        else {k: tuple(map(float, v)) for k, v in res.bootstrap.intervals.items()}
    )
    good, bad = determination(intervals, res.fit.diagnostics.get("at_bound"))
    return {
        "law_file": PRUNED_LAW,
        "coefficients": dict(law.coefficients),
        "intervals": intervals,
        "determined": good,
        "undetermined": bad,
        "n_points": len(use),
        "from_dense": law.fit["from_dense"],
        "holdout": None
        if res.holdout is None
        else {k: v for k, v in res.holdout.items() if k not in ("mask", "law")},
        "example": _example(law, points),
    }


def _example(law, points) -> dict[str, Any] | None:
    """`from-dense` for the sweep's largest dense model at its largest
    dense prefix, continued on as much compute as its pretraining took."""
    pruned = [p for p in points if p["method"] == pre.PRUNED]
    d0 = max(p["dense_prefix"] for p in pruned)
    n = max(p["n_nonzero"] / (1.0 - p["sparsity"]) for p in pruned)
    try:
        plan = pre.plan_from_dense(law, n, d0, 6.0 * n * d0)
    except SparsescaleError:
        return None
    return plan.to_dict() | {
        "command": f"sparsescale from-dense --law {PRUNED_LAW} --dense {n:.4g},{d0:.4g} "
        "--compute 1x"
    }


def _plot(points, frontiers, path: Path, unit: str) -> None:
    from sparsescale.atomic import save_figure
    from sparsescale.report.figures import _pyplot

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 5))
    colors = {pre.DENSE: "#444444", pre.SCRATCH: "#1f77b4", pre.PRUNED: "#d62728"}
    markers = {0.0: "o", 0.5: "s", 0.75: "^"}
    for m in pre.METHODS:
        for p in (p for p in points if p["method"] == m):
            ax.scatter(
                p["flops"],
                p["loss"],
                color=colors[m],
                marker=markers.get(p["sparsity"], "D"),
                s=28,
                zorder=3,
            )
        if frontiers[m]:
            f, y = zip(*frontiers[m])
            ax.plot(f, y, color=colors[m], lw=1.5, label=f"{m} (frontier)")
    sunk = [p for p in points if p["method"] == pre.PRUNED]
    ax.scatter(
        [p["flops_continuation"] for p in sunk],
        [p["loss"] for p in sunk],
        facecolors="none",
        edgecolors=colors[pre.PRUNED],
        marker="o",
        s=28,
        label="pruned, continuation only (prefix already paid)",
    )
    for s, mk in markers.items():
        ax.scatter([], [], color="#999", marker=mk, label=f"S = {s:g}")
    ax.set_xscale("log")
    ax.xaxis.set_minor_formatter(plt.NullFormatter())  # minor labels collide on a short log axis
    ax.set_xlabel("total training FLOPs (sparse accounting; a pruned run's dense prefix included)")
    ax.set_ylabel("validation loss (nats/token)")
    ax.set_title("Loss against total compute per method")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    save_figure(fig, path)
    plt.close(fig)


# ---- rendering -----------------------------------------------------------------------
def to_html(sec: FromDense | None, out_dir: Path) -> list[str]:
    """The section as HTML fragments ([] without one); out_dir holds its figure."""
    if not sec:
        return []
    parts = [
        "<h2>Pruning a pretrained dense model</h2>",
        f"<p>Compute: {esc(sec.accounting)}. The sweep itself trained "
        f"{sec.sweep_total_flops['sparse']:.3g} FLOPs (each shared prefix once); its runs trained "
        f"alone would take {sec.alone_total_flops:.3g}.</p>",
        figure(
            out_dir / sec.figure,
            "loss against total compute per method",
            "Every finished run at its total compute; lines: each method's frontier.",
        ),
        _table(sec),
    ]
    if sec.law is not None:
        parts.append(_law_html(sec.law))
    parts += [f'<div class="warning">{esc(w)}</div>' for w in sec.warnings]
    return parts


def _table(sec: FromDense) -> str:
    head = (
        "<table><tr><th>S</th><th>N</th><th>D total</th><th>dense prefix</th><th>total FLOPs</th>"
        "<th>pruned loss</th><th>from scratch, same FLOPs</th><th>dense, same FLOPs</th>"
        "<th>from-scratch FLOPs for the pruned loss (law)</th><th>saving, prefix charged</th>"
        "<th>saving, prefix already paid</th></tr>"
    )
    rows = [
        f"<tr><td>{r['sparsity']:g}</td><td class=num>{r['n_target']:,}</td><td "
        f"class=num>{r['data']:.3g}</td>"
        f"<td class=num>{num(r['dense_prefix'], '.3g')}</td><td class=num>{r['flops']:.3g}</td>"
        f"<td class=num>{r['loss']:.4f}</td><td class=num>{num(r['scratch_loss'], '.4f')}</td>"
        f"<td class=num>{num(r['dense_loss'], '.4f')}</td>"
        f"<td class=num>{num(r['scratch_flops_for_same_loss'], '.3g')}</td>"
        f"<td class=num>{num(r['saving_prefix_charged'], '.2f')}x</td>"
        f"<td class=num>{num(r['saving_prefix_sunk'], '.2f')}x</td></tr>"
        for r in sec.table
    ]
    return (
        head
        + "".join(rows)
        + (
            "</table><p>Same-FLOPs losses are read off each method's measured runs "
            "(log-log interpolation over D at the same S and N; '-': outside them). Saving: "
            "the FLOPs sparse training from scratch needs for the pruned run's loss under "
            "the from-scratch law, over the pruned run's FLOPs with its dense prefix "
            "charged in full, or already paid (the continuation alone); above 1x pruning "
            "was cheaper.</p>"
        )
    )


def _law_html(law: FromDenseLaw) -> str:
    iv = law.intervals
    cells = "".join(
        f"<tr><td>{k}</td><td class=num>{v:.4g}</td><td class=num>"
        + (f"[{iv[k][0]:.4g}, {iv[k][2]:.4g}]" if k in iv else "-")
        + "</td></tr>"
        for k, v in law.coefficients.items()
    )
    # bootstrap-derived quantities (equivalent dense sizes): their median, which the fit does not
    # give
    cells += "".join(
        f"<tr><td>{esc(k)}</td><td class=num>{v[1]:.4g}</td><td class=num>[{v[0]:.4g}, "
        f"{v[2]:.4g}]</td></tr>"
        for k, v in iv.items()
        if k not in law.coefficients
    )
    fd = law.from_dense
    ex = law.example
    text = (
        f"<p>The sparse law fitted to {law.n_points} dense and pruned runs (D: dense prefix + "
        "continuation; dense fractions "
        f"{fd['dense_fraction'][0]:.2f}-{fd['dense_fraction'][1]:.2f}), saved as "
        f"{esc(law.law_file)}. Determined: <b>{esc(', '.join(law.determined) or 'none')}"
        f"</b>; not determined: {esc(', '.join(law.undetermined) or 'none')}.</p>"
    )
    if ex:
        ivs = ex.get("intervals") or {}
        band = {
            k: f" [{ivs[k][0]:.{d}f}, {ivs[k][1]:.{d}f}]" if k in ivs else ""
            for k, d in (("sparsity", 2), ("loss", 4), ("dense_loss", 4))
        }
        text += (
            f"<p class=summary>A dense model of {ex['n_params']:.3g} parameters trained on "
            f"{ex['dense_data']:.3g} "
            "tokens, given as much compute again: prune to S = "
            f"{ex['sparsity']:.2f}{band['sparsity']} while "
            f"training {ex['continue_data']:.3g} more tokens, loss "
            f"{ex['loss']:.4f}{band['loss']}; continuing "
            f"dense gives {ex['dense_loss']:.4f}{band['dense_loss']} "
            f"(<code>{esc(ex['command'])}</code>; "
            "95% intervals).</p>"
        )
    return (
        "<table><tr><th>coefficient</th><th>value</th><th>95% interval</th></tr>"
        + cells
        + "</table>"
        + text
    )


def to_text(sec: FromDense | None) -> list:
    """The section's essentials on the terminal; its warnings as yellow rich Texts."""
    from rich.text import Text

    if not sec:
        return []
    wins = [r for r in sec.table if r["scratch_loss"] is not None]
    better = sum(r["loss"] < r["scratch_loss"] for r in wins)
    out: list = [
        f"pruned from dense: {len(sec.table)} runs; at equal total compute (dense prefix included) "
        f"{better} of {len(wins)} comparable ones beat sparse from scratch "
        f"(sweep total {sec.sweep_total_flops['sparse']:.3g} FLOPs, each prefix once)"
    ]
    for key, what in (
        ("saving_prefix_charged", "dense prefix charged"),
        ("saving_prefix_sunk", "prefix already paid"),
    ):
        vals = [r[key] for r in sec.table if r.get(key) is not None]
        if vals:
            out.append(
                f"  from-scratch FLOPs for the same loss / pruned FLOPs ({what}): median "
                f"{float(np.median(vals)):.2f}x, range {min(vals):.2f}-{max(vals):.2f}x"
            )
    law = sec.law
    if law is not None:
        iv = law.intervals
        coefs = ", ".join(
            f"{k}={v:.3g}" + (f" [{iv[k][0]:.3g}, {iv[k][2]:.3g}]" if k in iv else "")
            for k, v in law.coefficients.items()
        )
        out.append(
            f"pruned law ({law.law_file}): {coefs}; determined: "
            f"{', '.join(law.determined) or 'none'}"
        )
    out += [Text(f"warning: {w}", style="yellow") for w in sec.warnings]
    ex = None if law is None else law.example
    if ex:
        out.append(
            f"  e.g. {ex['command']}: S = {ex['sparsity']:.2f}, continue "
            f"{ex['continue_data']:.3g}, "
            f"loss {ex['loss']:.4f} vs dense {ex['dense_loss']:.4f}"
        )
    return out
