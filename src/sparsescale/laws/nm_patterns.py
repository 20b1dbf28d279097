"""n:m patterns as refits on a fixed dense base (paper section 1: keep bN,
aD, bD, c and A = aS + cS of the unstructured law, refit aS, bS, cS).

Identifiability. Every run of one pattern has the same sparsity S = 1 - n/m,
so its runs see the sparsity term only through one number, the N-term factor

    k = aS (1-S)^bS + cS          (L = k N^-bN + (aD/D)^bD + c at that S).

With A = aS + cS fixed, k = A - aS (1 - (1-S)^bS): one equation in two
unknowns, so a lone pattern determines k and nothing else. Patterns that share
m (2:4 and 1:4, 4:8 and 2:8) are the same structure at different densities;
fitted jointly as an "n:m family" they give one equation per sparsity, and two
sparsities identify aS and bS (cS = A - aS). So this module fits

- per pattern: k, k relative to unstructured pruning at the same S (the base's
  k_u = aS (1-S)^bS + cS), and the equivalent dense size (A / k)^(1/bN);
- per family with at least two sparsities: aS, bS, cS;

and marks the coefficients a single-sparsity family leaves undetermined.
Intervals come from a paired bootstrap: draw b refits on the base law's
bootstrap draw b (its Uncertainty draws) and on a resample of the pattern's
runs (stratified by pattern), so they carry the base's uncertainty too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sparsescale.errors import SparsescaleError
from sparsescale.laws.fit import DEFAULT_DELTA, check_seed, huber
from sparsescale.laws.forms.nm import NM
from sparsescale.laws.law import Law
from sparsescale.laws.points import FitOptions, Points
from sparsescale.laws.uncertainty.bootstrap import _percentile_intervals
from sparsescale.laws.uncertainty.intervals import FitRange, ModelError, Uncertainty
from sparsescale.units import is_transposable, parse_pattern, pattern_name

# What a pattern law inherits. The dense law is the sparse law at S = 0, where
# (1-S)^bS = 1 and the N-term factor is aS + cS = A: bN, aD, bD, c and A fix it
# entirely. A refit that keeps those five numbers leaves every pattern law equal
# to the base's dense law at S = 0; only the dependence on S (aS, bS, cS) is new.
BASE_KEYS = ("bN", "aD", "bD", "c")
UNDETERMINED_ONE_S = ("aS", "bS", "cS")
ONE_S_REASON = (
    "the family has runs at one sparsity only, which determine just the N-term factor k at that S "
    "(one equation for aS and bS); its aS, bS, cS are shown with bS taken from the unstructured law"
)


@dataclass
class PatternRuns:
    """The finished runs of one n:m pattern (all at its sparsity 1 - n/m)."""

    pattern: str
    sparsity: float
    n_nonzero: np.ndarray
    data: np.ndarray
    loss: np.ndarray

    @property
    def m(self) -> int:
        return parse_pattern(self.pattern)[1]

    @property
    def family(self) -> str:
        """ "n:m" patterns sharing m form one family ("n:4": 2:4 and 1:4); a
        transposable pattern is another structure, so its own ("n:4T")."""
        return f"n:{self.m}" + ("T" if is_transposable(self.pattern) else "")


def pattern_sparsity(pattern: str, sparsity: float | None = None, what: str = "pattern") -> float:
    """S = 1 - n/m of an n:m (or n:mT) pattern; with `sparsity`, check that it
    is that S (a pattern law holds at its own sparsity only)."""
    nm = parse_pattern(pattern, what)
    if nm is None:
        raise SparsescaleError(
            f"{what}: {pattern!r} is not an n:m pattern (a pattern law needs n:m, e.g. 2:4)"
        )
    s = 1.0 - nm[0] / nm[1]
    if sparsity is not None and not math.isclose(float(sparsity), s, abs_tol=1e-9):
        raise SparsescaleError(
            f"{what}: {pattern_name(pattern)} fixes S = 1 - {nm[0]}/{nm[1]} = {s:g}, "
            f"incompatible with sparsity {float(sparsity):g}"
        )
    return s


def group_patterns(points: Points) -> dict[str, PatternRuns]:
    """Detect the n:m patterns among runs (`points.pattern`, n weights KEPT of
    every m along the input dimension; an entry of None or "unstructured" is not
    one) and group their runs. A row whose sparsity is not its pattern's 1 - n/m
    raises, naming the row."""
    S, N, D, y = points.arrays
    if points.pattern is None:
        raise SparsescaleError("pattern: the points carry no pattern column (n:m of each run)")
    groups: dict[str, list[int]] = {}
    for i, p in enumerate(points.pattern):
        nm = parse_pattern(p, f"patterns: row {i + 1}")
        if nm is None:
            continue
        key = pattern_name(p)
        pattern_sparsity(key, S[i], f"row {i + 1}: pattern")
        groups.setdefault(key, []).append(i)
    return {
        k: PatternRuns(k, pattern_sparsity(k), N[ix], D[ix], y[ix])
        for k, ix in sorted(groups.items(), key=lambda kv: (pattern_sparsity(kv[0]), kv[0]))
    }


def check_base(base: Law | None) -> Law:
    """The base law a pattern law refits on: a sparse-form law, required."""
    if base is None:
        raise SparsescaleError(
            "a pattern law is a refit on a dense base law (bN, aD, bD, c, A = aS + cS); "
            "give the unstructured sweep's law",
            param="base",
        )
    if base.form not in NM.base_forms:
        raise SparsescaleError(
            f"a pattern law refits a sparse-form base law (it keeps bN, aD, bD, c and "
            f"A = aS + cS); got a {base.form} law",
            param="base",
        )
    return base


def base_quantities(k: dict[str, float]) -> dict[str, float]:
    """The dense base a pattern law keeps, from sparse-law coefficients: bN, aD,
    bD, c and A = aS + cS."""
    # A = aS + cS is what the dense runs measure; aS and cS apart are known only
    # through the sparse runs, so the refit keeps their sum and nothing else of them.
    return {**{n: float(k[n]) for n in BASE_KEYS}, "A": float(k["aS"] + k["cS"])}


def unstructured_factor(k: dict[str, float], sparsity: float) -> float:
    """k_u(S) = aS (1-S)^bS + cS of sparse-law coefficients: unstructured
    pruning's N-term factor."""
    # The reference a pattern is judged against: the same S reached without
    # structure, read off the base law itself (no refit).
    return float(k["aS"] * (1.0 - sparsity) ** k["bS"] + k["cS"])


