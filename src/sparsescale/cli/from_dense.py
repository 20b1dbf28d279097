"""`sparsescale from-dense --law LAW --dense N,D0 --compute C`: "I have a
dense model of N parameters trained on D0 tokens; to what sparsity should I
prune it, and for how many tokens should I continue?", answered from a
pruned-from-dense law (the pruned-law.json `sparsescale report` writes for a
pretrained sweep). No torch.
"""

from __future__ import annotations

from enum import Enum

import typer

from sparsescale.cli.app import app
from sparsescale.cli.common import (
    check_level,
    check_window,
    console,
    params_as_flags,
    parse_budget,
    print_json,
)
from sparsescale.errors import SparsescaleError


class Flops(str, Enum):
    sparse = "sparse"
    dense = "dense"


@app.command("from-dense")
def from_dense(
    law: str = typer.Option(
        ...,
        "--law",
        help="A pruned-from-dense law: the pruned-law.json `sparsescale report` writes for a "
        "pretrained sweep.",
    ),
    dense: str = typer.Option(
        ...,
        "--dense",
        metavar="N,D0",
        help="The dense model: N parameters trained on D0 tokens (the law's D unit), e.g. 1e8,2e9 "
        "or 100k,0.8M.",
    ),
    compute: str = typer.Option(
        ...,
        "--compute",
        help="FLOPs for the continuation (the law must carry tokens_per_unit), or a multiple of "
        "the pretraining compute 6 N D0 (e.g. 1x).",
    ),
    flops: Flops = typer.Option(
        Flops.sparse,
        "--flops",
        help="sparse: the continuation exploits sparsity; dense: it does not.",
    ),
    start: float = typer.Option(
        0.25, "--start", help="Pruning starts at this fraction of the continuation."
    ),
    end: float = typer.Option(
        0.75, "--end", help="Pruning ends at this fraction of the continuation."
    ),
    level: float = typer.Option(
        0.95, "--level", help="Level of the intervals (when the law carries uncertainty)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Prune a trained dense model: the sparsity to prune to, the data to continue
    for, and the loss against continuing dense.

    Example: sparsescale from-dense --law runs/pretrained-report/pruned-law.json
    --dense 100k,0.8M --compute 1x
    """
    from sparsescale.laws.from_dense import from_dense_info, plan_from_dense
    from sparsescale.laws.presets import load_law

    check_level(level)
    check_window(start, end)
    n, d0 = parse_dense(dense)
    the_law = load_law(law)
    try:
        info = from_dense_info(the_law)
    except SparsescaleError as exc:
        raise SparsescaleError(f"--law {law}: {exc}") from None
    if info is None:
        raise SparsescaleError(
            f"--law {law}: holds no pruned-from-dense law (fit.from_dense); give the "
            "pruned-law.json that `sparsescale report` writes for a pretrained sweep"
        )
    c = parse_budget(
        the_law, compute, lambda: 6.0 * n * d0, "the pretraining compute 6 N D0", "0.5x"
    )
    with params_as_flags():
        plan = plan_from_dense(
            the_law, n, d0, c, flops=flops.value, start=start, end=end, level=level
        )
    out = plan.to_dict() | {
        "law": the_law.name or law,
        "level": level,
        "compute_flops": None if the_law.tokens_per_unit is None else c * the_law.tokens_per_unit,
    }
    if as_json:
        print_json(out)
        return
    _print(plan, out, the_law)


def parse_dense(text: str) -> tuple[float, float]:
    """ "N,D0" -> (N, D0), both positive ("1e8,2e9", "200k,1.6M")."""
    from sparsescale.units import parse_quantity

    parts = [p.strip() for p in str(text).split(",")]
    if len(parts) != 2 or not all(parts):
        raise SparsescaleError(
            f"--dense: expected N,D0 (dense parameters, tokens trained), e.g. 1e8,2e9; got {text!r}"
        )
    values = []
    for name, part in zip(("N", "D0"), parts):
        v = parse_quantity(part, f"--dense {name}")
        if v <= 0:
            raise SparsescaleError(f"--dense: {name} must be a positive number, got {part!r}")
        values.append(float(v))
    return values[0], values[1]


def _print(plan, out: dict, law) -> None:
    con = console()
    unit = law.units.get("D", "data")
    ivs = plan.intervals or {}

    def iv(name: str, fmt: str) -> str:
        return (
            f"  [{format(ivs[name][0], fmt)}, {format(ivs[name][1], fmt)}]" if name in ivs else ""
        )

    con.print(
        f"law {out['law']}: a dense model of N = {plan.n_params:.4g} parameters trained on D0 = "
        f"{plan.dense_data:.4g} {unit}, {plan.compute:.4g} (law units: FLOPs for tokens) to "
        f"continue ({plan.flops} FLOPs)"
        + (f"; {out['level']:.0%} intervals in brackets" if ivs else ""),
        highlight=False,
    )
    con.print(
        f"  prune to sparsity S     = [bold]{plan.sparsity:.4f}[/bold]{iv('sparsity', '.4f')} "
        f"({plan.n_nonzero:.4g} non-zeros)"
    )
    con.print(
        f"  continue for            = {plan.continue_data:.4g} {unit}{iv('continue_data', '.4g')}"
    )
    con.print(f"  predicted loss          = {plan.loss:.5f}{iv('loss', '.5f')}")
    con.print(
        f"  or continue dense       = {plan.dense_continue_data:.4g} {unit}, loss "
        f"{plan.dense_loss:.5f}"
        f"{iv('dense_loss', '.5f')}"
    )
    lo, hi = plan.fitted_dense_fraction
    con.print(
        f"  dense fraction D0/D     = {plan.dense_fraction:.3f} (the law was fitted on "
        f"{lo:.3f}-{hi:.3f})"
    )
    if plan.extrapolated:
        con.print(
            "warning: this dense fraction is outside the fitted ones: the prediction is an "
            "extrapolation",
            style="yellow",
        )
    if not ivs:
        con.print("note: the law carries no uncertainty (fit it with a bootstrap for intervals)")
