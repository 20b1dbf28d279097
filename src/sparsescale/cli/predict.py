"""`sparsescale predict`: the loss a law predicts at (S, N, D), with a
prediction interval when the law carries one (no torch)."""

from __future__ import annotations

import typer

from sparsescale.cli.app import app
from sparsescale.cli.common import NO_UNCERTAINTY, check_level, console, fmt_loss, print_json
from sparsescale.errors import SparsescaleError


@app.command()
def predict(
    law: str = typer.Option(
        ..., "--law", help="vit-jft, t5-c4 or a LAW.json from `sparsescale fit --out`."
    ),
    sparsity: str = typer.Option(
        "0", "--sparsity", help="Sparsity S in [0, 1); a comma list predicts several."
    ),
    params: str = typer.Option(
        ..., "--params", help="Non-zero parameters N (e.g. 1e7, 200k); comma lists allowed."
    ),
    data: str = typer.Option(
        ..., "--data", help="Data D in the law's units (see its 'units'); comma lists allowed."
    ),
    level: float = typer.Option(
        0.95,
        "--level",
        help="Level of the prediction intervals (when the law carries uncertainty).",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Predict the loss of a model with N non-zeros at sparsity S trained on D,
    with a prediction interval when the law carries one.

    Example: sparsescale predict --law t5-c4 --sparsity 0.75 --params 2e7 --data 5e5
    """
    import numpy as np

    from sparsescale.laws.presets import load_law

    check_level(level)
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
    rows = [
        {"sparsity": float(s), "n_nonzero": float(n), "data": float(d), "loss": float(l)}
        for s, n, d, l in zip(S_, N_, D_, L)
    ]
    out: dict = {"law": the_law.name or law, "units": the_law.units, "predictions": rows}
    if unc is not None:
        for r, lo, hi, d in zip(rows, low, high, dist):
            r.update(low=float(lo), high=float(hi), extrapolation_efolds=float(d))
        out["level"] = level
        out["interval"] = (
            "coefficient draws + model error growing with extrapolation distance (see the law's "
            "'uncertainty')"
        )
    else:
        out["note"] = NO_UNCERTAINTY
    if as_json:
        print_json(out)
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
        raise SparsescaleError(
            "--sparsity, --params and --data lists must have the same length (or one value)"
        ) from None


def _print_predictions(rows: list, the_law, title: str, level: float, has_unc: bool) -> None:
    """The table of `predict`, with interval columns when the law carries uncertainty."""
    from rich.table import Table

    extra = [f"{level:.0%} interval", "e-folds out"] if has_unc else []
    t = Table(title=f"law: {title}")
    for header in ("S", "N", "D", "predicted loss", *extra):
        t.add_column(header, no_wrap=True)
    for r in rows:
        cells = [
            f"{r['sparsity']:g}",
            f"{r['n_nonzero']:.4g}",
            f"{r['data']:.4g}",
            fmt_loss(r["loss"]),
        ]
        if has_unc:
            cells += [
                f"{fmt_loss(r['low'], 4)}-{fmt_loss(r['high'], 4)}",
                f"{r['extrapolation_efolds']:.2f}",
            ]
        t.add_row(*cells)
    con = console()
    con.print(t)
    con.print(
        f"N: non-zero parameters; D in {the_law.units.get('D', 'data')}"
        + ("; e-folds out: how far beyond the fitted data (log-factors)" if has_unc else "")
    )
    if not has_unc:
        con.print(f"note: {NO_UNCERTAINTY}")


def _values(text: str, flag: str):
    """A comma list of quantities; an empty item ("0,,0.5", "1e7,") is refused, not dropped."""
    from sparsescale.units import parse_quantity

    parts = str(text).split(",")
    if len(parts) > 1 and any(not p.strip() for p in parts):
        raise SparsescaleError(
            f"{flag}: {text!r} has an empty item; give values separated by single commas"
        )
    return [parse_quantity(part, flag) for part in parts]
