"""`sparsescale fit`: a scaling law fitted to sweep results (no torch).

The rows come from a table, a sweep store or the paper's sweeps; every value
is checked with its flag and row named before the fit; the law, its
bootstrap intervals, holdout errors and figures are written only once all of
them have been computed.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Optional

import typer

from sparsescale.cli.app import app
from sparsescale.cli.common import (
    check_plot_format,
    console,
    params_as_flags,
    print_json,
    warn_non_finite,
)
from sparsescale.errors import SparsescaleError


class Space(str, Enum):
    log = "log"
    linear = "linear"


class Holdout(str, Enum):
    largest_n = "largest-n"


def _fmt(v: float) -> str:
    return f"{v:.6g}"


def _bootstrap_progress():
    """A progress line on a terminal's stderr for long bootstraps (none when
    stderr is a file or a pipe: logs and tests keep one line per message)."""
    import sys
    import time

    if not sys.stderr.isatty():
        return None
    t0 = time.monotonic()

    def show(done: int, total: int) -> None:
        end = "\n" if done >= total else ""
        print(
            f"\rbootstrap: {done}/{total} resamples ({time.monotonic() - t0:.0f} s; Ctrl-C stops)",
            end=end,
            file=sys.stderr,
            flush=True,
        )

    return show


def _derived_quantities(form: str, S, N, D):
    """Quantities whose bootstrap intervals a user of a sparse fit wants."""
    from sparsescale.laws.forms import get_form

    if get_form(form).sparsity_factor is None:  # a form with no sparsity term (dense)
        return {}
    from sparsescale.laws.planning import equivalent_dense_factor, optimal_sparsity

    n_ref, d_ref = float(N.max()), float(D.max())
    c_ref = 6.0 * n_ref * d_ref * 10.0
    out = {
        f"loss(S={S.max():g}, N={n_ref:.3g}, D={d_ref:.3g})": lambda law: float(
            law.predict(S.max(), n_ref, d_ref)
        ),
        f"S_opt(N={n_ref:.3g}, C=60 N D_max)": lambda law: (
            optimal_sparsity(law, n_ref, c_ref).sparsity
        ),
    }
    for s in (0.5, 0.75, 0.875):
        out[f"equivalent dense size x (S={s:g})"] = lambda law, s=s: float(
            equivalent_dense_factor(law, s)
        )
    return out


@app.command()
def fit(
    data_file: str = typer.Argument(
        ...,
        metavar="DATA",
        help="Sweep results: .csv, .json (pandas orient=columns or records) or .parquet; a sweep "
        "store (.sqlite: its export's columns); or paper:t5 / paper:vit, the paper's sweeps "
        "shipped with sparsescale (column flags and fit settings then default to the "
        "paper's).",
    ),
    sparsity: Optional[str] = typer.Option(
        None,
        "--sparsity",
        help="Column (or expression) with the sparsity S in [0, 1). Required except for --form "
        "dense.",
    ),
    params: Optional[str] = typer.Option(
        None,
        "--params",
        help="Column or expression for N, the NON-ZERO parameters, e.g. "
        '"24*12*768**2*scale*(1-sparsity)".',
    ),
    data: Optional[str] = typer.Option(
        None, "--data", help="Column or expression for D (tokens, examples or steps)."
    ),
    loss: Optional[str] = typer.Option(
        None, "--loss", help="Column with the measured validation loss."
    ),
    form: str = typer.Option(
        "sparse",
        "--form",
        help="sparse: all 7 coefficients; dense: Chinchilla A,alpha,B,beta,E; nm: refit aS,bS,cS "
        "on a --base law; avgparam: Chinchilla on the average non-zeros over training (Jin "
        "et al. 2025); or your own form as package.module:attribute.",
    ),
    schedule: str = typer.Option(
        "cubic:0.25:0.75",
        "--schedule",
        help="The pruning schedule the runs used, for N_avg of --form avgparam and --compare: "
        "cubic:START:END, one-shot:AT (fractions of training), constant or dense.",
    ),
    compare: bool = typer.Option(
        False,
        "--compare",
        help="Fit the paper's sparse law and the average-parameter law on the same data and score "
        "both (largest-N holdout, rolling holdouts, AICc).",
    ),
    base: Optional[str] = typer.Option(
        None,
        "--base",
        help="Law (JSON path or preset) whose bN, aD, bD, c stay fixed for --form nm.",
    ),
    space: Optional[Space] = typer.Option(
        None, "--space", help="Huber on log-loss residuals (default) or on raw-loss residuals."
    ),
    delta: Optional[float] = typer.Option(
        None, "--delta", help="Huber delta (default 1e-3 in log space, 1e-2 in linear space)."
    ),
    seed: int = typer.Option(
        0, "--seed", help="Seed of the low-discrepancy start set and of the bootstrap."
    ),
    bootstrap: int = typer.Option(
        0,
        "--bootstrap",
        help="Resample the runs B times: 95% intervals, and a law file that carries prediction "
        "intervals calibrated on rolling holdouts (0 = off).",
    ),
    holdout: Optional[Holdout] = typer.Option(
        None,
        "--holdout",
        help="largest-n: also fit without the largest-N group and report the error predicting it.",
    ),
    tokens_per_unit: Optional[float] = typer.Option(
        None,
        "--tokens-per-unit",
        help="Tokens in one unit of D (65536 for a step of 128 x 512 tokens, 197 for a ViT-B/16 "
        "image); lets `optimal` take budgets in FLOPs. Default: 1 when --data names tokens, "
        "else unknown.",
    ),
    out: Optional[Path] = typer.Option(
        None, "--out", help="Write the fitted law as JSON (usable with --law)."
    ),
    plot: Optional[Path] = typer.Option(
        None,
        "--plot",
        help="Write the fit-quality PNG here, and the loss-vs-N PNG beside it "
        "(<stem>-loss-vs-n.png).",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of tables."),
) -> None:
    """Fit a scaling law to sweep results with a Huber objective and a global optimiser.

    Examples:
      sparsescale fit paper:t5 --bootstrap 200 --holdout largest-n --out t5-law.json
      sparsescale fit t5-data.csv --sparsity sparsity --params "24*12*768**2*scale*(1-sparsity)"
    --data steps --loss val-loss
    """
    from sparsescale.laws.fit import resolve_form
    from sparsescale.laws.points import FitOptions, Points
    from sparsescale.laws.presets import load_law
    from sparsescale.laws.uncertainty.assess import assess

    with params_as_flags():
        spec = resolve_form(form)
    units = None
    if data_file.startswith("paper:"):
        sparsity, params, data, loss, space, delta, tokens_per_unit, units = _paper_defaults(
            data_file, sparsity, params, data, loss, space, delta, tokens_per_unit
        )
    space = space or Space.log
    _check_fit_flags(data_file, sparsity, params, data, loss, spec, form, base, compare, bootstrap)
    _check_fit_outputs(data_file, base, out, plot)
    tpu = _tokens_per_unit(tokens_per_unit, data)
    base_law = load_law(base) if base is not None else None
    S, N, D, y = _read_points(data_file, sparsity, params, data, loss, space)
    f_sched = _schedule_fraction(schedule)
    units = units or {"N": f"non-zero parameters ({params})", "D": data, "loss": loss}
    # forms that ignore S (dense) are fitted on S = 0; only schedule-reading forms get the fraction
    points = Points(S if spec.uses_sparsity else None, N, D, y)
    options = FitOptions(
        form=form,
        space=space.value,
        delta=delta,
        seed=seed,
        base=base_law,
        mean_sparsity_fraction=f_sched if spec.needs_schedule else None,
        units=units,
        tokens_per_unit=tpu,
    )
    _check_holdout(holdout, N, data_file)
    with params_as_flags(data_file):
        result = assess(
            points,
            options,
            n_boot=bootstrap,
            holdout=holdout is not None,
            progress=_bootstrap_progress(),
            derived=_derived_quantities(form, S, N, D) if bootstrap else None,
        )
    law = result.law
    law.name = (
        data_file.split(":", 1)[1] if data_file.startswith("paper:") else Path(data_file).stem
    )
    report: dict = result.to_dict()
    report.setdefault("warnings", []).extend(_data_warnings(form, S, N, D, y))
    if compare:
        report["comparison"] = _compare_report((S, N, D, y), space.value, delta, seed, f_sched)
    _record_fit_checks(result, report, holdout is not None)
    _write_fit_outputs(report, law, result.holdout, (S, N, D, y), form, plot, out, as_json)


def _check_fit_flags(
    data_file, sparsity, params, data, loss, spec, form, base, compare, bootstrap
) -> None:
    """The flag combinations `fit` refuses, checked before any data is read."""
    for flag, value in (("--params", params), ("--data", data), ("--loss", loss)):
        if value is None:
            raise SparsescaleError(f"{flag} is required (a column or expression of {data_file})")
    if spec.uses_sparsity and sparsity is None:
        raise SparsescaleError(f"--sparsity is required for --form {form}")
    if spec.base_forms and base is None:
        raise SparsescaleError(
            f"--form {form} needs --base LAW.json (the dense base whose "
            f"{', '.join(spec.fixed)} stay fixed)"
        )
    if compare and sparsity is None:
        raise SparsescaleError("--compare needs --sparsity: both laws it compares depend on S")
    if bootstrap < 0:
        raise SparsescaleError(f"--bootstrap: must be >= 0, got {bootstrap}")


def _compare_report(points, space: str, delta, seed: int, f_sched) -> dict:
    """--compare: the sparse and average-parameter laws fitted and scored on the same points."""
    from sparsescale.laws.compare import compare_forms
    from sparsescale.laws.points import FitOptions, Points

    with params_as_flags():
        return compare_forms(
            Points(*points),
            FitOptions(space=space, delta=delta, seed=seed, mean_sparsity_fraction=f_sched),
        ).to_dict()


def _record_fit_checks(result, report: dict, holdout_asked: bool) -> None:
    """Carry the bootstrap intervals and holdout errors into the law file; a
    requested holdout that could not run is an error."""
    law = result.law
    if result.bootstrap is not None:
        law.fit["intervals"] = report["intervals"]
    if result.holdout is not None:
        law.fit["holdout"] = {
            k: report["holdout"][k]
            for k in ("n_heldout", "held_out_n_nonzero", "mean_abs_rel_error", "max_abs_rel_error")
        }
    elif holdout_asked:
        raise SparsescaleError(
            "--holdout: " + result.warnings[0].removeprefix("largest-N holdout skipped: ")
        )


def _plot_paths(plot: Path) -> tuple[Path, Path]:
    """--plot and the loss-vs-N figure written beside it."""
    return plot, plot.with_name(plot.stem + "-loss-vs-n" + (plot.suffix or ".png"))


def _check_fit_outputs(
    data_file: str, base: str | None, out: Path | None, plot: Path | None
) -> None:
    """Before any work: the output rule (sparsescale.atomic) for --out (a law
    JSON) and --plot (two figures): not an input (data, --base law), not
    someone else's file, no two the same, every folder writable."""
    from sparsescale.atomic import Output, check_outputs, is_figure
    from sparsescale.laws.law import Law

    inputs = [
        Path(p)
        for p in (data_file, base)
        if p is not None and not p.startswith("paper:") and Path(p).exists()
    ]
    outputs = [Output(out, "--out", Law.is_file)] if out is not None else []
    if plot is not None:
        check_plot_format(plot)
        outputs += [Output(p, "--plot", is_figure) for p in _plot_paths(plot)]
    check_outputs(outputs, inputs)


