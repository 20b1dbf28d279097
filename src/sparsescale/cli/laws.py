"""`sparsescale fit`, `predict` and `optimal`: the law commands (no torch)."""

from __future__ import annotations

import json
from contextlib import contextmanager
from enum import Enum
from pathlib import Path
from typing import Optional

import typer

from sparsescale.cli.app import app
from sparsescale.errors import SparsescaleError


class Space(str, Enum):
    log = "log"
    linear = "linear"


class Flops(str, Enum):
    sparse = "sparse"
    dense = "dense"
    measured = "measured"


class Holdout(str, Enum):
    largest_n = "largest-n"


# Library errors name arguments; these are the flags that set them.
FLAG_OF = {
    "form": "--form", "space": "--space", "delta": "--delta", "base": "--base", "n_boot": "--bootstrap",
    "holdout": "--holdout", "flops": "--flops", "n_nonzero": "--params", "compute": "--compute",
    "compute_flops": "--compute", "start": "--start", "end": "--end", "tokens_per_unit": "--tokens-per-unit",
    "level": "--level", "sparsity": "--sparsity", "data": "--data", "schedule": "--schedule", "seed": "--seed",
}


@contextmanager
def _as_flags(source: str | None = None):
    """Re-word a library error that starts with an argument name ("form: ...") to name its flag;
    any other error is about the data, so it names `source` (the data file) when given."""
    try:
        yield
    except SparsescaleError as exc:
        head, sep, rest = str(exc).partition(":")
        if sep and head.strip() in FLAG_OF:
            raise SparsescaleError(FLAG_OF[head.strip()] + ":" + rest) from None
        if source is not None and not str(exc).startswith(source):
            raise SparsescaleError(f"{source}: {exc}") from None
        raise


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
        print(f"\rbootstrap: {done}/{total} resamples ({time.monotonic() - t0:.0f} s; Ctrl-C stops)",
              end=end, file=sys.stderr, flush=True)
    return show


def _console():
    from rich.console import Console

    return Console()


def _fmt(v: float) -> str:
    return f"{v:.6g}"


def _loss(v: float, digits: int = 5) -> str:
    """A loss with fixed decimals; an absurd one (a law far outside its data)
    in scientific notation rather than a hundred digits wide."""
    return f"{v:.{digits}f}" if abs(v) < 1e6 else f"{v:.{digits}g}"


def _derived_quantities(form: str, S, N, D):
    """Quantities whose bootstrap intervals a user of a sparse fit wants."""
    from sparsescale.laws.forms import get_form

    if get_form(form).sparsity_factor is None:   # a form with no sparsity term (dense)
        return {}
    from sparsescale.laws.planning import equivalent_dense_factor, optimal_sparsity

    n_ref, d_ref = float(N.max()), float(D.max())
    c_ref = 6.0 * n_ref * d_ref * 10.0
    out = {
        f"loss(S={S.max():g}, N={n_ref:.3g}, D={d_ref:.3g})": lambda law: float(law.predict(S.max(), n_ref, d_ref)),
        f"S_opt(N={n_ref:.3g}, C=60 N D_max)": lambda law: optimal_sparsity(law, n_ref, c_ref).sparsity,
    }
    for s in (0.5, 0.75, 0.875):
        out[f"equivalent dense size x (S={s:g})"] = lambda law, s=s: float(equivalent_dense_factor(law, s))
    return out


