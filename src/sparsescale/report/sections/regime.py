"""Does the loss fall with D like a power law? Each (S, N) series of the
fitted runs (laws.regime): its loss drop per doubling of D and a verdict
(power law, step, crash, too short). A step or a crash is a regime the law's
D term cannot follow."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sparsescale.laws.jsonsafe import finite_json
from sparsescale.laws.regime import check_series, regime_warning
from sparsescale.report.points import SweepPoints
from sparsescale.report.render import esc, short


@dataclass
class Regime:
    budget_unit: str
    # laws.regime.check_series' series as dicts: sparsity, n_nonzero, data, drops, verdict, ...
    series: list[dict[str, Any]] = field(default_factory=list)
    warning: str | None = None  # regime_warning: None when every judged series is a power law


def compute(pts: SweepPoints) -> Regime:
    series = check_series(pts.sparsity, pts.n_nonzero, pts.data, pts.loss)
    return Regime(pts.budget_unit, [x.to_dict() for x in series], regime_warning(series))


def to_json(sec: Regime) -> list[dict[str, Any]]:
    return finite_json(sec.series)[0]


def to_html(sec: Regime) -> list[str]:
    series = [x for x in sec.series if x["verdict"] != "too short"]
    if not series:
        return []
    bad = sum(x["verdict"] != "power law" for x in series)
    parts = [
        "<h2>Does the loss fall with D like a power law?</h2>",
        "<p>At fixed S and N the law is E + A D<sup>-b</sup>, so the loss drop per doubling of D "
        "must "
        "shrink by the same factor at every doubling. A <i>step</i> (drops that grow: the runs "
        "leave a "
        "plateau) or a <i>crash</i> (drops that collapse: the first budgets are still in the "
        "initial "
        "descent) is a regime the law's D term cannot follow, and its extrapolation in D inherits "
        "the "
        f"miss. Here {len(series) - bad} of {len(series)} series follow a power law.</p>",
        f"<table><tr><th>S</th><th>N</th><th>D ({esc(sec.budget_unit)})</th>"
        "<th>loss drop per doubling of D</th><th>verdict</th></tr>",
    ]
    for x in series:
        cls = "" if x["verdict"] == "power law" else " class='flag'"
        parts.append(
            f"<tr{cls}><td>{x['sparsity']:g}</td><td>{x['n_nonzero']:,.0f}</td>"
            f"<td>{', '.join(short(d) for d in x['data'])}</td>"
            f"<td>{', '.join(f'{v:.3f}' for v in x['drops'])}</td><td>{x['verdict']}</td></tr>"
        )
    parts.append("</table>")
    return parts


def to_text(sec: Regime) -> list[str]:
    """Nothing beyond the warning, which the report's warnings carry."""
    return []
