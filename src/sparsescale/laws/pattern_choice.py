"""Dense, n:m or unstructured? The loss of each choice at N non-zeros and a
compute budget, under two accountings of what the budget buys.

- "flops" (equal FLOPs): training pays 6 N D c_mul(S) with sparsity exploited
  (the paper's sparse FLOPs, c_mul = (1 - f S) / (1 - S) under the cubic ramp),
  the same idealisation for unstructured and n:m masks.
- "time" (equal wall time): the budget is dense-step time. A choice runs at
  dense step time (c_mul = 1 / (1 - S)) unless the user gives its speedup
  (time of a dense step / time of its sparse step), priced by laws.costs: an
  n:m kernel only once the mask is exactly n:m, i.e. after the ramp.

At equal N, every choice is a model with N non-zeros: dense has N parameters,
a choice at sparsity S is N / (1 - S) wide, and the budget decides its D.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sparsescale.errors import SparsescaleError
from sparsescale.laws.costs import UNSTRUCTURED, Speedups, canonical_pattern
from sparsescale.laws.law import Law
from sparsescale.laws.nm_patterns import pattern_sparsity

ACCOUNTINGS = ("flops", "time")


@dataclass
class Choice:
    """One option: a name, its sparsity and pattern, and the law that predicts it."""

    name: str
    sparsity: float
    pattern: str  # "dense", "unstructured" or "n:m"
    law: Law


def choices(base_law: Law, pattern_laws: dict[str, Law]) -> list[Choice]:
    """Dense, every pattern, and unstructured pruning at each pattern's sparsity
    (the comparison that isolates the structure's cost)."""
    pats = sorted(pattern_laws, key=lambda p: (pattern_sparsity(p), p))
    levels = sorted({pattern_sparsity(p) for p in pats})
    out = [Choice("dense", 0.0, "dense", base_law)]
    out += [Choice(f"unstructured {s:.0%}", s, UNSTRUCTURED, base_law) for s in levels]
    out += [Choice(p, pattern_sparsity(p), p, pattern_laws[p]) for p in pats]
    return out


def parse_speedups(items: list[str], where: str = "speedup") -> dict[str, float]:
    """["2:4=1.3", "unstructured=1.1"] -> {"2:4": 1.3, ...}: step-time speedups
    over dense, each > 0."""
    out: dict[str, float] = {}
    for item in items:
        key, sep, value = str(item).partition("=")
        if not sep:
            raise SparsescaleError(f"{where}: expected PATTERN=FACTOR (e.g. 2:4=1.3), got {item!r}")
        # keyed by the canonical spelling, the one Choice.pattern uses, so that
        # compare_choices finds it and two spellings of one pattern clash below
        pattern = canonical_pattern(key.strip(), where)
        try:
            factor = float(value)
        except ValueError:
            raise SparsescaleError(f"{where}: {item!r}: the factor must be a number") from None
        if not (math.isfinite(factor) and factor > 0):
            raise SparsescaleError(f"{where}: {item!r}: the factor must be a positive number")
        if pattern in out:
            raise SparsescaleError(f"{where}: {pattern} given twice")
        out[pattern] = factor
    return out


# What one unit of N D costs per choice. Dense: c_mul = 1 (N parameters, all
# multiplied). Equal FLOPs: the sparse accounting (1 - f S) / (1 - S) for any
# mask, the paper's idealisation that zeros cost nothing. Equal time: a dense
# step is the unit, and a choice without a measured speedup costs what its
# N / (1 - S) dense weights cost, 1 / (1 - S); with one, laws.costs averages
# the relative step time over the schedule.
def _c_mul(
    choice: Choice, accounting: str, speedups: dict[str, float], start: float, end: float
) -> float:
    from sparsescale.laws.planning import c_mul

    if choice.pattern == "dense":
        return 1.0
    # equal FLOPs: zeros cost nothing for every mask alike, so the structure's
    # price shows up only in the loss, never in the data the budget buys
    if accounting == "flops":
        return float(c_mul(choice.sparsity, "sparse", start, end))
    factor = speedups.get(choice.pattern)
    if factor is None:
        return float(c_mul(choice.sparsity, "dense", start, end))
    # one measured point makes a one-row table: r(s) runs from r(0) = 1 to
    # 1 / factor at S, and laws.costs averages it over the schedule (for an n:m
    # pattern only after the ramp, when the mask is exactly n:m)
    table = Speedups({choice.pattern: {choice.sparsity: factor}}, source="speedup")
    return float(table.cost_model(choice.pattern, start, end).c_mul(choice.sparsity))


def reference_of(choice: Choice, opts: list[Choice]) -> Choice | None:
    """What a choice is judged against: a pattern against unstructured pruning at
    its S (the structure's cost), unstructured against dense (sparsity's gain)."""
    if choice.pattern == "dense":
        return None
    want = (UNSTRUCTURED, choice.sparsity) if choice.pattern != UNSTRUCTURED else ("dense", 0.0)
    return next(c for c in opts if (c.pattern, c.sparsity) == want)


# Why pairing: a pattern law's draw b was refitted on the base law's draw b,
# so both predictions share that draw's bN, aD, bD and c. The difference of
# the paired predictions cancels that shared uncertainty; differencing
# unpaired draws would add it twice.
def paired_difference(
    choice: Choice, ref: Choice, n: float, d_choice: float, d_ref: float, level: float
) -> tuple[float, float] | None:
    """Percentile interval of loss(choice) - loss(ref) over paired coefficient
    draws, or None when the two laws' draws are not paired. Pairing cancels the
    base's uncertainty that both share (the draws of a pattern law were refitted
    on the base draws its fit records), so the difference is far tighter than
    the two loss intervals suggest; coefficient uncertainty only."""
    from sparsescale.laws.uncertainty.intervals import z_score

    uc, ur = choice.law.uncertainty, ref.law.uncertainty
    if uc is None or ur is None:
        return None
    # which draw of the reference each of the choice's draws pairs with: draw i
    # with itself when both use one law (unstructured against dense: the base law
    # for both), otherwise the base draw each of the pattern's refits recorded
    idx = (
        np.arange(uc.draws.shape[0])
        if choice.law is ref.law
        else (choice.law.fit or {}).get("base_draw_index")
    )
    idx = None if idx is None else np.asarray(idx)
    if (
        idx is None
        or idx.shape != (uc.draws.shape[0],)
        or idx.dtype.kind not in "iu"
        or idx.min() < 0
        or idx.max() >= ur.draws.shape[0]
    ):
        return None  # not recorded, or not the draws of this base: no pairing
    # z_score only validates the level: the interval below is a percentile one
    z_score(level)
    mine = np.array(
        [float(d.predict(choice.sparsity, n, d_choice)) for d in uc.draw_laws(choice.law)]
    )
    theirs = np.array([float(d.predict(ref.sparsity, n, d_ref)) for d in ur.draw_laws(ref.law)])
    diff = mine - theirs[np.asarray(idx, dtype=int)]
    lo, hi = np.percentile(diff[np.isfinite(diff)], [(1 - level) / 2 * 100, (1 + level) / 2 * 100])
    return float(lo), float(hi)


# Equal compute at equal N: D = C / (6 N c_mul(S)) per choice, so a choice
# whose steps are cheaper trains on more data within the same budget.
def _priced(
    c: Choice,
    acc: str,
    speedups,
    n_nonzero: float,
    compute: float,
    start: float,
    end: float,
    level: float,
) -> dict[str, Any]:
    """The data the budget buys for one choice under one accounting, its loss and interval."""
    cm = _c_mul(c, acc, speedups, start, end)
    data = compute / (6.0 * n_nonzero * cm)
    entry: dict[str, Any] = {
        "c_mul": cm,
        "data": data,
        "loss": float(np.asarray(c.law.predict(c.sparsity, n_nonzero, data))),
    }
    if c.law.uncertainty is not None:
        lo, hi = c.law.uncertainty.loss_interval(c.law, c.sparsity, n_nonzero, data, level)
        entry["interval"] = [float(lo), float(hi)]
    return entry


@dataclass
class Comparison:
    n_nonzero: float
    compute: float  # in the law's compute unit (6 N D with D in its unit)
    rows: list[dict[str, Any]] = field(default_factory=list)
    best: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "n_nonzero": self.n_nonzero,
            "compute": self.compute,
            "choices": self.rows,
            "best": self.best,
        }


