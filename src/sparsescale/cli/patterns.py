"""`sparsescale optimal --patterns`: dense, n:m or unstructured for N non-zeros
and a budget, from a base law and the pattern laws fitted on it (see
laws.pattern_choice). `optimal` dispatches here when --patterns is given."""

from __future__ import annotations

from pathlib import Path

from sparsescale.errors import SparsescaleError
from sparsescale.userfile import read_json


def _read_json(path: Path, flag: str):
    """The file's JSON; its one-line error led by the flag that named it."""
    try:
        return read_json(path)
    except SparsescaleError as exc:
        raise SparsescaleError(f"{flag}: {exc}") from None


def check_pattern_flags(patterns: Path | None, speedup: list[str], params, compute, contours: bool,
                        speedups_file: Path | None, flops: str) -> None:
    """The flag combinations the pattern choice refuses."""
    if patterns is None:
        if speedup:
            raise SparsescaleError("--speedup is for the pattern choice: add --patterns LAW.json")
        return
    if contours:
        raise SparsescaleError("--contours draws the unstructured S_opt map; it does not combine with --patterns")
    if speedups_file is not None or flops != "sparse":
        raise SparsescaleError("--patterns reports both equal-FLOPs and equal-time accountings; give per-pattern "
                               "speedups with --speedup PATTERN=FACTOR instead of --flops/--speedups")
    if params is None or compute is None:
        raise SparsescaleError("--patterns needs --params N and --compute C")


def optimal_patterns(law: str, patterns: Path, params: str, compute: str, speedup: list[str], start: float,
                     end: float, level: float, as_json: bool) -> None:
    """Load the laws, compare the choices, print them (or their JSON)."""
    from sparsescale.cli.laws import _as_flags, _budget, _print_json
    from sparsescale.laws.presets import load_law
    from sparsescale.laws.pattern_choice import compare_choices, parse_speedups
    from sparsescale.laws.nm_patterns import check_base, load_pattern_laws
    from sparsescale.units import parse_quantity

    base = load_law(law)
    try:
        check_base(base)
    except SparsescaleError as exc:
        raise SparsescaleError(f"--law {law}: {str(exc).removeprefix('base: ')}") from None
    pattern_laws = load_pattern_laws(_read_json(patterns, "--patterns"), base, f"--patterns {patterns}")
    speeds = parse_speedups(speedup, "--speedup")
    n = parse_quantity(params, "--params")
    if n <= 0:
        raise SparsescaleError(f"--params: must be > 0, got {params!r}")
    with _as_flags():
        budget = _budget(base, n, compute)
        cmp = compare_choices(base, pattern_laws, n, budget, speeds, start, end, level)
    out = {"law": base.name or law, "patterns_file": str(patterns), "level": level, **cmp.to_dict(),
           "accountings": {"flops": "equal FLOPs: C = 6 N D c_mul(S), sparsity exploited (sparse FLOPs) by every choice",
                           "time": "equal wall time: the budget in dense-step time; a choice without --speedup "
                                   "runs at dense step time (c_mul = 1/(1-S)), n:m kernels only after the ramp",
                           "vs": "each choice minus its reference (a pattern: unstructured at its S; unstructured: "
                                 "dense); the interval over paired coefficient draws (no model error)"}}
    if as_json:
        _print_json(out)
        return
    _print_choices(out, base)


def _signed(vs: dict) -> str:
    iv = vs.get("interval")
    return f"{vs['difference']:+.4f}" + (f" [{iv[0]:+.4f}, {iv[1]:+.4f}]" if iv else "")


def _print_choices(out: dict, base) -> None:
    from rich.console import Console
    from rich.table import Table

    con = Console()
    d_unit = base.units.get("D", "data")
    table = Table(title=f"N = {out['n_nonzero']:.4g} non-zeros, budget 6 N x {out['compute'] / (6 * out['n_nonzero']):.4g} "
                        f"{d_unit}; loss with {out['level']:.0%} interval")
    for col in ("choice", "S", "speedup", "equal FLOPs: D", "loss", "equal time: D", "loss "):
        table.add_column(col, justify="left" if col == "choice" else "right")

    def loss(e):
        iv = e.get("interval")
        return f"{e['loss']:.4f}" + (f" [{iv[0]:.4f}, {iv[1]:.4f}]" if iv else "")
    for r in out["choices"]:
        table.add_row(r["choice"], f"{r['sparsity']:g}", "-" if r["speedup"] is None else f"{r['speedup']:g}x",
                      f"{r['flops']['data']:.4g}", loss(r["flops"]), f"{r['time']['data']:.4g}", loss(r["time"]))
    con.print(table)
    for r in out["choices"]:
        if "vs" in r["flops"]:
            con.print(f"  {r['choice']} minus {r['flops']['vs']['reference']}: "
                      + "; ".join(f"{_signed(r[acc]['vs'])} at equal {word}" for acc, word in (("flops", "FLOPs"), ("time", "time"))),
                      highlight=False)
    con.print(f"best at equal FLOPs: [bold]{out['best']['flops']}[/bold]; best at equal wall time: "
              f"[bold]{out['best']['time']}[/bold]")
    for k, v in out["accountings"].items():
        con.print(f"  {k}: {v}", highlight=False)