# ---------------------------------------------------------------------------
# The two small fits. Both minimise the Huber loss of log residuals, the base
# fit's objective, by a grid over a box and a bounded trust-region polish from
# its best point (scipy's least_squares with its Huber loss, f_scale = delta:
# twice this objective, same minimiser). One or two parameters: the grid finds
# the basin without starting points. Bootstrap multiplicities repeat rows, which
# weights the Huber loss exactly.
# ---------------------------------------------------------------------------
def _rows(counts, *arrays):
    """The arrays with row i repeated counts[i] times (all once when counts is None)."""
    if counts is None:
        return arrays
    # Repeating rows rather than weighting them leaves _residuals and the mean
    # Huber loss as they are: a row drawn twice is two equal residuals.
    idx = np.repeat(np.arange(arrays[0].shape[0]), np.asarray(counts, dtype=int))
    return tuple(a[idx] for a in arrays)


def _residuals(base: dict[str, float], N, D, y):
    """k (G, n) N-term factors per point -> log residuals (G, n) on the fixed base."""
    # On a fixed base the prediction is affine in k: pred = k x + offset, with
    # x = N^-bN and offset = (aD/D)^bD + c computed once, so a grid of G factors
    # costs one broadcast of (G, n), not G evaluations of the law.
    x = N ** -base["bN"]
    offset = (base["aD"] / D) ** base["bD"] + base["c"]
    log_y = np.log(y)

    def r(k: np.ndarray) -> np.ndarray:
        pred = k * x + offset
        with np.errstate(divide="ignore", invalid="ignore"):
            # a non-positive prediction has no log: NaN, which the grid scores as inf
            # and the polish replaces by a large residual (nan_to_num, 1e3)
            return np.log(np.where(pred > 0, pred, np.nan)) - log_y

    return r


