"""The n:m section: every pattern refitted on the sweep's unstructured law
(laws.nm_patterns), a table of its coefficients and of what its runs determine,
the measured gaps to unstructured runs at the same S, N and D, and a figure
of loss against N per pattern beside unstructured pruning at the same
sparsity. n:m means n weights KEPT in every group of m consecutive weights
along the input dimension (2:4 keeps 2 of 4). The pattern laws go into
law.json (report.lawfile)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sparsescale.errors import SparsescaleError
from sparsescale.laws.jsonsafe import finite_json
from sparsescale.laws.law import Law
from sparsescale.laws.nm_patterns import (
    QUANTITIES,
    UNDETERMINED_ONE_S,
    PatternLaws,
    PatternRuns,
    fit_patterns,
    group_patterns,
    pattern_sparsity,
)
from sparsescale.laws.points import FitOptions, Points
from sparsescale.report.determined import determination
from sparsescale.report.points import SweepPoints
from sparsescale.report.render import esc, img, short
from sparsescale.sweep.export import budget_column
from sparsescale.sweep.lrscan import best_of_lr_scan
from sparsescale.sweep.spec import dense_tokens_of
from sparsescale.sweep.store import Store
from sparsescale.units import parse_pattern, pattern_name

FIGURE = "patterns_loss_vs_n.png"


@dataclass
class Patterns:
    laws: dict[
        str, Any
    ]  # laws.nm_patterns.PatternLaws.to_dict(): per pattern its law, quantities, family
    # per pattern: determined / undetermined names and whether a bootstrap assessed them
    determined: dict[str, dict[str, Any]]
    figure: Path
    # per pattern, measured loss minus the unstructured run's at the same S, N, D (`measured_gaps`)
    measured_gaps: dict[str, list[dict[str, Any]]]


def collect_pattern_runs(store_path, sweep: str | None, warnings: list[str]):
    """(the finished n:m runs of one sweep, trained from scratch, grouped by
    pattern; the shape (depth, width, MLP width) of every finished run, keyed by
    _shape_key). A run pruned beyond its pattern's own sparsity (n:m plus extra
    unstructured pruning) is not that pattern's law: it is left out with a warning."""
    with Store(store_path, readonly=True) as store:
        runs = store.runs(sweep_id=store.sweep_ids(sweep))
    runs = [r for r in runs if r["axes"].get("role") != "dense-pretrain"]
    runs, _ = best_of_lr_scan(runs)  # the main section warns about the scan's edges
    if not runs:
        return {}, {}
    unit = budget_column(runs)
    shapes = {}
    for r in runs:
        mc = getattr(r.get("result"), "model_config", None) or {}
        if r["status"] == "finished" and mc:
            shapes[
                _shape_key(
                    r["pattern"] or "unstructured",
                    r["sparsity"],
                    r["n_nonzero"],
                    r["axes"].get(unit, r.get(unit)),
                )
            ] = (mc.get("depth"), mc.get("width"), mc.get("mlp_hidden"))
    rows = []
    for r in runs:
        key = pattern_name(r["pattern"] or "unstructured", "pattern")
        if key is None or r["status"] != "finished" or dense_tokens_of(r["axes"]) > 0:
            continue
        if r["final_loss"] is None or not math.isfinite(r["final_loss"]):
            continue
        if not math.isclose(r["sparsity"], pattern_sparsity(key), abs_tol=1e-9):
            warnings.append(
                f"run {key} at S={r['sparsity']:g} (beyond the pattern's "
                f"{pattern_sparsity(key):g}) "
                "is left out of the pattern fits"
            )
            continue
        rows.append(
            (key, r["sparsity"], r["n_nonzero"], r["axes"].get(unit, r.get(unit)), r["final_loss"])
        )
    if not rows:
        return {}, shapes
    pats, S, N, D, L = zip(*rows)
    return group_patterns(Points(S, N, D, L, pattern=pats)), shapes


def _shape_key(pattern: str, sparsity: float, n_nonzero: float, data: float) -> tuple:
    return (pattern, round(float(sparsity), 9), int(round(float(n_nonzero))), float(data))


