"""Which quantities a sweep pins down: the rule every section that fits a law
applies to its bootstrap intervals, and the bootstrap-derived equivalent dense
sizes the law fit and the from-dense fit both report."""

from __future__ import annotations

from typing import Any


def equivalent_dense_factors(sparsities) -> dict[str, Any]:
    """Bootstrap-derived quantities: for each S > 0 of the sweep, how much
    larger a dense model has the same N-term, f(S)^(-1/bN). They stay tight
    on sweeps that leave bN and bS themselves undetermined (the two move
    together along a valley of equal fit; their ratio does not)."""
    return {
        f"equivalent dense size at S={s:g}": (
            lambda lw, s=s: float(lw.sparsity_factor(s) ** (-1.0 / lw["bN"]))
        )
        for s in sorted({float(v) for v in sparsities})
        if s > 0
    }


def determination(
    intervals: dict[str, tuple[float, float, float]], at_bound
) -> tuple[list[str], list[str]]:
    """(determined, undetermined) names: a quantity is determined when its 95%
    interval is at most as wide as its median ((high - low) / median <= 1)
    and, for a coefficient, the fit did not stop at a bound."""
    good, bad = [], []
    for name, (lo, med, hi) in intervals.items():
        ok = name not in (at_bound or []) and med > 0 and (hi - lo) / med <= 1.0
        (good if ok else bad).append(name)
    return good, bad