def _grid_polish(
    resid_of, grids: list[np.ndarray], bounds: list[tuple[float, float]], delta: float
) -> np.ndarray:
    """argmin of the mean Huber loss over the product grid, then least_squares
    within `bounds` from it."""
    from scipy.optimize import least_squares

    # mesh: every combination of the grid values, one parameter vector per row
    # (G, P); resid_of maps all of them to residuals (G, n) in one call
    mesh = np.stack([g.ravel() for g in np.meshgrid(*grids, indexing="ij")], axis=1)
    with np.errstate(invalid="ignore"):
        vals = np.mean(huber(resid_of(mesh), delta), axis=1)
    vals = np.where(np.isfinite(vals), vals, np.inf)
    if not np.isfinite(vals).any():
        raise SparsescaleError(
            "patterns: no parameter value predicts a positive loss for these runs"
        )
    start = mesh[int(np.argmin(vals))]
    lo, hi = np.array([b[0] for b in bounds]), np.array([b[1] for b in bounds])
    # strictly inside the box: least_squares refuses a start on a bound
    x0 = np.clip(start, lo + 1e-12 * (hi - lo), hi - 1e-12 * (hi - lo))
    res = least_squares(
        lambda p: np.nan_to_num(resid_of(p[None, :])[0], nan=1e3),
        x0,
        bounds=(lo, hi),
        loss="huber",
        f_scale=delta,
        xtol=1e-14,
        ftol=1e-14,
        gtol=1e-14,
        max_nfev=200,
    )
    return np.asarray(res.x, dtype=float)


# One pattern, one number. All of a pattern's runs sit at S = 1 - n/m, where
# the law reads L = k N^-bN + (aD/D)^bD + c with the base's bN, aD, bD, c: the
# runs determine k and nothing else. k > 0 spans orders of magnitude, so the
# search is over log k (a grid of 171 values from A e^-12 to A e^5, then a
# bounded polish).
def fit_factor(
    base: dict[str, float], runs: PatternRuns, counts=None, delta: float | None = None
) -> float:
    """k of one pattern: the N-term factor its runs determine, on the fixed base.
    Searched in log k over 12 e-folds below A to 5 above (k > A: worse than dense)."""
    N, D, y = _rows(counts, runs.n_nonzero, runs.data, runs.loss)
    r = _residuals(base, N, D, y)
    # The box: k = A is a pattern exactly as good as dense at its non-zeros;
    # A e^-12 (a factor 1.6e5 below) is far beyond any structure that helps and
    # A e^5 (150 times above) far beyond any that hurts. 171 grid points are steps
    # of 0.1 in log k; P[:, :1] keeps a (G, 1) shape that broadcasts over the runs.
    lo, hi = math.log(base["A"]) - 12.0, math.log(base["A"]) + 5.0
    p = _grid_polish(
        lambda P: r(np.exp(P[:, :1])),
        [np.linspace(lo, hi, 171)],
        [(lo, hi)],
        DEFAULT_DELTA["log"] if delta is None else delta,
    )
    return float(math.exp(p[0]))


# A family (same m, several n) sees k at several sparsities. With A = aS + cS
# kept from the base, k(S) = aS (1-S)^bS + cS = A - aS (1 - (1-S)^bS): two
# unknowns (aS, bS), one equation per sparsity, so two sparsities identify
# them. aS is searched as a fraction of A in [0, 1] (cS = A - aS >= 0).
def family_factor(A: float, aS, bS, sparsity):
    """k(S) = aS (1-S)^bS + (A - aS): the family's N-term factor with A kept."""
    return A - aS * (1.0 - (1.0 - np.asarray(sparsity, dtype=float)) ** bS)


