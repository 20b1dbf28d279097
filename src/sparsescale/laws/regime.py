"""Does each series of a sweep fall with D the way the law assumes?

At fixed S and N every law here is L(D) = E + A D^-b, so the drop in loss per
doubling of D shrinks by the same factor 2^-b from one doubling to the next,
whatever E and A are. Small models on small budgets often do something else
(research/cpu-scale/PROTOCOL.md, docs/cpu-scale-findings.md):
- a *step*: the loss leaves a plateau and falls faster as D grows (a ratio of
  successive drops above 1.15; no b > 0 gives a ratio above 1), as byte-level
  GPTs do between 1M and 16M tokens;
- a *crash*: the first budgets are still in the initial optimisation collapse,
  drops that shrink by more than 2^-1.5 = 0.35 per doubling (a local exponent
  above 1.5). The paper's ViT sweep reaches 0.40 at its first doubling and is
  fitted well, so the threshold sits below it; byte GPTs at 0.4M tokens give 0.3;
- *rising*: more data, higher loss, beyond noise.
A law fitted across such series has a D term that follows none of them, and its
extrapolation inherits that. This module says which (S, N) series do what, so
that a report can say it before anyone trusts the fit.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from sparsescale.errors import SparsescaleError
from sparsescale.laws.uncertainty.bootstrap import group_by_size

# The test for a power law in D. If L(D) = E + B D^-b, the loss drop per
# doubling of D, L(D) - L(2D) = B D^-b (1 - 2^-b), shrinks by exactly 2^-b from
# one doubling to the next. So successive drops of a power law have ratios
# 2^-b, in (0, 1) for any b > 0: a ratio above 1 (a later drop larger than an
# earlier one) is a step out of a plateau, and a ratio below 2^-1.5 says a
# local exponent above 1.5, a crash no law fitted here produces (the paper's
# exponents on D are 0.2 to 0.9).
CRASH_RATIO = 2**-1.5  # a local D exponent above 1.5 (module docstring)
# Any power law has ratios below 1; the 0.15 of slack keeps two nearly equal
# drops, whose ratio evaluation noise can push just above 1, from being called
# a step.
STEP_RATIO = 1.15  # 1 plus room for evaluation noise
# A drop smaller than this fraction of the loss is within noise: its ratio says nothing.
MIN_DROP = 0.005


@dataclass
class Series:
    """One (S, N) series of final losses against D, seeds averaged."""

    sparsity: float
    n_nonzero: float
    data: list[float]
    loss: list[float]
    drops: list[float]  # loss drop per doubling of D between successive budgets
    ratios: list[float]  # successive drops' ratios (a power law: 2^-b)
    verdict: str  # "power law", "step", "crash", "rising" or "too short"

    def to_dict(self) -> dict:
        return asdict(self)


def _verdict(loss: np.ndarray, drops: list[float], ratios: list[float]) -> str:
    if len(drops) < 2:
        return "too short"
    # noise in loss units: MIN_DROP of the series' mean loss, so a flat tail
    # (drops near 0, ratios of noise over noise) is read as neither step nor crash.
    # The first verdict that holds wins, in the order rising, step, crash.
    noise = MIN_DROP * float(np.mean(loss))
    if any(d < -noise for d in drops):
        return "rising"
    for (d0, d1), r in zip(zip(drops, drops[1:]), ratios):
        # a step needs its later drop above noise and a crash its earlier one: a
        # large ratio of two tiny drops is noise
        if r > STEP_RATIO and d1 > noise:
            return "step"
    for (d0, d1), r in zip(zip(drops, drops[1:]), ratios):
        if r < CRASH_RATIO and d0 > noise:
            return "crash"
    return "power law"


def check_series(sparsity, n_nonzero, data, loss) -> list[Series]:
    """Every (S, N) series with its drops per doubling of D and a verdict.
    N within 2% count as one size (sizers land near, not on, the asked N);
    repeated (S, N, D) points (seeds) are averaged first."""
    S, N, D, L = (np.asarray(a, dtype=float).ravel() for a in (sparsity, n_nonzero, data, loss))
    if not (S.shape == N.shape == D.shape == L.shape) or S.size == 0:
        raise SparsescaleError(
            "check_series: sparsity, n_nonzero, data and loss must be equally long and non-empty"
        )
    if np.any(D <= 0) or not np.all(np.isfinite(np.concatenate([S, N, D, L]))):
        raise SparsescaleError("check_series: data must be positive and every value finite")
    # drops are per doubling of D (divided by log2 of the budget ratio), so
    # budgets that are not powers of 2 apart compare on the same scale
    size = group_by_size(N)
    out = []
    # One sort groups the points by (S, size), in the order of S then size; each
    # group's mean loss per D comes from a bincount. (A mask per group and per D
    # is O(groups x points): minutes on a table of every evaluation of a sweep.)
    keys, group = np.unique(np.column_stack([S, size]), axis=0, return_inverse=True)
    group = group.ravel()
    order = np.argsort(group, kind="stable")
    bounds = np.searchsorted(group[order], np.arange(keys.shape[0] + 1))
    for (s, _), lo, hi in zip(keys, bounds[:-1], bounds[1:]):
        at = order[lo:hi]
        d, which = np.unique(D[at], return_inverse=True)
        # mean loss per distinct D: the weighted bincount sums each D's losses (its
        # seeds), the plain one counts them
        y = np.bincount(which.ravel(), weights=L[at]) / np.bincount(which.ravel())
        drops = [float((a - b) / np.log2(d1 / d0)) for a, b, d0, d1 in zip(y, y[1:], d, d[1:])]
        # a non-positive earlier drop has no meaningful ratio: inf, which _verdict
        # calls a step only when the later drop clears the noise
        ratios = [float(b / a) if a > 0 else float("inf") for a, b in zip(drops, drops[1:])]
        out.append(
            Series(
                float(s),
                float(np.median(N[at])),
                d.tolist(),
                y.tolist(),
                drops,
                ratios,
                _verdict(y, drops, ratios),
            )
        )
    return out


# A report names one failing series: a step first, since a plateau that
# ends between budgets is the likeliest way for a sweep to break the law.
def regime_warning(series: list[Series]) -> str | None:
    """One sentence for a report when any series with three or more budgets is
    not a power law in D."""
    judged = [x for x in series if x.verdict != "too short"]
    bad = [x for x in judged if x.verdict != "power law"]
    if not bad:
        return None
    counts = {v: sum(x.verdict == v for x in bad) for v in ("step", "crash", "rising")}
    what = ", ".join(f"{n} {v}" for v, n in counts.items() if n)
    # the max of the index in ("rising", "crash", "step"): a step first, the likeliest cause
    first = max(bad, key=lambda x: ("rising", "crash", "step").index(x.verdict))
    return (
        f"{len(bad)} of {len(judged)} (S, N) series do not fall with D like a power law ({what}; "
        "e.g. "
        f"S = {first.sparsity:g}, N = {first.n_nonzero:,.0f}: drops per doubling of D "
        f"{', '.join(f'{v:.3f}' for v in first.drops)}); the law's D term cannot "
        "follow them, so its extrapolation in D is not to be trusted"
    )
