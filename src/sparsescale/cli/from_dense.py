"""`sparsescale optimal --from-dense N,D0 --compute C`: "I have a dense model of
N parameters trained on D0 tokens; to what sparsity should I prune it, and
for how many tokens should I continue?", answered from a pruned-from-dense
law (the pruned-law.json `sparsescale report` writes for a pretrained sweep).
`optimal` dispatches here before anything else (no torch)."""

from __future__ import annotations

from sparsescale.errors import SparsescaleError

# Library argument names -> this command's flags.
_FLAGS = {"n_params": "--from-dense", "dense_data": "--from-dense", "compute": "--compute", "flops": "--flops",
          "start": "--start", "end": "--end"}


def parse_from_dense(text: str) -> tuple[float, float]:
    """"N,D0" -> (N, D0), both positive ("1e8,2e9", "200k,1.6M")."""
    from sparsescale.units import parse_quantity

    parts = [p.strip() for p in str(text).split(",")]
    if len(parts) != 2 or not all(parts):
        raise SparsescaleError(f"--from-dense: expected N,D0 (dense parameters, tokens trained), e.g. 1e8,2e9; "
                               f"got {text!r}")
    values = []
    for name, part in zip(("N", "D0"), parts):
        v = parse_quantity(part, f"--from-dense {name}")
        if v <= 0:
            raise SparsescaleError(f"--from-dense: {name} must be a positive number, got {part!r}")
        values.append(float(v))
    return values[0], values[1]


def run_from_dense(law_spec: str, from_dense: str, compute: str | None, flops: str, start: float, end: float,
                   level: float, as_json: bool, others: dict[str, object]) -> None:
    """The whole --from-dense answer. `others`: the flags of plain `optimal`
    given too ({flag: value}); they do not combine with --from-dense."""
    from sparsescale.cli.laws import parse_budget
    from sparsescale.laws.presets import load_law
    from sparsescale.laws.from_dense import from_dense_info, plan_from_dense

    given = [flag for flag, value in others.items() if value]
    if given:
        raise SparsescaleError(f"{given[0]}: does not combine with --from-dense (the plan prunes the dense model)")
    if flops not in ("sparse", "dense"):
        raise SparsescaleError(f"--flops {flops}: --from-dense takes sparse or dense")
    n, d0 = parse_from_dense(from_dense)
    if compute is None:
        raise SparsescaleError("--compute: required with --from-dense (FLOPs for the continuation, or e.g. 1x the "
                               "pretraining compute)")
    law = load_law(law_spec)
    try:
        info = from_dense_info(law)
    except SparsescaleError as exc:
        raise SparsescaleError(f"--law {law_spec}: {exc}") from None
    if info is None:
        raise SparsescaleError(f"--law {law_spec}: holds no pruned-from-dense law (fit.from_dense); give the "
                               "pruned-law.json that `sparsescale report` writes for a pretrained sweep")
    c = parse_budget(law, compute, lambda: 6.0 * n * d0, "the pretraining compute 6 N D0", "0.5x")
    try:
        plan = plan_from_dense(law, n, d0, c, flops=flops, start=start, end=end, level=level)
    except SparsescaleError as exc:
        head, sep, rest = str(exc).partition(":")
        raise SparsescaleError(_FLAGS.get(head.strip(), head) + sep + rest) from None
    out = plan.to_dict() | {"law": law.name or law_spec, "level": level,
                            "compute_flops": None if law.tokens_per_unit is None else c * law.tokens_per_unit}
    if as_json:
        from sparsescale.cli.laws import _print_json

        _print_json(out)
        return
    _print(plan, out, law)


def _print(plan, out: dict, law) -> None:
    from sparsescale.cli.laws import _console

    con = _console()
    unit = law.units.get("D", "data")
    ivs = plan.intervals or {}

    def iv(name: str, fmt: str) -> str:
        return f"  [{format(ivs[name][0], fmt)}, {format(ivs[name][1], fmt)}]" if name in ivs else ""

    con.print(f"law {out['law']}: a dense model of N = {plan.n_params:.4g} parameters trained on D0 = "
              f"{plan.dense_data:.4g} {unit}, {plan.compute:.4g} (law units: FLOPs for tokens) to continue ({plan.flops} FLOPs)"
              + (f"; {out['level']:.0%} intervals in brackets" if ivs else ""), highlight=False)
    con.print(f"  prune to sparsity S     = [bold]{plan.sparsity:.4f}[/bold]{iv('sparsity', '.4f')} "
              f"({plan.n_nonzero:.4g} non-zeros)")
    con.print(f"  continue for            = {plan.continue_data:.4g} {unit}{iv('continue_data', '.4g')}")
    con.print(f"  predicted loss          = {plan.loss:.5f}{iv('loss', '.5f')}")
    con.print(f"  or continue dense       = {plan.dense_continue_data:.4g} {unit}, loss {plan.dense_loss:.5f}"
              f"{iv('dense_loss', '.5f')}")
    lo, hi = plan.fitted_dense_fraction
    con.print(f"  dense fraction D0/D     = {plan.dense_fraction:.3f} (the law was fitted on {lo:.3f}-{hi:.3f})")
    if plan.extrapolated:
        con.print("warning: this dense fraction is outside the fitted ones: the prediction is an extrapolation",
                  style="yellow")
    if not ivs:
        con.print("note: the law carries no uncertainty (fit it with a bootstrap for intervals)")