def fit_family(
    base: dict[str, float],
    members: list[PatternRuns],
    counts: list | None = None,
    delta: float | None = None,
) -> tuple[float, float]:
    """(aS, bS) of an n:m family (patterns sharing m at two or more sparsities),
    cS = A - aS, fitted jointly to all its runs on the fixed base."""
    parts = [
        _rows(
            None if counts is None else c,
            np.full(r.loss.shape[0], r.sparsity),
            r.n_nonzero,
            r.data,
            r.loss,
        )
        for r, c in zip(members, counts or [None] * len(members))
    ]
    # Every member's rows carry its own S (one value per pattern), so after the
    # stacking family_factor gives each run the k of its sparsity.
    S, N, D, y = (np.concatenate([p[j] for p in parts]) for j in range(4))
    r = _residuals(base, N, D, y)
    A = base["A"]
    b_lo, b_hi = NM.exponent_bounds[0]
    p = _grid_polish(
        # Searched as (aS / A, bS): the fraction in [0, 1] keeps cS = A - aS >= 0
        # without a constraint; the 41 x 81 grid steps aS / A by 0.025 and covers
        # the nm form's whole box for bS.
        lambda P: r(family_factor(A, A * P[:, :1], P[:, 1:2], S[None, :])),
        [np.linspace(0.0, 1.0, 41), np.linspace(b_lo, b_hi, 81)],
        [(0.0, 1.0), (b_lo, b_hi)],
        DEFAULT_DELTA["log"] if delta is None else delta,
    )
    return float(A * p[0]), float(p[1])


# With one sparsity only k is measured. Showing aS, bS, cS at all needs a
# choice: keep the base's bS and A and solve k = A - aS (1 - (1-S)^bS) for aS.
# Those three numbers are marked undetermined; only k, the equivalent dense
# size and k's ratio to unstructured pruning are measurements.
def one_sparsity_coefficients(
    base: dict[str, float], k: float, sparsity: float
) -> dict[str, float]:
    """aS, bS, cS that reproduce k at S when the runs cannot say more: bS from
    the unstructured law and A kept (aS = (A - k) / (1 - (1-S)^bS)); where that
    leaves [0, A] (k above A or below A (1-S)^bS), aS = 0 and cS = k, which is
    exact at S and flat in S. Only k is determined either way."""
    bS = float(base["bS"])
    A = base_quantities(base)["A"]
    # gap = 1 - (1-S)^bS is how much aS moves k at this S; it is 0 only at S = 0
    # (or bS = 0), where k = A whatever aS is, and no aS can be solved for.
    gap = 1.0 - (1.0 - sparsity) ** bS
    aS = (A - k) / gap if gap > 0 else -1.0
    if not 0.0 <= aS <= A:
        return {"aS": 0.0, "bS": bS, "cS": k}
    return {"aS": aS, "bS": bS, "cS": max(0.0, A - aS)}


# ---------------------------------------------------------------------------
# All patterns of a sweep: point fit, paired bootstrap, the result
# ---------------------------------------------------------------------------
QUANTITIES = {
    "k": "N-term factor k at the pattern's S (its runs determine it on a given base; across the "
    "base's draws "
    "it moves with bN, so read it through k_ratio and the equivalent dense size)",
    "k_unstructured": "the base law's N-term factor for unstructured pruning at the same S",
    "k_ratio": "k / k_unstructured: above 1, the pattern's N-term is larger (worse) than "
    "unstructured",
    "equivalent_dense_size": "(A / k)^(1/bN): dense parameters per non-zero with the same N-term",
    "unstructured_equivalent_dense_size": "(A / k_unstructured)^(1/bN) at the same S",
}


def families_of(groups: dict[str, PatternRuns]) -> dict[str, list[PatternRuns]]:
    """Patterns sharing m, by family name "n:m" -> e.g. "n:4": [2:4, 1:4];
    transposable ones apart ("n:4T": [2:4T])."""
    out: dict[str, list[PatternRuns]] = {}
    for r in groups.values():
        out.setdefault(r.family, []).append(r)
    return out


def _identified(members: list[PatternRuns]) -> bool:
    return len({r.sparsity for r in members}) >= 2