@app.command()
def fit(
    data_file: str = typer.Argument(..., metavar="DATA", help="Sweep results: .csv, .json (pandas orient=columns or records) or .parquet; a sweep store (.sqlite: its export's columns); or paper:t5 / paper:vit, the paper's sweeps shipped with sparsescale (column flags and fit settings then default to the paper's)."),
    sparsity: Optional[str] = typer.Option(None, "--sparsity", help="Column (or expression) with the sparsity S in [0, 1). Required except for --form dense."),
    params: Optional[str] = typer.Option(None, "--params", help="Column or expression for N, the NON-ZERO parameters, e.g. \"24*12*768**2*scale*(1-sparsity)\"."),
    data: Optional[str] = typer.Option(None, "--data", help="Column or expression for D (tokens, examples or steps)."),
    loss: Optional[str] = typer.Option(None, "--loss", help="Column with the measured validation loss."),
    form: str = typer.Option("sparse", "--form", help="sparse: all 7 coefficients; dense: Chinchilla A,alpha,B,beta,E; nm: refit aS,bS,cS on a --base law; avgparam: Chinchilla on the average non-zeros over training (Jin et al. 2025); or your own form as package.module:attribute."),
    schedule: str = typer.Option("cubic:0.25:0.75", "--schedule", help="The pruning schedule the runs used, for N_avg of --form avgparam and --compare: cubic:START:END, one-shot:AT (fractions of training), constant or dense."),
    compare: bool = typer.Option(False, "--compare", help="Fit the paper's sparse law and the average-parameter law on the same data and score both (largest-N holdout, rolling holdouts, AICc)."),
    base: Optional[str] = typer.Option(None, "--base", help="Law (JSON path or preset) whose bN, aD, bD, c stay fixed for --form nm."),
    space: Optional[Space] = typer.Option(None, "--space", help="Huber on log-loss residuals (default) or on raw-loss residuals."),
    delta: Optional[float] = typer.Option(None, "--delta", help="Huber delta (default 1e-3 in log space, 1e-2 in linear space)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the low-discrepancy start set and of the bootstrap."),
    bootstrap: int = typer.Option(0, "--bootstrap", help="Resample the runs B times: 95% intervals, and a law file that carries prediction intervals calibrated on rolling holdouts (0 = off)."),
    holdout: Optional[Holdout] = typer.Option(None, "--holdout", help="largest-n: also fit without the largest-N group and report the error predicting it."),
    tokens_per_unit: Optional[float] = typer.Option(None, "--tokens-per-unit", help="Tokens in one unit of D (65536 for a step of 128 x 512 tokens, 197 for a ViT-B/16 image); lets `optimal` take budgets in FLOPs. Default: 1 when --data names tokens, else unknown."),
    out: Optional[Path] = typer.Option(None, "--out", help="Write the fitted law as JSON (usable with --law)."),
    plot: Optional[Path] = typer.Option(None, "--plot", help="Write the fit-quality PNG here, and the loss-vs-N PNG beside it (<stem>-loss-vs-n.png)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of tables."),
) -> None:
    """Fit a scaling law to sweep results with a Huber objective and a global optimiser.

    Examples:
      sparsescale fit paper:t5 --bootstrap 200 --holdout largest-n --out t5-law.json
      sparsescale fit t5-data.csv --sparsity sparsity --params "24*12*768**2*scale*(1-sparsity)" --data steps --loss val-loss
    """
    from sparsescale.laws.uncertainty.assess import assess
    from sparsescale.laws.fit import resolve_form
    from sparsescale.laws.points import FitOptions, Points
    from sparsescale.laws.presets import load_law

    with _as_flags():
        spec = resolve_form(form)
    units = None
    if data_file.startswith("paper:"):
        sparsity, params, data, loss, space, delta, tokens_per_unit, units = _paper_defaults(
            data_file, sparsity, params, data, loss, space, delta, tokens_per_unit)
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
    options = FitOptions(form=form, space=space.value, delta=delta, seed=seed, base=base_law,
                         mean_sparsity_fraction=f_sched if spec.needs_schedule else None, units=units,
                         tokens_per_unit=tpu)
    _check_holdout(holdout, N, data_file)
    with _as_flags(data_file):
        result = assess(points, options, n_boot=bootstrap, holdout=holdout is not None,
                        progress=_bootstrap_progress(),
                        derived=_derived_quantities(form, S, N, D) if bootstrap else None)
    law = result.law
    law.name = data_file.split(":", 1)[1] if data_file.startswith("paper:") else Path(data_file).stem
    report: dict = result.to_dict()
    report.setdefault("warnings", []).extend(_data_warnings(form, S, N, D, y))
    if compare:
        report["comparison"] = _compare_report((S, N, D, y), space.value, delta, seed, f_sched)
    _record_fit_checks(result, report, holdout is not None)
    _write_fit_outputs(report, law, result.holdout, (S, N, D, y), form, plot, out, as_json)


def _check_fit_flags(data_file, sparsity, params, data, loss, spec, form, base, compare, bootstrap) -> None:
    """The flag combinations `fit` refuses, checked before any data is read."""
    for flag, value in (("--params", params), ("--data", data), ("--loss", loss)):
        if value is None:
            raise SparsescaleError(f"{flag} is required (a column or expression of {data_file})")
    if spec.uses_sparsity and sparsity is None:
        raise SparsescaleError(f"--sparsity is required for --form {form}")
    if spec.base_forms and base is None:
        raise SparsescaleError(f"--form {form} needs --base LAW.json (the dense base whose "
                               f"{', '.join(spec.fixed)} stay fixed)")
    if compare and sparsity is None:
        raise SparsescaleError("--compare needs --sparsity: both laws it compares depend on S")
    if bootstrap < 0:
        raise SparsescaleError(f"--bootstrap: must be >= 0, got {bootstrap}")