def _check_holdout(holdout, N, data_file: str) -> None:
    """--holdout's own precondition, before any fitting."""
    from sparsescale.laws.uncertainty.bootstrap import group_by_size

    if holdout is not None and group_by_size(N).max() < 1:
        raise SparsescaleError(
            f"--holdout: all runs have the same N in {data_file}; need at least two sizes"
        )


def _paper_defaults(data_file, sparsity, params, data, loss, space, delta, tokens_per_unit):
    """paper:t5 / paper:vit: the sweep's columns, the paper's fit settings and the
    cost of one unit of D, wherever a flag did not set them."""
    from sparsescale.laws.paper import paper_sweep

    sweep = paper_sweep(data_file)
    space = space or Space(sweep.space)
    delta = sweep.delta if delta is None and space.value == sweep.space else delta
    return (
        sparsity or sweep.sparsity,
        params or sweep.params,
        data or sweep.data,
        loss or sweep.loss,
        space,
        delta,
        sweep.tokens_per_unit if tokens_per_unit is None else tokens_per_unit,
        dict(sweep.units),
    )


def _write_fit_outputs(
    report: dict, law, held, points, form: str, plot, out, as_json: bool
) -> None:
    """Files only once everything has been computed: an error never leaves half of them."""
    if plot is not None:
        report["plots"] = _plot_fit(plot, law, held, *points, form)
    if out is not None:
        from sparsescale.laws.jsonsafe import finite_json

        warn_non_finite(finite_json(law.to_dict())[1], str(out))
        law.save(out)
        report["law_file"] = str(out)
    if as_json:
        print_json(report)
        return
    _print_fit(report, law)