def _point(
    base: dict[str, float],
    groups: dict[str, PatternRuns],
    weights: dict[str, np.ndarray] | None = None,
    delta: float | None = None,
) -> dict[str, dict[str, float]]:
    """One refit of every pattern on one base: per pattern its coefficients
    aS, bS, cS (the family's when identified) and its QUANTITIES."""
    w = weights or {}
    q = base_quantities(base)
    out: dict[str, dict[str, float]] = {}
    # k is fitted per pattern even inside an identified family: the family's
    # (aS, bS) smooth k across its sparsities, while each pattern's own k is the
    # measurement its runs make, and both are reported.
    for members in families_of(groups).values():
        ks = {r.pattern: fit_factor(q, r, w.get(r.pattern), delta) for r in members}
        family = None
        if _identified(members):
            aS, bS = fit_family(q, members, [w.get(r.pattern) for r in members], delta)
            family = {"aS": aS, "bS": bS, "cS": max(0.0, q["A"] - aS)}
        for r in members:
            k, ku = ks[r.pattern], unstructured_factor(base, r.sparsity)
            coefs = family or one_sparsity_coefficients(base, k, r.sparsity)
            # A dense model of n parameters has the N-term A n^-bN; it equals the
            # pattern's k N^-bN at n = N (A / k)^(1/bN), hence the equivalent dense
            # size as a factor on N (dense parameters per non-zero).
            out[r.pattern] = {
                **coefs,
                **{n: base[n] for n in BASE_KEYS},
                "k": k,
                "k_unstructured": ku,
                "k_ratio": k / ku,
                "equivalent_dense_size": (q["A"] / k) ** (1.0 / q["bN"]),
                "unstructured_equivalent_dense_size": (q["A"] / ku) ** (1.0 / q["bN"]),
            }
    return out


@dataclass
class PatternLaws:
    """Every pattern's refit on one base law, with bootstrap intervals."""

    base: dict[str, float]
    points: dict[str, dict[str, float]]  # pattern -> coefficients and QUANTITIES
    laws: dict[str, Law]  # pattern -> its nm-form law (with uncertainty when drawn)
    sparsity: dict[str, float]
    family: dict[str, str]
    n_runs: dict[str, int]
    undetermined: dict[str, dict[str, str]]  # pattern -> coefficient -> why
    intervals: dict[str, dict[str, tuple[float, float, float]]] = field(default_factory=dict)
    level: float = 0.95
    n_boot: int = 0
    base_uncertainty: bool = False

    def to_dict(self) -> dict[str, Any]:
        from sparsescale.laws.jsonsafe import finite_json

        pats = {}
        for p, law in self.laws.items():
            iv = self.intervals.get(p, {})
            pats[p] = {
                "sparsity": self.sparsity[p],
                "family": self.family[p],
                "n_runs": self.n_runs[p],
                "law": law.to_dict(),
                "undetermined": self.undetermined[p],
                "quantities": {
                    n: {"value": self.points[p][n], **_iv_dict(iv.get(n))}
                    for n in (*UNDETERMINED_ONE_S, *QUANTITIES)
                },
            }
        out = {
            "method": __doc__.split("\n\n")[0].replace("\n", " "),
            "quantities": QUANTITIES,
            "base": self.base,
            "level": self.level,
            "n_boot": self.n_boot,
            "intervals_include_base_uncertainty": self.base_uncertainty,
            "patterns": pats,
        }
        return finite_json(out)[0]


def _iv_dict(iv) -> dict[str, float]:
    return {} if iv is None else {"low": iv[0], "median": iv[1], "high": iv[2]}


def fit_patterns(
    groups: dict[str, PatternRuns], options: FitOptions, n_boot: int = 200, level: float = 0.95
) -> PatternLaws:
    """Refit every pattern of `groups` (see group_patterns) on the base law
    `options.base` (with options.seed and options.delta; the form is nm).

    Intervals: n_boot paired draws, each a refit on the base law's next
    bootstrap draw (its Uncertainty, cycled; the point base when it has none)
    and on a resample of every pattern's runs drawn within the pattern, so the
    design (which N and D each pattern ran) stays fixed. 0 = no intervals."""
    base_law = check_base(options.base)
    seed, delta = check_seed(options.seed), options.delta
    if not groups:
        raise SparsescaleError("patterns: no n:m runs to fit")
    base = {k: float(v) for k, v in base_law.coefficients.items()}
    points = _point(base, groups, delta=delta)
    fams = families_of(groups)
    family = {r.pattern: name for name, members in fams.items() for r in members}
    # An identified family can still leave a coefficient undetermined: one that
    # stopped on a bound of its search holds the box's value, not the data's.
    undetermined = {
        p: (
            _at_bounds(points[p], base_quantities(base)["A"])
            if _identified(fams[family[p]])
            else dict.fromkeys(UNDETERMINED_ONE_S, ONE_S_REASON)
        )
        for p in groups
    }
    result = PatternLaws(
        base=base_quantities(base),
        points=points,
        laws={},
        sparsity={p: r.sparsity for p, r in groups.items()},
        family=family,
        n_runs={p: int(r.loss.shape[0]) for p, r in groups.items()},
        undetermined=undetermined,
        level=level,
        n_boot=n_boot,
        base_uncertainty=base_law.uncertainty is not None,
    )
    draws = _bootstrap(base_law, groups, n_boot, seed, delta) if n_boot else []
    for p, r in groups.items():
        result.laws[p] = _pattern_law(base_law, r, points[p], [d[p] for d in draws])
        if draws and base_law.uncertainty is not None:
            # which base draw each draw was refitted on: comparisons with the base law pair them
            result.laws[p].fit = {"base_draw_index": [int(d["base_draw"]) for d in draws]}
    if draws:
        names = [*UNDETERMINED_ONE_S, *QUANTITIES]
        for p in groups:
            arr = np.array([[d[p][n] for n in names] for d in draws], dtype=float)
            result.intervals[p] = _percentile_intervals(arr, names, level)[0]
    return result