def _compare_report(points, space: str, delta, seed: int, f_sched) -> dict:
    """--compare: the sparse and average-parameter laws fitted and scored on the same points."""
    from sparsescale.laws.compare import compare_forms
    from sparsescale.laws.points import FitOptions, Points

    with _as_flags():
        return compare_forms(Points(*points), FitOptions(space=space, delta=delta, seed=seed,
                                                         mean_sparsity_fraction=f_sched)).to_dict()


def _record_fit_checks(result, report: dict, holdout_asked: bool) -> None:
    """Carry the bootstrap intervals and holdout errors into the law file; a
    requested holdout that could not run is an error."""
    law = result.law
    if result.bootstrap is not None:
        law.fit["intervals"] = report["intervals"]
    if result.holdout is not None:
        law.fit["holdout"] = {k: report["holdout"][k] for k in ("n_heldout", "held_out_n_nonzero", "mean_abs_rel_error", "max_abs_rel_error")}
    elif holdout_asked:
        raise SparsescaleError("--holdout: " + result.warnings[0].removeprefix("largest-N holdout skipped: "))


def _plot_paths(plot: Path) -> tuple[Path, Path]:
    """--plot and the loss-vs-N figure written beside it."""
    return plot, plot.with_name(plot.stem + "-loss-vs-n" + (plot.suffix or ".png"))


def _check_plot_format(plot: Path, flag: str = "--plot") -> None:
    """An extension matplotlib can write (it would fail only after the whole fit)."""
    if not plot.suffix:
        return  # written as PNG
    from matplotlib.backend_bases import FigureCanvasBase

    kinds = FigureCanvasBase.get_supported_filetypes()
    if plot.suffix.lower().lstrip(".") not in kinds:
        raise SparsescaleError(f"{flag} {plot}: unsupported image format {plot.suffix!r}; use one of "
                               f"{', '.join('.' + k for k in sorted(kinds))}")


def _check_fit_outputs(data_file: str, base: str | None, out: Path | None, plot: Path | None) -> None:
    """Before any work: the output rule (sparsescale.atomic) for --out (a law
    JSON) and --plot (two figures): not an input (data, --base law), not
    someone else's file, no two the same, every folder writable."""
    from sparsescale.atomic import Output, check_outputs, is_figure
    from sparsescale.laws.law import Law

    inputs = [Path(p) for p in (data_file, base) if p is not None and not p.startswith("paper:") and Path(p).exists()]
    outputs = [Output(out, "--out", Law.is_file)] if out is not None else []
    if plot is not None:
        _check_plot_format(plot)
        outputs += [Output(p, "--plot", is_figure) for p in _plot_paths(plot)]
    check_outputs(outputs, inputs)


def _check_holdout(holdout, N, data_file: str) -> None:
    """--holdout's own precondition, before any fitting."""
    from sparsescale.laws.uncertainty.bootstrap import group_by_size

    if holdout is not None and group_by_size(N).max() < 1:
        raise SparsescaleError(f"--holdout: all runs have the same N in {data_file}; need at least two sizes")


def _paper_defaults(data_file, sparsity, params, data, loss, space, delta, tokens_per_unit):
    """paper:t5 / paper:vit: the sweep's columns, the paper's fit settings and the
    cost of one unit of D, wherever a flag did not set them."""
    from sparsescale.laws.paper import paper_sweep

    sweep = paper_sweep(data_file)
    space = space or Space(sweep.space)
    delta = sweep.delta if delta is None and space.value == sweep.space else delta
    return (sparsity or sweep.sparsity, params or sweep.params, data or sweep.data, loss or sweep.loss, space,
            delta, sweep.tokens_per_unit if tokens_per_unit is None else tokens_per_unit, dict(sweep.units))