def _is_sqlite(path: str) -> bool:
    """A sweep store (or any SQLite file) by its first bytes, whatever its name."""
    try:
        with open(path, "rb") as f:
            return f.read(16) == b"SQLite format 3\x00"
    except OSError:
        return False


def _store_table(path: str):
    """A store's finished runs as the export's table (one row per grid point,
    its best lr's run when the sweep scanned lr): `fit` on a store is `fit` on
    its export, without the file."""
    import pandas as pd

    from sparsescale.sweep.export import result_rows
    from sparsescale.sweep.store import Store

    with Store(path, readonly=True) as store:
        rows = result_rows(store)
    if not rows:
        raise SparsescaleError(f"{path}: no finished runs to fit yet")
    return pd.DataFrame(rows)


def _read_points(data_file: str, sparsity, params, data, loss, space):
    """(S, N, D, loss) from the table, every value checked with its flag and row named."""
    import numpy as np

    from sparsescale.tables import check_values, evaluate, read_table

    if data_file.startswith("paper:"):
        from sparsescale.laws.paper import paper_columns
        from sparsescale.tables import ColumnTable

        df = ColumnTable(paper_columns(data_file))
    elif _is_sqlite(data_file):
        df = _store_table(data_file)
    else:
        df = read_table(data_file)
    src = data_file
    if loss not in df.columns:
        raise SparsescaleError(
            f"--loss: no column {loss!r} in {src} (columns: {', '.join(map(str, df.columns))})"
        )
    S = evaluate(df, sparsity, "--sparsity", src) if sparsity is not None else np.zeros(df.shape[0])
    N = evaluate(df, params, "--params", src)
    D = evaluate(df, data, "--data", src)
    y = evaluate(df, loss, "--loss", src)
    check_values(
        S,
        "--sparsity",
        src,
        f"column {sparsity!r}" if sparsity in df.columns else "sparsity",
        unit_interval=True,
    )
    check_values(
        N, "--params", src, f"column {params!r}" if params in df.columns else "N", positive=True
    )
    check_values(D, "--data", src, f"column {data!r}" if data in df.columns else "D", positive=True)
    check_values(y, "--loss", src, f"column {loss!r}", positive=(space == Space.log))
    return S, N, D, y