def _at_bounds(point: dict[str, float], A: float, rtol: float = 1e-6) -> dict[str, str]:
    """The family coefficients its fit left on a bound of the search, with why:
    there the data ask for a value the constraints (0 <= aS <= A, bS in its box)
    forbid, so the value is the bound's, not a measurement."""
    out = {}
    if point["aS"] >= A * (1 - rtol) or point["aS"] <= A * rtol:
        why = (
            "the family fit stopped at the bound aS = "
            f"{'A (cS = 0)' if point['aS'] > A / 2 else '0 (cS = A)'}: "
            "with A kept from the base, no interior aS fits better"
        )
        out.update(aS=why, cS=why)
    lo, hi = NM.exponent_bounds[0]
    if not lo + rtol < point["bS"] < hi - rtol:
        out["bS"] = f"the family fit stopped at a bound of bS's search [{lo:g}, {hi:g}]"
    return out


# Paired draws: draw b refits every pattern on the base law's draw b and on a
# resample of each pattern's runs (drawn within the pattern, so each keeps its
# N and D design). The base's uncertainty then travels into every pattern's
# intervals, and comparisons with the base (laws.pattern_choice) can pair them.
def _bootstrap(
    base_law: Law, groups: dict[str, PatternRuns], n_boot: int, seed: int, delta
) -> list[dict]:
    """n_boot paired refits (see fit_patterns): one _point result each, with the
    index of its base draw under "base_draw"; a draw whose refit fails (a
    resample the base cannot fit) is left out."""
    if n_boot < 2:
        raise SparsescaleError(f"need at least 2 resamples, got {n_boot}", param="n_boot")
    unc = base_law.uncertainty
    bases = (
        [dict(zip(base_law.spec.coefficients, map(float, row))) for row in unc.draws]
        if unc is not None
        else [dict(base_law.coefficients)]
    )
    # Draw b refits on base draw b mod B: with n_boot <= B every refit has a base
    # draw of its own, and the index travels along so pattern_choice can pair them.
    rng = np.random.default_rng(seed)
    out = []
    for b in range(n_boot):
        # one multinomial draw per pattern, sized to its own runs: a pattern's
        # resample never borrows another pattern's runs
        weights = {
            p: np.bincount(
                rng.integers(0, r.loss.shape[0], r.loss.shape[0]), minlength=r.loss.shape[0]
            )
            for p, r in groups.items()
        }
        try:
            point = _point(bases[b % len(bases)], groups, weights, delta)
        except (SparsescaleError, ValueError, FloatingPointError):
            continue
        out.append({**point, "base_draw": b % len(bases)})
    return out


