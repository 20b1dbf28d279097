"""`sparsescale optimal`: the optimal sparsity S_opt for N non-zeros and a
compute budget, the data it buys and the loss against the dense baseline,
and the S_opt map over (N, C) (no torch).

The from-dense plan and the pattern choice were once `optimal --from-dense`
and `optimal --patterns`; they are the commands `from-dense` and
`choose-pattern` now. The old spellings still run them, for one release, with
a note on stderr.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Optional

import typer

from sparsescale.cli.app import app
from sparsescale.cli.common import (
    NO_UNCERTAINTY,
    check_level,
    check_plot_format,
    check_window,
    console,
    dense_optimal_budget,
    deprecated,
    fmt_loss,
    params_as_flags,
    positive_quantity,
    print_json,
    run_command,
)
from sparsescale.errors import SparsescaleError


class Flops(str, Enum):
    sparse = "sparse"
    dense = "dense"
    measured = "measured"


@app.command()
def optimal(
    law: str = typer.Option(..., "--law", help="vit-jft, t5-c4 or a LAW.json (a sparse-form law)."),
    params: Optional[str] = typer.Option(
        None, "--params", help="Non-zero parameters N of the model you will train (e.g. 1e7)."
    ),
    compute: Optional[str] = typer.Option(
        None,
        "--compute",
        help="Training budget: FLOPs (e.g. 1e19; the law must carry tokens_per_unit), or a "
        "multiple of the dense compute-optimal budget C* = 6 N D* (e.g. 10x).",
    ),
    flops: Flops = typer.Option(
        Flops.sparse,
        "--flops",
        help="sparse: training exploits sparsity (cubic-schedule mean density); dense: it does "
        "not; measured: step times from --speedups.",
    ),
    speedups: Optional[Path] = typer.Option(
        None,
        "--speedups",
        help="Speedups JSON from `sparsescale bench-kernels` (for --flops measured; its "
        "unstructured entries).",
    ),
    start: float = typer.Option(
        0.25, "--start", help="Pruning starts at this fraction of training (affects sparse FLOPs)."
    ),
    end: float = typer.Option(0.75, "--end", help="Pruning ends at this fraction of training."),
    contours: bool = typer.Option(
        False,
        "--contours",
        help="Draw the S_opt map over (N, C) with the Chinchilla line (needs --plot).",
    ),
    plot: Optional[Path] = typer.Option(None, "--plot", help="PNG path for --contours."),
    level: float = typer.Option(
        0.95, "--level", help="Level of the intervals (when the law carries uncertainty)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    # Deprecated spellings of `from-dense` and `choose-pattern`, hidden from --help.
    from_dense: Optional[str] = typer.Option(None, "--from-dense", hidden=True),
    patterns: Optional[Path] = typer.Option(None, "--patterns", hidden=True),
    speedup: Optional[list[str]] = typer.Option(None, "--speedup", hidden=True),
) -> None:
    """The optimal sparsity for N non-zeros and a compute budget, the data it
    buys, the loss against the dense baseline, and the equivalent dense size.

    Example: sparsescale optimal --law vit-jft --params 1e7 --compute 1e18
    Pruning a dense model: `sparsescale from-dense`; n:m patterns: `sparsescale choose-pattern`.
    """
    from sparsescale.laws.planning import optimal_data_ratio
    from sparsescale.laws.presets import load_law

    common = dict(
        law=law, compute=compute, flops=flops, start=start, end=end, level=level, as_json=as_json
    )
    if from_dense is not None:
        return _old_from_dense(
            from_dense,
            params=params,
            speedups=speedups,
            contours=contours,
            plot=plot,
            patterns=patterns,
            speedup=speedup,
            **common,
        )
    if patterns is not None or speedup:
        return _old_patterns(
            patterns,
            speedup or [],
            params=params,
            speedups=speedups,
            contours=contours,
            plot=plot,
            **common,
        )
    check_level(level)
    check_window(start, end)
    the_law = load_law(law)
    _check_optimal_flags(law, params, compute, contours, plot)
    cost = _cost_model(flops, speedups, start, end)
    out: dict = {
        "law": the_law.name or law,
        "units": the_law.units,
        "tokens_per_unit": the_law.tokens_per_unit,
        "flops": flops.value,
    }
    point = None
    if params is not None and compute is not None:
        point = _optimal_point(out, the_law, params, compute, cost, start, end, level)
    elif params is not None or compute is not None:
        raise SparsescaleError("--params and --compute go together")
    with params_as_flags():
        out["optimal_data_ratio"] = {
            f"{s:g}": float(optimal_data_ratio(the_law, s, cost, start, end))
            for s in (0.5, 0.75, 0.875)
        }
    if contours:
        from sparsescale.report.figures import plot_sopt_contours

        n_range = None
        if point is not None:
            n_range = (point.n_nonzero / 100, point.n_nonzero * 100)
        plot_sopt_contours(the_law, plot, flops=cost, n_range=n_range, start=start, end=end)
        out["plot"] = str(plot)
    if as_json:
        print_json(out)
        return
    _print_optimal(out, point, the_law, contours, plot)


def _cost_model(flops: Flops, speedups: Optional[Path], start: float, end: float):
    """ "sparse"/"dense", or the measured cost model read from --speedups."""
    if flops != Flops.measured:
        if speedups is not None:
            raise SparsescaleError("--speedups is for --flops measured")
        return flops.value
    if speedups is None:
        raise SparsescaleError(
            "--flops measured needs --speedups FILE (written by `sparsescale bench-kernels`)"
        )
    from sparsescale.laws.costs import load_speedups

    return load_speedups(speedups).cost_model("unstructured", start, end)


def _check_optimal_flags(law: str, params, compute, contours: bool, plot) -> None:
    """The flag combinations `optimal` refuses, and a --plot path it could not write."""
    if contours and plot is None:
        raise SparsescaleError("--contours needs --plot PATH.png")
    if plot is not None and not contours:
        raise SparsescaleError("--plot is for --contours; add --contours")
    if plot is not None:
        from sparsescale.atomic import check_output, is_figure

        check_plot_format(plot)
        check_output(plot, [Path(law)] if Path(law).exists() else [], "--plot", ours=is_figure)
    if not contours and (params is None or compute is None):
        raise SparsescaleError("give --params N and --compute C (or --contours --plot PATH)")


def _optimal_point(
    out: dict, the_law, params: str, compute: str, cost, start: float, end: float, level: float
):
    """Plan the budget for --params at --compute; adds the plan and its intervals to `out`."""
    from sparsescale.laws.planning import optimal_intervals, optimal_sparsity

    n = positive_quantity(params, "--params")
    budget = dense_optimal_budget(the_law, n, compute)
    # Sparse or dense, a run of N non-zeros costs at least 6 N per unit of data
    # (C = 6 N/(1-S) x mean density x D, and the mean density is >= 1-S).
    if not budget / (6.0 * n) >= 1.0:
        raise SparsescaleError(
            f"--compute {compute}: buys at most {budget / (6.0 * n):.3g} "
            f"{the_law.units.get('D', 'units of data')} for N = {n:.4g} (C / 6N), less than one "
            "unit"
        )
    with params_as_flags():
        point = optimal_sparsity(the_law, n, budget, flops=cost, start=start, end=end)
    out.update(point.to_dict())
    out["loss_gain_vs_dense"] = point.dense_loss - point.loss
    with params_as_flags():
        ivs = optimal_intervals(the_law, point, level, cost, start, end)
    if ivs is None:
        out["note"] = NO_UNCERTAINTY
    else:
        out["level"] = level
        out["intervals"] = {k: {"low": lo, "high": hi} for k, (lo, hi) in ivs.items()}
        out["interval_note"] = (
            "loss, dense_loss: coefficient draws + model error; sparsity, data, "
            "equivalent_dense_size: the budget re-planned under every coefficient draw"
        )
    return point


def _print_optimal(out: dict, point, the_law, contours: bool, plot) -> None:
    con = console()
    if point is not None:
        d_unit = the_law.units.get("D", "data")
        ivs = out.get("intervals", {})

        def iv(name: str, fmt: str) -> str:
            if name not in ivs:
                return ""
            return f"  [{format(ivs[name]['low'], fmt)}, {format(ivs[name]['high'], fmt)}]"

        flops_text = (
            f"{point.compute_flops:.4g} FLOPs"
            if point.compute_flops is not None
            else "FLOPs unknown (the law lacks tokens_per_unit)"
        )
        con.print(
            f"law {out['law']}, N = {point.n_nonzero:.4g} non-zeros, {out['flops']} accounting"
            + (f"; {out['level']:.0%} intervals in brackets" if ivs else "")
        )
        con.print(
            f"  budget                  = {flops_text} = 6 N x "
            f"{point.compute / (6 * point.n_nonzero):.4g} {d_unit} "
            f"= {point.compute_vs_dense_optimal:.3g} x C* (dense compute-optimal)"
        )
        con.print(
            f"  optimal sparsity S_opt  = [bold]{point.sparsity:.4f}[/bold]{iv('sparsity', '.4f')}"
        )
        con.print(f"  data at S_opt           = {point.data:.4g} {d_unit}{iv('data', '.4g')}")
        con.print(f"  loss at S_opt           = {fmt_loss(point.loss)}{iv('loss', '.5f')}")
        con.print(
            f"  dense baseline (S = 0)  = {fmt_loss(point.dense_loss)}{iv('dense_loss', '.5f')} "
            f"(D = {point.dense_data:.4g})"
        )
        con.print(
            f"  equivalent dense size   = {point.equivalent_dense_size:.4g} "
            f"parameters{iv('equivalent_dense_size', '.4g')} "
            f"({point.equivalent_dense_size / point.n_nonzero:.2f}x N)"
        )
        con.print(f"  Chinchilla-optimal D for a dense N = {point.chinchilla_data:.4g} {d_unit}")
        if ivs:
            con.print(f"  ({out['interval_note']})")
        else:
            con.print(f"note: {NO_UNCERTAINTY}")
    ratios = ", ".join(f"{s} at {r:.2f}x" for s, r in out["optimal_data_ratio"].items())
    con.print(f"sparsity S becomes optimal at D_S/D* = {ratios}")
    if contours:
        con.print(f"wrote {plot}")


# --- the deprecated spellings (one release) ------------------------------------


def _shared_args(
    law: str, compute, flops: "Flops", start: float, end: float, level: float, as_json: bool
) -> list[str]:
    """The flags `optimal` shares with the new commands, spelled for their
    command line (--flag=value: a value may start with "-")."""
    args = [f"--law={law}", f"--start={start!r}", f"--end={end!r}", f"--level={level!r}"]
    if compute is not None:
        args.append(f"--compute={compute}")
    if flops != Flops.sparse:
        args.append(f"--flops={flops.value}")
    return args + (["--json"] if as_json else [])


def _old_from_dense(
    from_dense: str,
    *,
    law,
    compute,
    flops,
    start,
    end,
    level,
    as_json,
    params,
    speedups,
    contours,
    plot,
    patterns,
    speedup,
):
    """`optimal --from-dense N,D0 ...` -> `from-dense --dense N,D0 ...`. The
    flags of plain `optimal` never combined with it: refused as they always were."""
    others = {
        "--params": params,
        "--contours": contours,
        "--plot": plot,
        "--speedups": speedups,
        "--patterns": patterns,
        "--speedup": speedup,
    }
    given = [flag for flag, value in others.items() if value]
    if given:
        raise SparsescaleError(
            f"{given[0]}: does not combine with --from-dense (the plan prunes the dense model)"
        )
    if flops == Flops.measured:
        raise SparsescaleError("--flops measured: --from-dense takes sparse or dense")
    deprecated("optimal --from-dense N,D0", "sparsescale from-dense --dense N,D0")
    return run_command(
        "from-dense",
        [f"--dense={from_dense}", *_shared_args(law, compute, flops, start, end, level, as_json)],
    )


def _old_patterns(
    patterns: Optional[Path],
    speedup: list[str],
    *,
    law,
    compute,
    flops,
    start,
    end,
    level,
    as_json,
    params,
    speedups,
    contours,
    plot,
):
    """`optimal --patterns FILE ...` -> `choose-pattern --patterns FILE ...`,
    with the refusals the old spelling had."""
    if patterns is None:
        raise SparsescaleError(
            "--speedup is for the pattern choice: add --patterns LAW.json "
            "(or use `sparsescale choose-pattern`)"
        )
    if contours:
        raise SparsescaleError(
            "--contours draws the unstructured S_opt map; it does not combine with --patterns"
        )
    if plot is not None:
        raise SparsescaleError("--plot is for --contours; it does not combine with --patterns")
    if speedups is not None or flops != Flops.sparse:
        raise SparsescaleError(
            "--patterns reports both equal-FLOPs and equal-time accountings; give per-pattern "
            "speedups with --speedup PATTERN=FACTOR instead of --flops/--speedups"
        )
    if params is None or compute is None:
        raise SparsescaleError("--patterns needs --params N and --compute C")
    deprecated("optimal --patterns FILE", "sparsescale choose-pattern --patterns FILE")
    args = [
        f"--patterns={patterns}",
        f"--params={params}",
        *(f"--speedup={item}" for item in speedup),
        *_shared_args(law, compute, flops, start, end, level, as_json),
    ]
    return run_command("choose-pattern", args)
