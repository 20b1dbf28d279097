"""`sparsescale choose-pattern`: dense, n:m or unstructured for N non-zeros
and a budget, from a base law and the pattern laws fitted on it (see
laws.pattern_choice). No torch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from sparsescale.cli.app import app
from sparsescale.cli.common import (
    check_level,
    check_window,
    console,
    dense_optimal_budget,
    params_as_flags,
    positive_quantity,
    print_json,
)
from sparsescale.errors import SparsescaleError


@app.command("choose-pattern")
def choose_pattern(
    law: str = typer.Option(
        ...,
        "--law",
        help="The base law the pattern laws were fitted on (vit-jft, t5-c4 or a LAW.json; the "
        "report's law.json).",
    ),
    patterns: Path = typer.Option(
        ...,
        "--patterns",
        help="A law JSON with pattern laws (the report's law.json of an n:m sweep).",
    ),
    params: str = typer.Option(
        ..., "--params", help="Non-zero parameters N of the model you will train (e.g. 1e5)."
    ),
    compute: str = typer.Option(
        ...,
        "--compute",
        help="Training budget: FLOPs (the law must carry tokens_per_unit), or a multiple of the "
        "dense compute-optimal budget C* (e.g. 10x).",
    ),
    speedup: Optional[list[str]] = typer.Option(
        None,
        "--speedup",
        help="PATTERN=FACTOR, a step-time speedup over dense (e.g. 2:4=1.3; repeatable) for the "
        "equal-time accounting.",
    ),
    start: float = typer.Option(
        0.25, "--start", help="Pruning starts at this fraction of training."
    ),
    end: float = typer.Option(0.75, "--end", help="Pruning ends at this fraction of training."),
    level: float = typer.Option(
        0.95, "--level", help="Level of the intervals (when the laws carry uncertainty)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Compare dense, n:m patterns and unstructured sparsity at N non-zeros and a
    budget, at equal FLOPs and at equal wall time.

    Example: sparsescale choose-pattern --law report/law.json --patterns report/law.json
    --params 1e5 --compute 10x --speedup 2:4=1.3
    """
    from sparsescale.laws.nm_patterns import check_base, load_pattern_laws
    from sparsescale.laws.pattern_choice import compare_choices, parse_speedups
    from sparsescale.laws.presets import load_law
    from sparsescale.userfile import read_json

    check_level(level)
    check_window(start, end)
    base = load_law(law)
    try:
        check_base(base)
    except SparsescaleError as exc:  # the base law is what --law names
        raise SparsescaleError(
            f"--law {law}: {exc.detail if exc.param == 'base' else exc}"
        ) from None
    try:
        doc = read_json(patterns)
    except SparsescaleError as exc:
        raise SparsescaleError(f"--patterns: {exc}") from None
    pattern_laws = load_pattern_laws(doc, base, f"--patterns {patterns}")
    speeds = parse_speedups(speedup or [], "--speedup")
    n = positive_quantity(params, "--params")
    with params_as_flags():
        budget = dense_optimal_budget(base, n, compute)
        cmp = compare_choices(base, pattern_laws, n, budget, speeds, start, end, level)
    out = {
        "law": base.name or law,
        "patterns_file": str(patterns),
        "level": level,
        **cmp.to_dict(),
        "accountings": {
            "flops": "equal FLOPs: C = 6 N D c_mul(S), sparsity exploited (sparse FLOPs) by every "
            "choice",
            "time": "equal wall time: the budget in dense-step time; a choice without --speedup "
            "runs at dense step time (c_mul = 1/(1-S)), n:m kernels only after the ramp",
            "vs": "each choice minus its reference (a pattern: unstructured at its S; "
            "unstructured: "
            "dense); the interval over paired coefficient draws (no model error)",
        },
    }
    if as_json:
        print_json(out)
        return
    _print_choices(out, base)


def _signed(vs: dict) -> str:
    iv = vs.get("interval")
    return f"{vs['difference']:+.4f}" + (f" [{iv[0]:+.4f}, {iv[1]:+.4f}]" if iv else "")


def _print_choices(out: dict, base) -> None:
    from rich.table import Table

    con = console()
    d_unit = base.units.get("D", "data")
    table = Table(
        title=f"N = {out['n_nonzero']:.4g} non-zeros, budget 6 N x "
        f"{out['compute'] / (6 * out['n_nonzero']):.4g} "
        f"{d_unit}; loss with {out['level']:.0%} interval"
    )
    for col in ("choice", "S", "speedup", "equal FLOPs: D", "loss", "equal time: D", "loss "):
        table.add_column(col, justify="left" if col == "choice" else "right")

    def loss(e):
        iv = e.get("interval")
        return f"{e['loss']:.4f}" + (f" [{iv[0]:.4f}, {iv[1]:.4f}]" if iv else "")

    for r in out["choices"]:
        table.add_row(
            r["choice"],
            f"{r['sparsity']:g}",
            "-" if r["speedup"] is None else f"{r['speedup']:g}x",
            f"{r['flops']['data']:.4g}",
            loss(r["flops"]),
            f"{r['time']['data']:.4g}",
            loss(r["time"]),
        )
    con.print(table)
    for r in out["choices"]:
        if "vs" in r["flops"]:
            con.print(
                f"  {r['choice']} minus {r['flops']['vs']['reference']}: "
                + "; ".join(
                    f"{_signed(r[acc]['vs'])} at equal {word}"
                    for acc, word in (("flops", "FLOPs"), ("time", "time"))
                ),
                highlight=False,
            )
    con.print(
        f"best at equal FLOPs: [bold]{out['best']['flops']}[/bold]; best at equal wall time: "
        f"[bold]{out['best']['time']}[/bold]"
    )
    for k, v in out["accountings"].items():
        con.print(f"  {k}: {v}", highlight=False)