def _pattern_law(
    base_law: Law, runs: PatternRuns, point: dict[str, float], draws: list[dict[str, float]]
) -> Law:
    """The pattern's nm-form law (its coefficients on the base) and, with draws,
    an Uncertainty whose model error is the base law's (the pattern runs are too
    few to calibrate one of their own)."""
    names = NM.coefficients
    law = Law(
        form=NM.name,
        coefficients={n: float(point[n]) for n in names},
        units=dict(base_law.units),
        name=f"{base_law.name or 'base'} + {runs.pattern}",
        tokens_per_unit=base_law.tokens_per_unit,
    )
    if len(draws) >= 2:
        # each draw carries the base draw it was refitted on (bN, aD, bD, c)
        rows = np.array([[d[n] for n in names] for d in draws], dtype=float)
        unc = base_law.uncertainty
        error = unc.model_error if unc is not None else ModelError(0.0, 0.0)
        law.uncertainty = Uncertainty(
            form=NM.name,
            draws=rows,
            fit_range=FitRange.of(
                np.full(runs.loss.shape[0], runs.sparsity), runs.n_nonzero, runs.data
            ),
            model_error=error,
            source=f"paired bootstrap on the base law, {runs.pattern} runs",
        )
    return law


# ---------------------------------------------------------------------------
# Reading pattern laws back (the "pattern_laws" section of a report's law.json)
# ---------------------------------------------------------------------------
SECTION = "pattern_laws"


def load_pattern_laws(
    obj: Any, base_law: Law | None, source: str = "pattern laws"
) -> dict[str, Law]:
    """pattern -> its nm-form law, from a law JSON's "pattern_laws" section (or
    that section itself), checked against the base law they will be used with:
    a pattern law is a refit on one base, so it needs that base and no other."""
    base_law = check_base(base_law)
    if isinstance(obj, dict) and SECTION in obj:
        obj = obj[SECTION]
    if (
        not isinstance(obj, dict)
        or not isinstance(obj.get("patterns"), dict)
        or not obj["patterns"]
    ):
        raise SparsescaleError(
            f"{source}: holds no pattern laws (a {SECTION!r} object with 'patterns'; "
            "`sparsescale report` writes it into law.json when the sweep has n:m runs)"
        )
    saved = obj.get("base")
    if not isinstance(saved, dict) or any(
        not isinstance(saved.get(n), (int, float)) for n in (*BASE_KEYS, "A")
    ):
        raise SparsescaleError(
            f"{source}: the pattern laws carry no base (bN, aD, bD, c, A): a pattern law is a "
            "refit on a dense base law and cannot be used without it"
        )
    given = base_quantities(base_law.coefficients)
    # a relative tolerance, not equality: a law file whose base was rounded to
    # about seven digits still names that base, and another fit differs far more
    for name, value in given.items():
        if not math.isclose(float(saved[name]), value, rel_tol=1e-6):
            raise SparsescaleError(
                f"{source}: the pattern laws were fitted on another base law ({name} = "
                f"{float(saved[name]):.6g} there, {value:.6g} in the base law given)"
            )
    laws: dict[str, Law] = {}
    spelled: dict[str, str] = {}
    for p, entry in obj["patterns"].items():
        where = f"{source}: patterns[{p!r}]"
        key = _key(p, entry, where)
        # "02:04" and "2:4" are one pattern: which law holds would be an accident of order
        if key in laws:
            raise SparsescaleError(
                f"{where}: the same pattern as patterns[{spelled[key]!r}]; keep one"
            )
        laws[key], spelled[key] = _entry_law(entry, saved, where), p
    return laws


def _key(pattern: str, entry: Any, where: str) -> str:
    if not isinstance(entry, dict):
        raise SparsescaleError(f"{where}: expected an object with 'sparsity' and 'law'")
    s = entry.get("sparsity")
    if isinstance(s, bool) or not isinstance(s, (int, float)):
        raise SparsescaleError(f"{where}: 'sparsity' must be a number, got {s!r}")
    pattern_sparsity(pattern, s, where)
    return pattern_name(pattern, where)


def _entry_law(entry: dict, saved: dict, where: str) -> Law:
    law = Law.from_dict(entry.get("law"), source=where)
    if law.form != NM.name:
        raise SparsescaleError(
            f"{where}: law form is {law.form!r}; a pattern law has form {NM.name!r}"
        )
    for name in BASE_KEYS:
        if not math.isclose(law[name], float(saved[name]), rel_tol=1e-6):
            raise SparsescaleError(
                f"{where}: coefficient {name} = {law[name]:.6g} differs from the base's "
                f"{float(saved[name]):.6g} (a pattern law keeps the base's)"
            )
    return law