def _plot_fit(plot: Path, law, held, S, N, D, y, form: str) -> list[str]:
    from sparsescale.report.figures import plot_fit_quality, plot_loss_vs_n

    mask = held["mask"] if held is not None else None
    predicted = law.predict(S, N, D)
    if held is not None:  # held-out points show the extrapolation, not the full fit
        predicted[mask] = held["predicted"]
    second = _plot_paths(plot)[1]
    plot_fit_quality(S, predicted, y, mask, plot, title=f"Fit quality ({form} law)")
    plot_loss_vs_n(law, S, N, D, y, second)
    return [str(plot), str(second)]


def _tokens_per_unit(given: float | None, data_expr: str) -> float | None:
    """--tokens-per-unit, or 1 when D is a token count by name (the sweeps' `tokens` column)."""
    from sparsescale.laws.law import check_tokens_per_unit

    if given is not None:
        return check_tokens_per_unit(given, "--tokens-per-unit")
    return (
        1.0
        if data_expr.strip().lower() in ("tokens", "n_tokens", "tokens_seen", "train_tokens")
        else None
    )


def _print_fit(report: dict, law) -> None:
    from rich.table import Table

    con = console()
    d = report["diagnostics"]
    con.print(
        f"[bold]{law.form} law[/bold] fitted on {report['n_points']} points: "
        f"{law.to_dict()['formula']}"
    )
    intervals = report.get("intervals", {}).get("intervals", {})
    t = Table("coefficient", "value", *(["95% interval"] if intervals else []))
    for k, v in law.coefficients.items():
        row = [k, _fmt(v)]
        if intervals:
            iv = intervals.get(k)
            row.append(f"[{_fmt(iv['low'])}, {_fmt(iv['high'])}]" if iv else "")
        t.add_row(*row)
    con.print(t)
    con.print(
        f"Huber objective ({d['space']} space, delta {d['delta']:g}): {report['objective']:.6g}"
    )
    con.print(
        f"starts at the best optimum: {d['starts_at_best']}/{d['n_starts']}, distinct optima "
        f"found: {d.get('n_distinct_optima')}, "
        f"gradient norm {d['grad_norm']:.2e}, at a bound: {', '.join(d['at_bound']) or 'none'}"
    )
    if intervals:
        extra = [k for k in intervals if k not in law.coefficients]
        if extra:
            t2 = Table("derived quantity", "median", "95% interval")
            for k in extra:
                iv = intervals[k]
                t2.add_row(k, _fmt(iv["median"]), f"[{_fmt(iv['low'])}, {_fmt(iv['high'])}]")
            con.print(t2)
    if "holdout" in report:
        h = report["holdout"]
        con.print(
            f"holdout (largest N = {h['held_out_n_nonzero']:.4g}, {h['n_heldout']} runs): mean "
            "|error| "
            f"{100 * h['mean_abs_rel_error']:.2f}%, max {100 * h['max_abs_rel_error']:.2f}%"
        )
    if "calibration" in report:
        _print_calibration(con, report["calibration"])
    if "comparison" in report:
        _print_comparison(con, report["comparison"])
    for w in report.get("warnings", []):
        con.print(f"[yellow]warning:[/yellow] {w}")
    for p in report.get("plots", []):
        con.print(f"wrote {p}")
    if "law_file" in report:
        con.print(f"wrote {report['law_file']}")