def _write_fit_outputs(report: dict, law, held, points, form: str, plot, out, as_json: bool) -> None:
    """Files only once everything has been computed: an error never leaves half of them."""
    if plot is not None:
        report["plots"] = _plot_fit(plot, law, held, *points, form)
    if out is not None:
        from sparsescale.laws.jsonsafe import finite_json

        _warn_non_finite(finite_json(law.to_dict())[1], str(out))
        law.save(out)
        report["law_file"] = str(out)
    if as_json:
        _print_json(report)
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
        raise SparsescaleError(f"--loss: no column {loss!r} in {src} (columns: {', '.join(map(str, df.columns))})")
    S = evaluate(df, sparsity, "--sparsity", src) if sparsity is not None else np.zeros(df.shape[0])
    N = evaluate(df, params, "--params", src)
    D = evaluate(df, data, "--data", src)
    y = evaluate(df, loss, "--loss", src)
    check_values(S, "--sparsity", src, f"column {sparsity!r}" if sparsity in df.columns else "sparsity", unit_interval=True)
    check_values(N, "--params", src, f"column {params!r}" if params in df.columns else "N", positive=True)
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
    return 1.0 if data_expr.strip().lower() in ("tokens", "n_tokens", "tokens_seen", "train_tokens") else None


def _warn_non_finite(paths: list[str], where: str) -> None:
    """One stderr line: which numbers were not finite and became null."""
    import sys

    if paths:
        shown = ", ".join(paths[:5]) + (f" and {len(paths) - 5} more" if len(paths) > 5 else "")
        print(f"warning: non-finite numbers written as null in {where}: {shown}", file=sys.stderr)


def _print_json(obj) -> None:
    """Print obj as valid JSON (NaN/inf as null, with a warning on stderr)."""
    from sparsescale.laws.jsonsafe import finite_json

    clean, bad = finite_json(obj)
    _warn_non_finite(bad, "the JSON output")
    print(json.dumps(clean, allow_nan=False))


def _print_fit(report: dict, law) -> None:
    from rich.table import Table

    con = _console()
    d = report["diagnostics"]
    con.print(f"[bold]{law.form} law[/bold] fitted on {report['n_points']} points: {law.to_dict()['formula']}")
    intervals = report.get("intervals", {}).get("intervals", {})
    t = Table("coefficient", "value", *(["95% interval"] if intervals else []))
    for k, v in law.coefficients.items():
        row = [k, _fmt(v)]
        if intervals:
            iv = intervals.get(k)
            row.append(f"[{_fmt(iv['low'])}, {_fmt(iv['high'])}]" if iv else "")
        t.add_row(*row)
    con.print(t)
    con.print(f"Huber objective ({d['space']} space, delta {d['delta']:g}): {report['objective']:.6g}")
    con.print(f"starts at the best optimum: {d['starts_at_best']}/{d['n_starts']}, distinct optima found: {d.get('n_distinct_optima')}, "
              f"gradient norm {d['grad_norm']:.2e}, at a bound: {', '.join(d['at_bound']) or 'none'}")
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
        con.print(f"holdout (largest N = {h['held_out_n_nonzero']:.4g}, {h['n_heldout']} runs): mean |error| "
                  f"{100 * h['mean_abs_rel_error']:.2f}%, max {100 * h['max_abs_rel_error']:.2f}%")
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
    return [f"--form {form}: every sparse row has S = {levels[0]:g}, so aS, bS and cS are not determined separately "
            "(only aS*(1-S)^bS + cS at that S is); fit the patterns with the same m together, or run "
            "`sparsescale report`, which refits each n:m family keeping A = aS + cS from the base"]


def _schedule_fraction(text: str) -> float:
    """--schedule cubic:0.25:0.75 | one-shot:0.5 | constant | dense -> mean sparsity / S."""
    from sparsescale.laws.schedule import schedule_mean_sparsity_fraction

    kind, *args = [p.strip() for p in text.split(":")]
    try:
        nums = [float(a) for a in args]
    except ValueError:
        raise SparsescaleError(f"--schedule: {text!r}: expected cubic:START:END, one-shot:AT, constant or dense") from None
    wanted = {"cubic": (0, 2), "one-shot": (0, 1), "constant": (0,), "dense": (0,)}.get(kind)
    if wanted is None or len(nums) not in wanted:
        raise SparsescaleError(f"--schedule: {text!r}: expected cubic:START:END, one-shot:AT, constant or dense")
    with _as_flags():
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
        t.add_row(s["form"], str(s["n_coefficients"]), f"{s['objective']:.3g}", f"{s['aicc']:.1f}",
                  pct(s["holdout_mean_abs_rel_error"]), pct(s["holdout_max_abs_rel_error"]),
                  pct(s["rolling_mean_abs_rel_error"]) + f" ({s['rolling_points']})")
    con.print(t)
    con.print(cmp["verdict"])