def compare_choices(
    base_law: Law,
    pattern_laws: dict[str, Law],
    n_nonzero: float,
    compute: float,
    speedups: dict[str, float] | None = None,
    start: float = 0.25,
    end: float = 0.75,
    level: float = 0.95,
) -> Comparison:
    """Every choice's data and predicted loss (with an interval when its law
    carries uncertainty) under both accountings, and the best under each."""
    speedups = dict(speedups or {})
    opts = choices(base_law, pattern_laws)
    # a speedup for a pattern with no law would silently price nothing: refused;
    # so is one for dense, the unit of step time (its c_mul is 1 whatever it says)
    known = {c.pattern for c in opts} - {"dense"}
    for p in speedups:
        if p not in known:
            raise SparsescaleError(
                f"speedup: {p} is not among the choices ({', '.join(sorted(known))})"
            )
    out = Comparison(float(n_nonzero), float(compute))
    for c in opts:
        row: dict[str, Any] = {
            "choice": c.name,
            "pattern": c.pattern,
            "sparsity": c.sparsity,
            "speedup": speedups.get(c.pattern),
        }
        for acc in ACCOUNTINGS:
            row[acc] = _priced(c, acc, speedups, n_nonzero, compute, start, end, level)
        out.rows.append(row)
    by_name = {r["choice"]: r for r in out.rows}
    for c in opts:
        ref = reference_of(c, opts)
        for acc in ACCOUNTINGS if ref is not None else ():
            mine, theirs = by_name[c.name][acc], by_name[ref.name][acc]
            vs: dict[str, Any] = {
                "reference": ref.name,
                "difference": mine["loss"] - theirs["loss"],
            }
            iv = paired_difference(c, ref, n_nonzero, mine["data"], theirs["data"], level)
            if iv is not None:
                vs["interval"] = list(iv)
            mine["vs"] = vs
    for acc in ACCOUNTINGS:
        # best by the point loss; each row's "vs" interval says whether the margin
        # over its reference is larger than the coefficients' uncertainty
        out.best[acc] = min(out.rows, key=lambda r: r[acc]["loss"])["choice"]
    return out