def compute(
    store_path, sweep: str | None, law: Law, pts: SweepPoints, out_dir: Path, n_boot: int, seed: int
) -> Patterns | None:
    """Fit the sweep's patterns on `law` and draw their figure; None without n:m runs
    (or, with a warning in pts.warnings, when the pattern fits fail)."""
    groups, shapes = collect_pattern_runs(store_path, sweep, pts.warnings)
    if not groups:
        return None
    try:
        fitted = fit_patterns(
            groups, FitOptions(form="nm", base=law, seed=seed), n_boot=n_boot if n_boot >= 2 else 0
        )
    except SparsescaleError as exc:
        pts.warnings.append(f"n:m pattern fits skipped: {exc}")
        return None
    figure = out_dir / FIGURE
    plot_patterns(law, fitted, groups, pts, figure)
    pts.notes.append("the n:m runs are refitted per pattern on this law in the n:m section")
    return Patterns(
        laws=fitted.to_dict(),
        determined=_determined(fitted),
        figure=figure,
        measured_gaps=measured_gaps(groups, pts, shapes),
    )


def to_json(sec: Patterns | None) -> dict[str, Any] | None:
    """summary.json's "patterns" (the figure as a file name in the report folder)."""
    return None if sec is None else finite_json({**asdict(sec), "figure": sec.figure.name})[0]


def measured_gaps(
    groups: dict[str, PatternRuns], pts, shapes: dict | None = None, rtol: float = 0.05
) -> dict[str, list[dict[str, Any]]]:
    """Per pattern, its measured loss minus the unstructured run's at the same
    S, D and N (sizes within rtol: both target one N and land a little off it),
    no law involved: positive = the pattern is worse. `same_shape` says whether
    the two runs had the same depth and width and MLP widths that differ only
    by the rounding to a multiple of m (the sizer keeps the unstructured width
    where m allows; where it cannot, the gap is not the pattern's alone)."""
    shapes = shapes or {}
    out = {}
    for p, r in groups.items():
        rows = []
        for n, d, y in zip(r.n_nonzero, r.data, r.loss):
            m = (
                np.isclose(pts.sparsity, r.sparsity)
                & np.isclose(pts.data, d, rtol=1e-6)
                & (np.abs(pts.n_nonzero / n - 1) <= rtol)
            )
            if m.any():
                i = int(np.flatnonzero(m)[0])
                mine = shapes.get(_shape_key(p, r.sparsity, n, d))
                theirs = shapes.get(_shape_key("unstructured", r.sparsity, pts.n_nonzero[i], d))
                rows.append(
                    {
                        "n_nonzero": float(n),
                        "data": float(d),
                        "loss": float(y),
                        "unstructured_loss": float(pts.loss[i]),
                        "gap": float(y - pts.loss[i]),
                        "same_shape": None
                        if mine is None or theirs is None
                        else _same_shape(mine, theirs, p),
                    }
                )
        out[p] = sorted(rows, key=lambda g: (g["data"], g["n_nonzero"]))
    return out


def _same_shape(mine: tuple, theirs: tuple, pattern: str) -> bool:
    """(depth, width, mlp_hidden) equal up to the hidden size's rounding to a multiple of m."""
    m = parse_pattern(pattern)[1]
    return (
        mine[:2] == theirs[:2] and None not in (mine[2], theirs[2]) and abs(mine[2] - theirs[2]) < m
    )


def _determined(fitted: PatternLaws) -> dict[str, dict[str, list[str]]]:
    """Per pattern, report.determined.determination over its intervals, with the
    coefficients one sparsity cannot determine moved to undetermined whatever
    their (base-driven) intervals say."""
    # without a bootstrap only the structural verdict is known
    out = {
        p: {"determined": [], "undetermined": list(fitted.undetermined[p]), "assessed": False}
        for p in fitted.laws
    }
    for p, iv in fitted.intervals.items():
        # k itself is left out: across base draws it moves with bN (a scale, not a finding)
        good, bad = determination(
            {
                k: v
                for k, v in iv.items()
                if k in (*UNDETERMINED_ONE_S, "k_ratio", "equivalent_dense_size")
            },
            [],
        )
        forced = list(fitted.undetermined[p])
        out[p] = {
            "determined": [g for g in good if g not in forced],
            "undetermined": bad + [f for f in forced if f not in bad],
            "assessed": True,
        }
    return out


_STYLES = ["--", ":", "-."]
_MARKERS = ["^", "s", "D"]