def _print_calibration(con, cal: dict) -> None:
    """The coverage of the law's prediction intervals on the rolling holdouts of the data."""
    folds = cal["folds"]
    con.print(f"rolling holdouts ({len(folds)}: " + "; ".join(f"{f['label']} mean |error| {100 * f['mean_abs_rel_error']:.2f}%"
                                                          for f in folds) + ")")
    con.print(f"  model error grows by {100 * cal['per_efold']:.2f}% per e-fold of extrapolation"
              + ("" if cal["min_train_groups"] >= 3 else " (from folds trained on only two sizes or lengths: under-determined)"))
    for name, table in (("coverage", cal["coverage"]), ("leave-one-fold-out", cal["coverage_leave_one_fold_out"])):
        if table:
            con.print(f"  {name}: " + ", ".join(f"{float(lv):.0%} intervals cover {v['covered']:.0%} of {v['n_points']} points "
                                                f"(median half-width {100 * v['median_rel_half_width']:.2f}%)"
                                                for lv, v in table.items()))


def _values(text: str, flag: str):
    """A comma list of quantities; an empty item ("0,,0.5", "1e7,") is refused, not dropped."""
    from sparsescale.units import parse_quantity

    parts = str(text).split(",")
    if len(parts) > 1 and any(not p.strip() for p in parts):
        raise SparsescaleError(f"{flag}: {text!r} has an empty item; give values separated by single commas")
    return [parse_quantity(part, flag) for part in parts]


NO_UNCERTAINTY = ("this law carries no uncertainty, so the numbers are bare: refit with "
                  "`sparsescale fit ... --bootstrap 200 --out LAW.json` for calibrated intervals")


def _check_level(level: float) -> None:
    if not 0.5 <= level < 1:
        raise SparsescaleError(f"--level: must be in [0.5, 1), got {level:g}")