def _data_warnings(form: str, S, N, D, y) -> list[str]:
    """What the rows themselves say about the fit: n:m identifiability, and series
    that do not fall with D like a power law (laws.regime)."""
    from sparsescale.laws.regime import check_series, regime_warning

    regime = regime_warning(check_series(S, N, D, y))
    return _nm_identifiability(form, S) + ([regime] if regime else [])


def _nm_identifiability(form: str, S) -> list[str]:
    """An n:m pattern fixes S, so refitting aS, bS, cS on one pattern's runs
    determines only their combination at that S: say so instead of printing
    three numbers that look like measurements."""
    from sparsescale.laws.forms import get_form

    # a refit on a base law (nm) sees the sparsity term only at the runs' sparsities
    levels = sorted({float(s) for s in S if s > 0}) if get_form(form).base_forms else []
    if len(levels) != 1:
        return []
    return [
        f"--form {form}: every sparse row has S = {levels[0]:g}, so aS, bS and cS are not "
        "determined separately "
        "(only aS*(1-S)^bS + cS at that S is); fit the patterns with the same m together, or run "
        "`sparsescale report`, which refits each n:m family keeping A = aS + cS from the base"
    ]


def _schedule_fraction(text: str) -> float:
    """--schedule cubic:0.25:0.75 | one-shot:0.5 | constant | dense -> mean sparsity / S."""
    from sparsescale.laws.schedule import schedule_mean_sparsity_fraction

    kind, *args = [p.strip() for p in text.split(":")]
    try:
        nums = [float(a) for a in args]
    except ValueError:
        raise SparsescaleError(
            f"--schedule: {text!r}: expected cubic:START:END, one-shot:AT, constant or dense"
        ) from None
    wanted = {"cubic": (0, 2), "one-shot": (0, 1), "constant": (0,), "dense": (0,)}.get(kind)
    if wanted is None or len(nums) not in wanted:
        raise SparsescaleError(
            f"--schedule: {text!r}: expected cubic:START:END, one-shot:AT, constant or dense"
        )
    with params_as_flags():
        if kind == "cubic":
            return schedule_mean_sparsity_fraction("cubic", *(nums or [0.25, 0.75]))
        return schedule_mean_sparsity_fraction(kind, at=nums[0] if nums else 0.0)


def _print_comparison(con, cmp: dict) -> None:
    from rich.table import Table

    def pct(v):
        return "-" if v is None else f"{100 * v:.2f}%"

    t = Table(title="which law do the data support?")
    for h in ("form", "coef.", "objective", "AICc", "largest-N mean", "max", "rolling"):
        t.add_column(h, no_wrap=True)
    for s in cmp["scores"]:
        t.add_row(
            s["form"],
            str(s["n_coefficients"]),
            f"{s['objective']:.3g}",
            f"{s['aicc']:.1f}",
            pct(s["holdout_mean_abs_rel_error"]),
            pct(s["holdout_max_abs_rel_error"]),
            pct(s["rolling_mean_abs_rel_error"]) + f" ({s['rolling_points']})",
        )
    con.print(t)
    con.print(cmp["verdict"])


def _print_calibration(con, cal: dict) -> None:
    """The coverage of the law's prediction intervals on the rolling holdouts of the data."""
    folds = cal["folds"]
    con.print(
        f"rolling holdouts ({len(folds)}: "
        + "; ".join(
            f"{f['label']} mean |error| {100 * f['mean_abs_rel_error']:.2f}%" for f in folds
        )
        + ")"
    )
    con.print(
        f"  model error grows by {100 * cal['per_efold']:.2f}% per e-fold of extrapolation"
        + (
            ""
            if cal["min_train_groups"] >= 3
            else " (from folds trained on only two sizes or lengths: under-determined)"
        )
    )
    for name, table in (
        ("coverage", cal["coverage"]),
        ("leave-one-fold-out", cal["coverage_leave_one_fold_out"]),
    ):
        if table:
            con.print(
                f"  {name}: "
                + ", ".join(
                    f"{float(lv):.0%} intervals cover {v['covered']:.0%} of {v['n_points']} points "
                    f"(median half-width {100 * v['median_rel_half_width']:.2f}%)"
                    for lv, v in table.items()
                )
            )