def plot_patterns(
    law: Law, fitted: PatternLaws, groups: dict[str, PatternRuns], pts, path: Path
) -> Path:
    """One panel per pattern sparsity: measured loss against N for unstructured
    runs at that S (circles, the base law solid) and each pattern (its marker,
    its law dashed), coloured by data budget."""
    from sparsescale.atomic import save_figure
    from sparsescale.report.figures import _pyplot

    plt = _pyplot()
    levels = sorted({r.sparsity for r in groups.values()})
    budgets = sorted({float(d) for r in groups.values() for d in r.data})
    cmap = plt.get_cmap("plasma")
    colour = {d: cmap(0.8 * i / max(len(budgets) - 1, 1)) for i, d in enumerate(budgets)}
    fig, axes = plt.subplots(
        1, len(levels), figsize=(5.2 * len(levels), 4.4), sharey=True, squeeze=False
    )
    for ax, s in zip(axes[0], levels):
        here = [r for r in groups.values() if r.sparsity == s]
        n_all = np.concatenate([r.n_nonzero for r in here])
        n_line = np.geomspace(n_all.min() / 1.3, n_all.max() * 1.3, 80)
        at_s = np.isclose(pts.sparsity, s)
        for d, c in colour.items():
            m = at_s & np.isclose(pts.data, d, rtol=1e-6)
            ax.scatter(pts.n_nonzero[m], pts.loss[m], color=c, marker="o", s=24, zorder=3)
            ax.plot(n_line, law.predict(s, n_line, d), color=c, lw=1.3)
            for j, r in enumerate(here):
                mr = np.isclose(r.data, d, rtol=1e-6)
                ax.scatter(
                    r.n_nonzero[mr], r.loss[mr], color=c, marker=_MARKERS[j % 3], s=30, zorder=3
                )
                ax.plot(
                    n_line,
                    fitted.laws[r.pattern].predict(s, n_line, d),
                    color=c,
                    lw=1.1,
                    ls=_STYLES[j % 3],
                )
        handles = [plt.Line2D([], [], color="k", marker="o", ls="-", label=f"unstructured {s:.0%}")]
        handles += [
            plt.Line2D(
                [], [], color="k", marker=_MARKERS[j % 3], ls=_STYLES[j % 3], label=r.pattern
            )
            for j, r in enumerate(here)
        ]
        handles += [
            plt.Line2D([], [], color=c, lw=3, label=f"D = {short(d)}") for d, c in colour.items()
        ]
        ax.legend(handles=handles, fontsize=8)
        ax.set_xscale("log")
        ax.set_xlabel("non-zero parameters N")
        ax.set_title(
            f"S = {s:g}: " + ", ".join(r.pattern for r in here) + " vs unstructured", fontsize=10
        )
        ax.grid(alpha=0.3, which="both")
    axes[0][0].set_ylabel(f"final validation loss (D in {pts.budget_unit})")
    fig.tight_layout()
    save_figure(fig, path, dpi=110)
    plt.close(fig)
    return Path(path)


def _cell(q: dict[str, Any], fmt: str = ".4g") -> str:
    return f"<td class='num'>{_text(q, fmt)}</td>"


def _gaps_html(gaps: dict[str, list[dict[str, float]]]) -> list[str]:
    """Measured loss of each pattern minus unstructured at the same S, N and D (no law)."""
    if not any(gaps.values()):
        return []
    parts = [
        "<p>Measured: each pattern's final loss minus the unstructured run's at the same S, N and "
        "D "
        "(positive: the pattern is worse).</p><table><tr><th>pattern</th><th>mean gap (nats)</th>"
        "<th>per run (N, D: gap)</th></tr>"
    ]
    for p, rows in gaps.items():
        if rows:
            each = "; ".join(
                f"{short(g['n_nonzero'])}, {short(g['data'])}: {g['gap']:+.3f}"
                + ("*" if g.get("same_shape") is False else "")
                for g in rows
            )
            parts.append(
                f"<tr><td>{esc(p)}</td><td class='num'>{_mean_gap(rows)}</td>"
                f"<td>{esc(each)}</td></tr>"
            )
    return parts + [
        "</table><p>* the pattern run trained another shape (depth, width, MLP width) than the "
        "unstructured one: the sizer makes input dimensions multiples of m, so at small N the gap "
        "mixes the pattern's cost with the shape's; the mean leaves these pairs out.</p>"
    ]


def _mean_gap(rows: list[dict[str, Any]]) -> str:
    """Mean gap over same-shape pairs (all pairs when no shape is known), and how many."""
    same = [g["gap"] for g in rows if g.get("same_shape") is not False]
    if not same:
        return "- (no same-shape pair)"
    return f"{np.mean(same):+.4f} ({len(same)} of {len(rows)} pairs)"