@app.command()
def predict(
    law: str = typer.Option(..., "--law", help="vit-jft, t5-c4 or a LAW.json from `sparsescale fit --out`."),
    sparsity: str = typer.Option("0", "--sparsity", help="Sparsity S in [0, 1); a comma list predicts several."),
    params: str = typer.Option(..., "--params", help="Non-zero parameters N (e.g. 1e7, 200k); comma lists allowed."),
    data: str = typer.Option(..., "--data", help="Data D in the law's units (see its 'units'); comma lists allowed."),
    level: float = typer.Option(0.95, "--level", help="Level of the prediction intervals (when the law carries uncertainty)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Predict the loss of a model with N non-zeros at sparsity S trained on D,
    with a prediction interval when the law carries one.

    Example: sparsescale predict --law t5-c4 --sparsity 0.75 --params 2e7 --data 5e5
    """
    import numpy as np

    from sparsescale.laws.presets import load_law

    _check_level(level)
    the_law = load_law(law)
    S_, N_, D_ = _predict_inputs(sparsity, params, data)
    # far outside any fitted range a power law overflows: that is reported as a
    # non-finite prediction (null in JSON, with a warning), not as numpy noise
    with np.errstate(all="ignore"):
        L = the_law.predict(S_, N_, D_)
        unc = the_law.uncertainty
        if unc is not None:
            low, high = unc.loss_interval(the_law, S_, N_, D_, level)
            dist = unc.fit_range.distance(S_, N_, D_)
    rows = [{"sparsity": float(s), "n_nonzero": float(n), "data": float(d), "loss": float(l)} for s, n, d, l in zip(S_, N_, D_, L)]
    out: dict = {"law": the_law.name or law, "units": the_law.units, "predictions": rows}
    if unc is not None:
        for r, lo, hi, d in zip(rows, low, high, dist):
            r.update(low=float(lo), high=float(hi), extrapolation_efolds=float(d))
        out["level"] = level
        out["interval"] = "coefficient draws + model error growing with extrapolation distance (see the law's 'uncertainty')"
    else:
        out["note"] = NO_UNCERTAINTY
    if as_json:
        _print_json(out)
        return
    _print_predictions(rows, the_law, the_law.name or law, level, unc is not None)


def _predict_inputs(sparsity: str, params: str, data: str):
    """The --sparsity, --params and --data lists, range-checked and broadcast to one length."""
    import numpy as np

    S, N, D = _values(sparsity, "--sparsity"), _values(params, "--params"), _values(data, "--data")
    for s in S:
        if not 0 <= s < 1:
            raise SparsescaleError(f"--sparsity: {s:g} is outside [0, 1)")
    for flag, vals in (("--params", N), ("--data", D)):
        for v in vals:
            if v <= 0:
                raise SparsescaleError(f"{flag}: {v:g} must be > 0")
    try:
        return np.broadcast_arrays(np.array(S), np.array(N), np.array(D))
    except ValueError:
        raise SparsescaleError("--sparsity, --params and --data lists must have the same length (or one value)") from None


def _print_predictions(rows: list, the_law, title: str, level: float, has_unc: bool) -> None:
    """The table of `predict`, with interval columns when the law carries uncertainty."""
    from rich.table import Table

    extra = [f"{level:.0%} interval", "e-folds out"] if has_unc else []
    t = Table(title=f"law: {title}")
    for header in ("S", "N", "D", "predicted loss", *extra):
        t.add_column(header, no_wrap=True)
    for r in rows:
        cells = [f"{r['sparsity']:g}", f"{r['n_nonzero']:.4g}", f"{r['data']:.4g}", _loss(r['loss'])]
        if has_unc:
            cells += [f"{_loss(r['low'], 4)}-{_loss(r['high'], 4)}", f"{r['extrapolation_efolds']:.2f}"]
        t.add_row(*cells)
    con = _console()
    con.print(t)
    con.print(f"N: non-zero parameters; D in {the_law.units.get('D', 'data')}"
              + ("; e-folds out: how far beyond the fitted data (log-factors)" if has_unc else ""))
    if not has_unc:
        con.print(f"note: {NO_UNCERTAINTY}")


def _budget(law, n_nonzero: float, text: str) -> float:
    """--compute as FLOPs ("1e20") or as a multiple of the dense compute-optimal
    budget C* ("10x"), returned in the law's compute unit."""
    from sparsescale.laws.planning import dense_optimal_compute

    return parse_budget(law, text, lambda: float(dense_optimal_compute(law, n_nonzero)),
                        "the dense compute-optimal budget C*", "10x")


def parse_budget(law, text: str, base, base_name: str, example: str) -> float:
    """--compute in the law's compute unit: FLOPs ("1e20", converted by the
    law's tokens_per_unit), or "Kx", K times `base()` (already in that unit;
    only computed when asked for). `optimal` and `optimal --from-dense` differ
    only in what the multiple is of."""
    from sparsescale.laws.planning import law_compute
    from sparsescale.units import parse_quantity

    t = str(text).strip()
    if t.lower().endswith("x"):
        mult = parse_quantity(t[:-1], "--compute")
        if mult <= 0:
            raise SparsescaleError(f"--compute: the multiple of {base_name} must be > 0, got {text!r}")
        return mult * base()
    flops = parse_quantity(t, "--compute")
    if flops <= 0:
        raise SparsescaleError(f"--compute: must be a positive number of FLOPs, got {text!r}")
    try:
        return law_compute(law, flops)
    except SparsescaleError:
        raise SparsescaleError(f"--compute: law {law.name} does not say how many tokens one unit of D "
                               f"({law.units.get('D', 'data')}) is (tokens_per_unit), so FLOPs cannot be converted; "
                               f"give the budget as a multiple of {base_name}, e.g. --compute {example}") from None


def _cost_model(flops: Flops, speedups: Optional[Path], start: float, end: float):
    """"sparse"/"dense", or the measured cost model read from --speedups."""
    if flops != Flops.measured:
        if speedups is not None:
            raise SparsescaleError("--speedups is for --flops measured")
        return flops.value
    if speedups is None:
        raise SparsescaleError("--flops measured needs --speedups FILE (written by `sparsescale bench-kernels`)")
    from sparsescale.laws.costs import load_speedups

    return load_speedups(speedups).cost_model("unstructured", start, end)


@app.command()
def optimal(
    law: str = typer.Option(..., "--law", help="vit-jft, t5-c4 or a LAW.json (a sparse-form law)."),
    params: Optional[str] = typer.Option(None, "--params", help="Non-zero parameters N of the model you will train (e.g. 1e7)."),
    compute: Optional[str] = typer.Option(None, "--compute", help="Training budget: FLOPs (e.g. 1e19; the law must carry tokens_per_unit), or a multiple of the dense compute-optimal budget C* = 6 N D* (e.g. 10x)."),
    flops: Flops = typer.Option(Flops.sparse, "--flops", help="sparse: training exploits sparsity (cubic-schedule mean density); dense: it does not; measured: step times from --speedups."),
    speedups: Optional[Path] = typer.Option(None, "--speedups", help="Speedups JSON from `sparsescale bench-kernels` (for --flops measured; its unstructured entries)."),
    start: float = typer.Option(0.25, "--start", help="Pruning starts at this fraction of training (affects sparse FLOPs)."),
    end: float = typer.Option(0.75, "--end", help="Pruning ends at this fraction of training."),
    contours: bool = typer.Option(False, "--contours", help="Draw the S_opt map over (N, C) with the Chinchilla line (needs --plot)."),
    plot: Optional[Path] = typer.Option(None, "--plot", help="PNG path for --contours."),
    level: float = typer.Option(0.95, "--level", help="Level of the intervals (when the law carries uncertainty)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    from_dense: Optional[str] = typer.Option(None, "--from-dense", help="N,D0: prune a dense model of N parameters trained on D0 tokens (with a pruned-law.json from `report`); --compute is then the continuation's FLOPs or a multiple of 6 N D0 (e.g. 1x)."),
    patterns: Optional[Path] = typer.Option(None, "--patterns", help="Compare dense, n:m patterns and unstructured at N and C: a law JSON with pattern laws (the report's law.json; --law is their base)."),
    speedup: Optional[list[str]] = typer.Option(None, "--speedup", help="With --patterns: PATTERN=FACTOR, a step-time speedup over dense (e.g. 2:4=1.3; repeatable) for the equal-time accounting."),
) -> None:
    """The optimal sparsity for N non-zeros and a compute budget, the data it
    buys, the loss against the dense baseline, and the equivalent dense size.

    Example: sparsescale optimal --law vit-jft --params 1e7 --compute 1e18
    With --patterns: sparsescale optimal --law report/law.json --patterns report/law.json --params 1e5 --compute 10x --speedup 2:4=1.3
    """
    from sparsescale.cli.patterns import check_pattern_flags, optimal_patterns
    from sparsescale.laws.presets import load_law
    from sparsescale.laws.planning import optimal_data_ratio

    _check_level(level)
    if not 0 <= start < end <= 1:   # both flags named here (the schedule's own check names neither)
        raise SparsescaleError(f"--start {start:g}, --end {end:g}: need 0 <= --start < --end <= 1 "
                               "(fractions of training)")
    if from_dense is not None:   # its own question: cli/from_dense.py
        from sparsescale.cli.from_dense import run_from_dense

        others = {"--params": params, "--contours": contours, "--plot": plot, "--speedups": speedups,
                  "--patterns": patterns, "--speedup": speedup}
        return run_from_dense(law, from_dense, compute, flops.value, start, end, level, as_json, others)
    check_pattern_flags(patterns, speedup or [], params, compute, contours, speedups, flops.value)
    if patterns is not None:
        return optimal_patterns(law, patterns, params, compute, speedup or [], start, end, level, as_json)
    the_law = load_law(law)
    _check_optimal_flags(law, params, compute, contours, plot)
    cost = _cost_model(flops, speedups, start, end)
    out: dict = {"law": the_law.name or law, "units": the_law.units, "tokens_per_unit": the_law.tokens_per_unit,
                 "flops": flops.value}
    point = None
    if params is not None and compute is not None:
        point = _optimal_point(out, the_law, params, compute, cost, start, end, level)
    elif params is not None or compute is not None:
        raise SparsescaleError("--params and --compute go together")
    with _as_flags():
        out["optimal_data_ratio"] = {f"{s:g}": float(optimal_data_ratio(the_law, s, cost, start, end)) for s in (0.5, 0.75, 0.875)}
    if contours:
        from sparsescale.report.figures import plot_sopt_contours

        n_range = None
        if point is not None:
            n_range = (point.n_nonzero / 100, point.n_nonzero * 100)
        plot_sopt_contours(the_law, plot, flops=cost, n_range=n_range, start=start, end=end)
        out["plot"] = str(plot)
    if as_json:
        _print_json(out)
        return
    _print_optimal(out, point, the_law, contours, plot)


def _check_optimal_flags(law: str, params, compute, contours: bool, plot) -> None:
    """The flag combinations `optimal` refuses, and a --plot path it could not write."""
    if contours and plot is None:
        raise SparsescaleError("--contours needs --plot PATH.png")
    if plot is not None and not contours:
        raise SparsescaleError("--plot is for --contours; add --contours")
    if plot is not None:
        from sparsescale.atomic import check_output, is_figure

        _check_plot_format(plot)
        check_output(plot, [Path(law)] if Path(law).exists() else [], "--plot", ours=is_figure)
    if not contours and (params is None or compute is None):
        raise SparsescaleError("give --params N and --compute C (or --contours --plot PATH)")


def _optimal_point(out: dict, the_law, params: str, compute: str, cost, start: float, end: float, level: float):
    """Plan the budget for --params at --compute; adds the plan and its intervals to `out`."""
    from sparsescale.laws.planning import optimal_intervals
    from sparsescale.laws.planning import optimal_sparsity
    from sparsescale.units import parse_quantity

    n = parse_quantity(params, "--params")
    if n <= 0:
        raise SparsescaleError(f"--params: must be > 0, got {params!r}")
    budget = _budget(the_law, n, compute)
    # Sparse or dense, a run of N non-zeros costs at least 6 N per unit of data
    # (C = 6 N/(1-S) x mean density x D, and the mean density is >= 1-S).
    if not budget / (6.0 * n) >= 1.0:
        raise SparsescaleError(f"--compute {compute}: buys at most {budget / (6.0 * n):.3g} "
                               f"{the_law.units.get('D', 'units of data')} for N = {n:.4g} (C / 6N), less than one unit")
    with _as_flags():
        point = optimal_sparsity(the_law, n, budget, flops=cost, start=start, end=end)
    out.update(point.to_dict())
    out["loss_gain_vs_dense"] = point.dense_loss - point.loss
    with _as_flags():
        ivs = optimal_intervals(the_law, point, level, cost, start, end)
    if ivs is None:
        out["note"] = NO_UNCERTAINTY
    else:
        out["level"] = level
        out["intervals"] = {k: {"low": lo, "high": hi} for k, (lo, hi) in ivs.items()}
        out["interval_note"] = ("loss, dense_loss: coefficient draws + model error; sparsity, data, "
                                "equivalent_dense_size: the budget re-planned under every coefficient draw")
    return point


def _print_optimal(out: dict, point, the_law, contours: bool, plot) -> None:
    con = _console()
    if point is not None:
        d_unit = the_law.units.get("D", "data")
        ivs = out.get("intervals", {})

        def iv(name: str, fmt: str) -> str:
            if name not in ivs:
                return ""
            return f"  [{format(ivs[name]['low'], fmt)}, {format(ivs[name]['high'], fmt)}]"

        flops_text = f"{point.compute_flops:.4g} FLOPs" if point.compute_flops is not None else "FLOPs unknown (the law lacks tokens_per_unit)"
        con.print(f"law {out['law']}, N = {point.n_nonzero:.4g} non-zeros, {out['flops']} accounting"
                  + (f"; {out['level']:.0%} intervals in brackets" if ivs else ""))
        con.print(f"  budget                  = {flops_text} = 6 N x {point.compute / (6 * point.n_nonzero):.4g} {d_unit} "
                  f"= {point.compute_vs_dense_optimal:.3g} x C* (dense compute-optimal)")
        con.print(f"  optimal sparsity S_opt  = [bold]{point.sparsity:.4f}[/bold]{iv('sparsity', '.4f')}")
        con.print(f"  data at S_opt           = {point.data:.4g} {d_unit}{iv('data', '.4g')}")
        con.print(f"  loss at S_opt           = {_loss(point.loss)}{iv('loss', '.5f')}")
        con.print(f"  dense baseline (S = 0)  = {_loss(point.dense_loss)}{iv('dense_loss', '.5f')} (D = {point.dense_data:.4g})")
        con.print(f"  equivalent dense size   = {point.equivalent_dense_size:.4g} parameters{iv('equivalent_dense_size', '.4g')} "
                  f"({point.equivalent_dense_size / point.n_nonzero:.2f}x N)")
        con.print(f"  Chinchilla-optimal D for a dense N = {point.chinchilla_data:.4g} {d_unit}")
        if ivs:
            con.print(f"  ({out['interval_note']})")
        else:
            con.print(f"note: {NO_UNCERTAINTY}")
    ratios = ", ".join(f"{s} at {r:.2f}x" for s, r in out["optimal_data_ratio"].items())
    con.print(f"sparsity S becomes optimal at D_S/D* = {ratios}")
    if contours:
        con.print(f"wrote {plot}")