def to_html(sec: Patterns | None) -> list[str]:
    """The page's n:m section."""
    if not sec:
        return []
    laws = sec.laws
    level = f"{laws['level']:.0%}" if laws.get("n_boot") else None
    parts = [
        "<h2>n:m patterns</h2>",
        "<p>Each pattern is refitted on the unstructured law above, keeping its dense base (bN, "
        "aD, bD, c "
        "and A = aS + cS) as the paper does. A pattern's runs all sit at its one sparsity S = 1 - "
        "n/m, so "
        "they determine one number, the N-term factor k = aS (1-S)^bS + cS; patterns sharing m "
        "(2:4 and "
        "1:4, 4:8 and 2:8) are fitted jointly as a family, whose two sparsities determine aS and "
        "bS. "
        + (
            f"Brackets: {level} intervals from a paired bootstrap (base draw and resampled "
            "pattern runs)."
            if level
            else "No bootstrap was run, so there are no intervals."
        )
        + "</p>",
        "<table><tr><th>pattern</th><th>S</th><th>runs</th><th>k</th><th>k / unstructured k</th>"
        "<th>equivalent dense size</th><th>unstructured at S</th><th>aS</th><th>bS</th><th>cS</th>"
        "<th>not determined</th></tr>",
    ]
    for p, e in laws["patterns"].items():
        q = e["quantities"]
        parts.append(
            f"<tr><td>{esc(p)}</td><td class='num'>{e['sparsity']:g}</td><td "
            f"class='num'>{e['n_runs']}</td>"
            + _cell(q["k"])
            + _cell(q["k_ratio"], ".3f")
            + _cell(q["equivalent_dense_size"], ".3f")
            + _cell(q["unstructured_equivalent_dense_size"], ".3f")
            + "".join(_cell(q[n]) for n in UNDETERMINED_ONE_S)
            + f"<td>{esc(_undetermined(sec, p))}</td></tr>"
        )
    parts.append("</table>")
    parts += _gaps_html(sec.measured_gaps or {})
    reasons = sorted({why for e in laws["patterns"].values() for why in e["undetermined"].values()})
    parts += [f"<p class='note'>{esc(r)}.</p>" for r in reasons]
    parts.append("<p>" + esc("; ".join(f"{k}: {v}" for k, v in QUANTITIES.items())) + ".</p>")
    alt = "loss against N per n:m pattern and unstructured at the same S"
    parts.append(
        f"<figure>{img(sec.figure, alt)}"
        "<figcaption>Measured loss against N: unstructured runs at the pattern's sparsity "
        "(circles, the sparse law solid) and each pattern (its marker, its refitted law broken), "
        "one colour per data budget.</figcaption></figure>"
    )
    return parts


def _undetermined(sec: Patterns, pattern: str) -> str:
    d = sec.determined[pattern]
    text = ", ".join(d["undetermined"]) or "none"
    return text if d["assessed"] else f"{text} (the rest not assessed: no bootstrap)"


def _text(q: dict[str, Any], fmt: str = ".4g") -> str:
    return format(q["value"], fmt) + (
        f" [{format(q['low'], fmt)}, {format(q['high'], fmt)}]" if "low" in q else ""
    )


def _gap_text(sec: Patterns, pattern: str) -> str:
    rows = (sec.measured_gaps or {}).get(pattern) or []
    if not rows:
        return ""
    gaps = [g["gap"] for g in rows if g.get("same_shape") is not False]
    return (
        f"; measured loss minus unstructured at the same S, N, D and shape: mean {_mean_gap(rows)}"
        + (f", range {min(gaps):+.4f} to {max(gaps):+.4f}" if gaps else "")
    )


def to_text(sec: Patterns | None) -> list[str]:
    """The n:m results on the terminal, one paragraph per pattern (the page's table)."""
    if not sec:
        return []
    laws = sec.laws
    out = [
        "n:m patterns refitted on the unstructured law (base kept; brackets: "
        + (f"{laws['level']:.0%} intervals)" if laws.get("n_boot") else "no bootstrap)")
    ]
    for p, e in laws["patterns"].items():
        q = e["quantities"]
        out.append(
            f"  {p} (S = {e['sparsity']:g}, {e['n_runs']} runs, family {e['family']}): N-term "
            "factor "
            f"{_text(q['k_ratio'], '.3f')} x unstructured's; equivalent dense size "
            f"{_text(q['equivalent_dense_size'], '.2f')} (unstructured "
            f"{_text(q['unstructured_equivalent_dense_size'], '.2f')}); "
            + ", ".join(f"{n} {_text(q[n])}" for n in UNDETERMINED_ONE_S)
            + f"; not determined: {_undetermined(sec, p)}"
            + _gap_text(sec, p)
        )
    return out
