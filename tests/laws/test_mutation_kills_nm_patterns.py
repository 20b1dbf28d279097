"""laws.nm_patterns against hand calculations, brute-force minima and its
messages word for word (the mutation tests' kill file; see docs/mutation.md).

The base below has losses under 1 (c = 0.1): a prediction between 0 and 1 must
count as a valid prediction, not as a missing one."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sparsescale.errors import SparsescaleError
from sparsescale.laws.fit import huber
from sparsescale.laws.law import Law
from sparsescale.laws.nm_patterns import (
    QUANTITIES,
    PatternLaws,
    PatternRuns,
    _at_bounds,
    base_quantities,
    check_base,
    family_factor,
    fit_factor,
    fit_family,
    fit_patterns,
    group_patterns,
    load_pattern_laws,
    one_sparsity_coefficients,
    pattern_sparsity,
    unstructured_factor,
)
from sparsescale.laws.points import FitOptions, Points
from sparsescale.laws.uncertainty.intervals import FitRange, ModelError, Uncertainty

# A = aS + cS = 8; at N = 1e4, D = 1e6: N-term about 8 * 1e4^-0.3 = 0.505, data term
# (1e4 / 1e6)^0.4 = 0.158, so every loss lies between 0.1 and 1.
BASE = {"aS": 3.0, "bS": 0.8, "cS": 5.0, "bN": 0.3, "aD": 1e4, "bD": 0.4, "c": 0.1}
A = 8.0
Q = {"bN": 0.3, "aD": 1e4, "bD": 0.4, "c": 0.1, "A": A}
NS, DS = np.array([1e4, 4e4, 1.6e5]), np.array([1e6, 4e6])
ONE_S_REASON = (
    "the family has runs at one sparsity only, which determine just the N-term factor k at "
    "that S (one equation for aS and bS); its aS, bS, cS are shown with bS taken from the "
    "unstructured law"
)


def loss_at(k, N, D, base=Q):
    return k * N ** -base["bN"] + (base["aD"] / D) ** base["bD"] + base["c"]


def runs(pattern: str, k: float, noise=None) -> PatternRuns:
    """A pattern's runs over NS x DS with N-term factor k (times exp(noise) per row)."""
    N, D = (a.ravel() for a in np.meshgrid(NS, DS))
    y = loss_at(k, N, D) * (1.0 if noise is None else np.exp(noise))
    return PatternRuns(pattern, pattern_sparsity(pattern), N, D, y)


def family_runs(aS: float, bS: float, patterns=("2:4", "1:4")) -> dict[str, PatternRuns]:
    return {p: runs(p, float(family_factor(A, aS, bS, pattern_sparsity(p)))) for p in patterns}


def error_text(fn, *args, **kwargs) -> SparsescaleError:
    with pytest.raises(SparsescaleError) as info:
        fn(*args, **kwargs)
    return info.value


# ---------------------------------------------------------------------------
# patterns, groups, base
# ---------------------------------------------------------------------------
def test_pattern_sparsity_names_and_messages():
    assert pattern_sparsity("1:4") == 0.75 and pattern_sparsity("3:8") == 0.625
    assert pattern_sparsity("2:4T") == 0.5
    # the check's tolerance is 1e-9 in S, absolute
    assert pattern_sparsity("2:4", 0.5 + 0.9e-9) == 0.5
    assert str(error_text(pattern_sparsity, "2:4", 0.5 + 1.5e-9)) == (
        "pattern: 2:4 fixes S = 1 - 2/4 = 0.5, incompatible with sparsity 0.5"
    )
    assert str(error_text(pattern_sparsity, "1:4", 0.5, "x")) == (
        "x: 1:4 fixes S = 1 - 1/4 = 0.75, incompatible with sparsity 0.5"
    )
    assert str(error_text(pattern_sparsity, "unstructured")) == (
        "pattern: 'unstructured' is not an n:m pattern (a pattern law needs n:m, e.g. 2:4)"
    )
    r = PatternRuns("2:8", 0.75, np.ones(1), np.ones(1), np.ones(1))
    assert (r.m, r.family) == (8, "n:8")
    assert PatternRuns("1:4T", 0.75, *[np.ones(1)] * 3).family == "n:4T"


def test_groups_are_ordered_by_sparsity_then_name_and_keep_their_columns():
    pats = ["2:4t", "1:8", "unstructured", "2:4", "1:4", "2:4"]
    S = [0.5, 0.875, 0.3, 0.5, 0.75, 0.5]
    groups = group_patterns(
        Points(S, [1, 2, 3, 4, 5, 6], [10, 20, 30, 40, 50, 60], [1.1, 1.2, 1.3, 1.4, 1.5, 1.6],
               pattern=pats)
    )  # fmt: skip
    assert list(groups) == ["2:4", "2:4T", "1:4", "1:8"]
    g = groups["2:4"]
    assert (g.pattern, g.sparsity) == ("2:4", 0.5)
    assert g.n_nonzero.tolist() == [4, 6] and g.data.tolist() == [40, 60]
    assert g.loss.tolist() == [1.4, 1.6]
    assert str(error_text(group_patterns, Points([0.5], [1], [1], [1.0]))) == (
        "pattern: the points carry no pattern column (n:m of each run)"
    )
    bad = Points([0.5] * 3, [1, 2, 3], [1] * 3, [1.0] * 3, pattern=["2:4", "2:4", "2-4"])
    assert str(error_text(group_patterns, bad)) == (
        "patterns: row 3: unknown pattern '2-4'; expected 'unstructured', n:m such as '2:4', "
        "or n:mT such as '2:4T'"
    )
    off = Points([0.5, 0.5, 0.7], [1, 2, 3], [1] * 3, [1.0] * 3, pattern=["2:4", "2:4", "1:4"])
    assert str(error_text(group_patterns, off)) == (
        "row 3: pattern: 1:4 fixes S = 1 - 1/4 = 0.75, incompatible with sparsity 0.7"
    )


def test_check_base_and_the_base_quantities():
    e = error_text(check_base, None)
    assert e.param == "base" and str(e) == (
        "base: a pattern law is a refit on a dense base law (bN, aD, bD, c, A = aS + cS); "
        "give the unstructured sweep's law"
    )
    dense = Law("dense", {"A": 1.0, "alpha": 0.3, "B": 1.0, "beta": 0.3, "E": 1.0})
    e = error_text(check_base, dense)
    assert e.param == "base" and str(e) == (
        "base: a pattern law refits a sparse-form base law (it keeps bN, aD, bD, c and "
        "A = aS + cS); got a dense law"
    )
    nm = Law("nm", dict(BASE))
    assert check_base(nm) is nm
    assert base_quantities(BASE) == Q  # A = 3 + 5
    # k_u(S) = aS (1-S)^bS + cS: at S = 3/4, 3 * 0.25^0.8 + 5
    assert unstructured_factor(BASE, 0.75) == pytest.approx(3 * 0.25**0.8 + 5, rel=1e-15)
    assert unstructured_factor({"aS": 2.0, "bS": 1.0, "cS": 0.5}, 0.5) == 1.5


# ---------------------------------------------------------------------------
# the small fits against closed forms and brute-force minima
# ---------------------------------------------------------------------------
def brute_force_k(r: PatternRuns, delta: float, counts=None) -> float:
    """argmin over log k of the mean Huber loss: a grid of 40,001 values over
    the whole box [ln A - 12, ln A + 5], then 20,001 within a step of the best."""
    N, D, y = r.n_nonzero, r.data, r.loss
    if counts is not None:
        idx = np.repeat(np.arange(y.size), counts)
        N, D, y = N[idx], D[idx], y[idx]

    def objective(logk):
        pred = np.exp(logk)[:, None] * N ** -Q["bN"] + (Q["aD"] / D) ** Q["bD"] + Q["c"]
        return np.mean(huber(np.log(pred) - np.log(y), delta), axis=1)

    grid = np.linspace(math.log(A) - 12, math.log(A) + 5, 40_001)
    best = grid[np.argmin(objective(grid))]
    step = grid[1] - grid[0]
    fine = np.linspace(best - step, best + step, 20_001)
    return float(math.exp(fine[np.argmin(objective(fine))]))


def test_fit_factor_recovers_k_and_stops_on_its_box():
    # exact runs: the fitted k is the one they were made with (losses all below 1)
    assert fit_factor(Q, runs("2:4", 6.5)) == pytest.approx(6.5, rel=1e-9)
    assert fit_factor(Q, runs("2:4", 0.02)) == pytest.approx(0.02, rel=1e-7)
    # the box is [A e^-12, A e^5]: a k beyond it comes back on its bound
    assert fit_factor(Q, runs("2:4", A * math.exp(6))) == pytest.approx(A * math.exp(5), rel=1e-9)
    assert fit_factor(Q, runs("2:4", A * math.exp(-14))) == pytest.approx(
        A * math.exp(-12), rel=1e-6
    )


def test_fit_factor_minimises_the_huber_loss_with_its_delta_and_counts():
    # one run of six off by a factor e^0.4: the Huber minimum with delta = 1e-3 (the default,
    # nearly a median) ignores it almost entirely; with delta = 0.5 it pulls k like least squares
    noise = np.array([0.0, 0.01, -0.01, 0.4, 0.005, -0.002])
    r = runs("2:4", 5.0, noise)
    for delta in (None, 0.5):
        got = fit_factor(Q, r, delta=delta)
        assert got == pytest.approx(brute_force_k(r, 1e-3 if delta is None else delta), rel=1e-6)
    assert abs(fit_factor(Q, r, delta=0.5) - fit_factor(Q, r)) > 0.05
    counts = [3, 0, 1, 2, 0, 1]  # a bootstrap multiplicity repeats rows
    got = fit_factor(Q, r, counts=counts)
    assert got == pytest.approx(brute_force_k(r, 1e-3, counts), rel=1e-6)
    assert abs(got - fit_factor(Q, r)) > 1e-3


def test_fit_factor_says_when_no_factor_predicts_a_positive_loss():
    # c = -100: k N^-bN <= A e^5 * 1e4^-0.3 = 75 cannot lift any prediction above 0
    e = error_text(fit_factor, {**Q, "c": -100.0}, runs("2:4", 5.0))
    assert str(e) == "patterns: no parameter value predicts a positive loss for these runs"


def test_family_factor_and_the_joint_fit_by_hand():
    # k(S) = A - aS (1 - (1-S)^bS): A = 8, aS = 4, bS = 1, S = 1/2 -> 8 - 4 * 1/2 = 6
    assert family_factor(8.0, 4.0, 1.0, 0.5) == 6.0
    assert family_factor(8.0, 4.0, 2.0, 0.75) == 8.0 - 4.0 * (1 - 0.0625)
    fam = family_runs(5.0, 1.5)
    aS, bS = fit_family(Q, list(fam.values()))
    assert aS == pytest.approx(5.0, rel=1e-7) and bS == pytest.approx(1.5, rel=1e-7)
    # bS = 6 lies beyond the search's [0, 4]: the fit stops on bS = 4
    aS, bS = fit_family(Q, list(family_runs(4.0, 6.0).values()))
    assert bS == pytest.approx(4.0, abs=1e-9)


def test_family_fit_weights_rows_by_their_counts():
    # noisy runs: counts that repeat rows must equal the fit on the repeated rows themselves
    rng = np.random.default_rng(7)
    fam = {
        p: runs(p, float(family_factor(A, 5.0, 1.5, pattern_sparsity(p))),
                0.02 * rng.standard_normal(6))
        for p in ("2:4", "1:4")
    }  # fmt: skip
    counts = [[2, 0, 1, 3, 0, 0], [0, 1, 1, 2, 2, 0]]
    repeated = [
        PatternRuns(
            r.pattern, r.sparsity, *(np.repeat(a, c) for a in (r.n_nonzero, r.data, r.loss))
        )
        for r, c in zip(fam.values(), counts)
    ]
    weighted = fit_family(Q, list(fam.values()), counts)
    assert weighted == pytest.approx(fit_family(Q, repeated), rel=1e-7)
    assert abs(weighted[1] - fit_family(Q, list(fam.values()))[1]) > 1e-3
    # and with delta: one explicit delta changes the result
    assert fit_family(Q, repeated, delta=0.5) != pytest.approx(fit_family(Q, repeated), rel=1e-6)


def test_one_sparsity_coefficients_by_hand():
    base = {**BASE, "bS": 1.0}  # A = 3 + 5 = 8
    # S = 1/2, bS = 1: gap = 1/2, aS = (8 - 6) / (1/2) = 4, cS = 4
    assert one_sparsity_coefficients(base, 6.0, 0.5) == {"aS": 4.0, "bS": 1.0, "cS": 4.0}
    # k = 7.75: aS = 0.25 / 0.5 = 0.5, a small aS inside [0, A] is still solved for
    assert one_sparsity_coefficients(base, 7.75, 0.5) == {"aS": 0.5, "bS": 1.0, "cS": 7.5}
    # k = A (1-S)^bS = 4 exactly: aS = (8 - 4) / 0.5 = 8 = A, still inside [0, A]: cS = 0
    assert one_sparsity_coefficients(base, 4.0, 0.5) == {"aS": 8.0, "bS": 1.0, "cS": 0.0}
    # below A (1-S)^bS (aS > A) or above A (aS < 0): aS = 0, cS = k
    assert one_sparsity_coefficients(base, 3.0, 0.5) == {"aS": 0.0, "bS": 1.0, "cS": 3.0}
    assert one_sparsity_coefficients(base, 9.0, 0.5) == {"aS": 0.0, "bS": 1.0, "cS": 9.0}
    # S = 0 (gap = 0): no aS can be solved for
    assert one_sparsity_coefficients(base, 7.0, 0.0) == {"aS": 0.0, "bS": 1.0, "cS": 7.0}


def test_at_bounds_edges_and_messages():
    why_a = "the family fit stopped at the bound aS = A (cS = 0): with A kept from the base, "
    why_0 = "the family fit stopped at the bound aS = 0 (cS = A): with A kept from the base, "
    tail = "no interior aS fits better"
    why_b = "the family fit stopped at a bound of bS's search [0, 4]"
    A_ = 8.0
    assert _at_bounds({"aS": A_ * (1 - 1e-6), "bS": 1.0}, A_) == {
        "aS": why_a + tail,
        "cS": why_a + tail,
    }
    assert _at_bounds({"aS": A_ * 1e-6, "bS": 1.0}, A_) == {"aS": why_0 + tail, "cS": why_0 + tail}
    assert _at_bounds({"aS": A_ * (1 - 1.5e-6), "bS": 1.0}, A_) == {}
    assert _at_bounds({"aS": A_ * 1.5e-6, "bS": 1.0}, A_) == {}
    # bS: strictly inside (lo + 1e-6, hi - 1e-6) is a measurement
    edges = [(1e-6, True), (0.5e-6, True), (1.5e-6, False), (4.0 - 1e-6, True)]
    edges += [(4.0 - 0.5e-6, True), (4.0 - 1.5e-6, False), (4.0, True), (0.0, True)]
    for bS, flagged in edges:
        assert _at_bounds({"aS": 4.0, "bS": bS}, A_) == ({"bS": why_b} if flagged else {}), bS


# ---------------------------------------------------------------------------
# fit_patterns: the point refit, the result and its dictionary
# ---------------------------------------------------------------------------
def test_point_refit_quantities_by_hand():
    groups = {**family_runs(5.0, 1.5), "2:8": runs("2:8", 6.0)}
    fitted = fit_patterns(groups, FitOptions(form="nm", base=Law("sparse", dict(BASE))), n_boot=0)
    for p, s in (("2:4", 0.5), ("1:4", 0.75)):
        pt = fitted.points[p]
        k = 8 - 5 * (1 - (1 - s) ** 1.5)
        ku = 3 * (1 - s) ** 0.8 + 5
        assert pt["k"] == pytest.approx(k, rel=1e-9)
        assert pt["k_unstructured"] == pytest.approx(ku, rel=1e-14)
        assert pt["k_ratio"] == pytest.approx(k / ku, rel=1e-9)
        assert pt["equivalent_dense_size"] == pytest.approx((8 / k) ** (1 / 0.3), rel=1e-8)
        assert pt["unstructured_equivalent_dense_size"] == pytest.approx(
            (8 / ku) ** (1 / 0.3), rel=1e-14
        )
        assert pt["aS"] == pytest.approx(5.0, rel=1e-7) and pt["bS"] == pytest.approx(1.5, rel=1e-7)
        assert pt["cS"] == pytest.approx(3.0, rel=1e-6)
        assert {n: pt[n] for n in ("bN", "aD", "bD", "c")} == {
            n: Q[n] for n in ("bN", "aD", "bD", "c")
        }
        assert fitted.undetermined[p] == {}
    # the lone 2:8 (S = 3/4): bS = 0.8 from the base, aS = (8 - 6) / (1 - 0.25^0.8)
    pt = fitted.points["2:8"]
    assert pt["bS"] == 0.8 and pt["aS"] == pytest.approx(2 / (1 - 0.25**0.8), rel=1e-9)
    assert pt["cS"] == pytest.approx(8 - 2 / (1 - 0.25**0.8), rel=1e-9)
    assert fitted.undetermined["2:8"] == dict.fromkeys(("aS", "bS", "cS"), ONE_S_REASON)
    assert fitted.family == {"2:4": "n:4", "1:4": "n:4", "2:8": "n:8"}
    assert fitted.sparsity == {"2:4": 0.5, "1:4": 0.75, "2:8": 0.75}
    assert fitted.n_runs == {"2:4": 6, "1:4": 6, "2:8": 6}
    assert fitted.base == Q and fitted.intervals == {} and fitted.n_boot == 0
    assert fitted.base_uncertainty is False
    law = fitted.laws["2:8"]
    assert law.name == "base + 2:8" and law.uncertainty is None and law.fit is None
    e = error_text(fit_patterns, {}, FitOptions(form="nm", base=Law("sparse", dict(BASE))))
    assert str(e) == "patterns: no n:m runs to fit"


def test_family_fits_on_the_bounds_say_so_and_keep_cs_non_negative():
    # k above A at both sparsities (structure worse than dense): aS = 0, cS = A
    groups = {"2:4": runs("2:4", 9.0), "1:4": runs("1:4", 9.5)}
    fitted = fit_patterns(groups, FitOptions(form="nm", base=Law("sparse", dict(BASE))), n_boot=0)
    why = (
        "the family fit stopped at the bound aS = 0 (cS = A): with A kept from the base, "
        "no interior aS fits better"
    )
    assert fitted.points["2:4"]["aS"] == pytest.approx(0.0, abs=1e-9)
    assert fitted.undetermined["2:4"]["aS"] == why and fitted.undetermined["1:4"]["cS"] == why
    # k far below A (1-S)^bS for every bS: aS = A, and cS = A - aS = 0 (not below, not 1)
    # (aS = 1.3 A, bS = 1, cS = -0.3 A: k = 0.35 A at S = 1/2, 0.025 A at 3/4; with aS = A,
    # k(3/4) = k(1/2)^2 / A = 0.1225 A at best)
    groups = {"2:4": runs("2:4", 0.35 * A), "1:4": runs("1:4", 0.025 * A)}
    pt = fit_patterns(groups, FitOptions(form="nm", base=Law("sparse", dict(BASE))), n_boot=0)
    assert pt.points["2:4"]["aS"] == pytest.approx(A, rel=1e-9)
    assert 0.0 <= pt.points["2:4"]["cS"] < 1e-6


def test_fit_patterns_passes_its_delta():
    noise = np.array([0.0, 0.01, -0.01, 0.4, 0.005, -0.002])
    r = runs("2:4", 5.0, noise)
    base = Law("sparse", dict(BASE))
    got = fit_patterns({"2:4": r}, FitOptions(form="nm", base=base, delta=0.5), n_boot=0)
    assert got.points["2:4"]["k"] == pytest.approx(brute_force_k(r, 0.5), rel=1e-6)


def point_base_law(name: str = "") -> Law:
    return Law("sparse", dict(BASE), units={"N": "nz", "D": "steps"}, name=name,
               tokens_per_unit=512.0)  # fmt: skip


def law_with_draws(rows) -> Law:
    law = Law("sparse", dict(BASE))
    law.uncertainty = Uncertainty(
        "sparse", np.array(rows, dtype=float), FitRange((1e4, 1e5), (1e6, 1e7), 0.5),
        ModelError(0.004, 0.01),
    )  # fmt: skip
    return law


def draw_row(**k):
    return [{**BASE, **k}[n] for n in ("aS", "bS", "cS", "bN", "aD", "bD", "c")]


def test_bootstrap_counts_pairs_and_skips_failed_draws():
    groups = family_runs(5.0, 1.5)
    opts = FitOptions(form="nm", base=law_with_draws([draw_row()] * 2))
    e = error_text(fit_patterns, groups, opts, n_boot=1)
    assert e.param == "n_boot" and str(e) == "n_boot: need at least 2 resamples, got 1"
    # two draws are enough for an uncertainty
    two = fit_patterns(groups, opts, n_boot=2)
    assert two.laws["2:4"].uncertainty.draws.shape == (2, 7)
    # base draw 0 has A = 0 (no box for k): every refit on it fails and is left out, the others
    # stay; draw b refits on base draw b mod 3
    rows = [draw_row(aS=0.0, cS=0.0), draw_row(bN=0.31), draw_row(bN=0.29)]
    base = law_with_draws(rows)
    fitted = fit_patterns(groups, FitOptions(form="nm", base=base), n_boot=5)
    law = fitted.laws["1:4"]
    assert law.fit == {"base_draw_index": [1, 2, 1]}
    assert law.uncertainty.draws[:, 3].tolist() == [0.31, 0.29, 0.31]  # their bases' bN
    assert fitted.base_uncertainty is True and fitted.n_boot == 5
    # a point base: no pairing recorded, and no model error of its own
    point = fit_patterns(groups, FitOptions(form="nm", base=point_base_law()), n_boot=3)
    law = point.laws["2:4"]
    assert law.fit is None and point.base_uncertainty is False
    assert law.uncertainty.model_error == ModelError(0.0, 0.0)
    assert law.uncertainty.source == "paired bootstrap on the base law, 2:4 runs"
    assert law.uncertainty.fit_range == FitRange((1e4, 1.6e5), (1e6, 4e6), 0.5)
    assert law.uncertainty.form == "nm"
    assert law.name == "base + 2:4" and law.units == {"N": "nz", "D": "steps"}
    assert law.tokens_per_unit == 512.0
    assert (
        fit_patterns(groups, FitOptions(form="nm", base=point_base_law("u")), n_boot=0)
        .laws["1:4"]
        .name
        == "u + 1:4"
    )


def test_bootstrap_resamples_every_run_of_a_pattern():
    # a lone pattern of two runs made with different k: each draw refits on counts (2, 0),
    # (0, 2) or (1, 1), so its k is one of three values, and a seeded run of 12 draws meets all
    N, D = np.array([1e4, 1e5]), np.array([1e6, 1e6])
    y = np.array([loss_at(4.0, N[0], D[0]), loss_at(7.0, N[1], D[1])])
    r = PatternRuns("2:4", 0.5, N, D, y)
    allowed = set()
    for c in ([2, 0], [0, 2], [1, 1]):
        coefs = one_sparsity_coefficients(BASE, fit_factor(Q, r, counts=c), 0.5)
        allowed.add((round(coefs["aS"], 6), round(coefs["cS"], 6)))
    fitted = fit_patterns({"2:4": r}, FitOptions(form="nm", base=point_base_law(), seed=3), 12)
    got = {(round(a, 6), round(c, 6)) for a, c in fitted.laws["2:4"].uncertainty.draws[:, [0, 2]]}
    assert got == allowed and len(allowed) == 3


def test_intervals_are_percentiles_at_the_level():
    rng = np.random.default_rng(2)
    groups = {
        p: runs(p, float(family_factor(A, 5.0, 1.5, pattern_sparsity(p))),
                0.03 * rng.standard_normal(6))
        for p in ("2:4", "1:4")
    }  # fmt: skip
    fitted = fit_patterns(groups, FitOptions(form="nm", base=point_base_law()), 9, level=0.5)
    draws = fitted.laws["2:4"].uncertainty.draws
    for j, n in enumerate(("aS", "bS", "cS")):
        assert fitted.intervals["2:4"][n] == pytest.approx(
            tuple(np.percentile(draws[:, j], [25, 50, 75])), rel=1e-12
        )
    assert fitted.level == 0.5 and set(fitted.intervals["2:4"]) == {"aS", "bS", "cS", *QUANTITIES}
    d = fitted.to_dict()
    assert d["level"] == 0.5 and d["n_boot"] == 9
    q = d["patterns"]["2:4"]["quantities"]["bS"]
    iv = fitted.intervals["2:4"]["bS"]
    assert q == {
        "value": fitted.points["2:4"]["bS"],
        "low": iv[0],
        "median": iv[1],
        "high": iv[2],
    }


def test_to_dict_word_for_word():
    fitted = fit_patterns(
        {"2:8": runs("2:8", 6.0)}, FitOptions(form="nm", base=Law("sparse", dict(BASE))), n_boot=0
    )
    d = fitted.to_dict()
    assert d["method"] == (
        "n:m patterns as refits on a fixed dense base (paper section 1: keep bN, aD, bD, c and "
        "A = aS + cS of the unstructured law, refit aS, bS, cS)."
    )
    assert d["quantities"] == {
        "k": "N-term factor k at the pattern's S (its runs determine it on a given base; across "
        "the base's draws it moves with bN, so read it through k_ratio and the equivalent "
        "dense size)",
        "k_unstructured": "the base law's N-term factor for unstructured pruning at the same S",
        "k_ratio": "k / k_unstructured: above 1, the pattern's N-term is larger (worse) than "
        "unstructured",
        "equivalent_dense_size": "(A / k)^(1/bN): dense parameters per non-zero with the same "
        "N-term",
        "unstructured_equivalent_dense_size": "(A / k_unstructured)^(1/bN) at the same S",
    }
    assert d["base"] == Q and d["level"] == 0.95 and d["n_boot"] == 0
    assert d["intervals_include_base_uncertainty"] is False
    e = d["patterns"]["2:8"]
    pt = fitted.points["2:8"]
    assert e["sparsity"] == 0.75 and e["family"] == "n:8" and e["n_runs"] == 6
    assert e["law"] == fitted.laws["2:8"].to_dict()
    assert e["undetermined"] == dict.fromkeys(("aS", "bS", "cS"), ONE_S_REASON)
    names = ("aS", "bS", "cS", "k", "k_unstructured", "k_ratio", "equivalent_dense_size",
             "unstructured_equivalent_dense_size")  # fmt: skip
    assert e["quantities"] == {n: {"value": pt[n]} for n in names}


# ---------------------------------------------------------------------------
# load_pattern_laws: what it accepts and every refusal
# ---------------------------------------------------------------------------
def saved_section():
    fitted = fit_patterns(
        family_runs(5.0, 1.5), FitOptions(form="nm", base=Law("sparse", dict(BASE))), n_boot=0
    )
    return fitted.to_dict()


def test_load_accepts_the_section_or_the_law_file_and_tolerates_rounding():
    sec = saved_section()
    base = Law("sparse", dict(BASE))
    laws = load_pattern_laws(sec, base)
    assert list(laws) == ["2:4", "1:4"] and laws["2:4"].form == "nm"
    assert laws["1:4"]["bS"] == pytest.approx(1.5, rel=1e-7)
    assert set(load_pattern_laws({"pattern_laws": sec, "form": "sparse"}, base)) == {"2:4", "1:4"}
    # the base's aS and cS apart do not matter, only A = aS + cS
    assert set(load_pattern_laws(sec, Law("sparse", {**BASE, "aS": 4.0, "cS": 4.0}))) == {
        "2:4",
        "1:4",
    }
    # within a relative 1e-6 the same base (a file rounded to seven digits), beyond it another
    assert load_pattern_laws(sec, Law("sparse", {**BASE, "bN": 0.3 * (1 + 0.9e-6)}))
    e = error_text(load_pattern_laws, sec, Law("sparse", {**BASE, "bN": 0.3 * (1 + 1.5e-6)}))
    assert str(e) == (
        "pattern laws: the pattern laws were fitted on another base law (bN = 0.3 there, "
        "0.3 in the base law given)"
    )
    e = error_text(load_pattern_laws, sec, Law("sparse", {**BASE, "cS": 6.0}), "f.json")
    assert str(e) == (
        "f.json: the pattern laws were fitted on another base law (A = 8 there, 9 in the base "
        "law given)"
    )
    # a transposable spelling is keyed by its one spelling
    t = {**sec, "patterns": {"2:4t": sec["patterns"]["2:4"]}}
    assert list(load_pattern_laws(t, base)) == ["2:4T"]
    assert str(error_text(load_pattern_laws, sec, None)).startswith("base: a pattern law is")


def test_load_refusals_word_for_word():
    sec = saved_section()
    base = Law("sparse", dict(BASE))
    none = (
        "f: holds no pattern laws (a 'pattern_laws' object with 'patterns'; `sparsescale "
        "report` writes it into law.json when the sweep has n:m runs)"
    )
    for obj in ([1], {"patterns": []}, {"patterns": {}}, {"form": "sparse"}):
        assert str(error_text(load_pattern_laws, obj, base, "f")) == none
    no_base = (
        "f: the pattern laws carry no base (bN, aD, bD, c, A): a pattern law is a refit on a "
        "dense base law and cannot be used without it"
    )
    for saved in (None, [], {**Q, "A": "8"}, {n: Q[n] for n in ("bN", "aD", "bD", "c")},
                  {**Q, "c": None}):  # fmt: skip
        assert str(error_text(load_pattern_laws, {**sec, "base": saved}, base, "f")) == no_base
    entry = sec["patterns"]["2:4"]

    def refusal(patterns):
        return str(error_text(load_pattern_laws, {**sec, "patterns": patterns}, base, "f"))

    assert refusal({"02:04": entry, "2:4": entry}) == (
        "f: patterns['2:4']: the same pattern as patterns['02:04']; keep one"
    )
    assert (
        refusal({"2:4": [1]}) == "f: patterns['2:4']: expected an object with 'sparsity' and 'law'"
    )
    assert refusal({"2:4": {**entry, "sparsity": True}}) == (
        "f: patterns['2:4']: 'sparsity' must be a number, got True"
    )
    assert refusal({"2:4": {**entry, "sparsity": "0.5"}}) == (
        "f: patterns['2:4']: 'sparsity' must be a number, got '0.5'"
    )
    sparse_law = {**entry, "law": Law("sparse", dict(BASE)).to_dict()}
    assert refusal({"2:4": sparse_law}) == (
        "f: patterns['2:4']: law form is 'sparse'; a pattern law has form 'nm'"
    )
    coefs = entry["law"]["coefficients"]
    for name, factor, ok in (("aD", 1 + 0.9e-6, True), ("aD", 1 + 1.5e-6, False),
                             ("c", 1.25, False)):  # fmt: skip
        law = {**entry["law"], "coefficients": {**coefs, name: coefs[name] * factor}}
        patterns = {"2:4": {**entry, "law": law}}
        if ok:
            assert (
                load_pattern_laws({**sec, "patterns": patterns}, base)["2:4"][name]
                == coefs[name] * factor
            )
        else:
            assert refusal(patterns) == (
                f"f: patterns['2:4']: coefficient {name} = {coefs[name] * factor:.6g} differs "
                f"from the base's {coefs[name]:.6g} (a pattern law keeps the base's)"
            )


def test_pattern_laws_defaults():
    # a result built by hand: no intervals, level 95%, no draws, no base uncertainty
    laws = PatternLaws(Q, {}, {}, {}, {}, {}, {})
    assert (laws.intervals, laws.level, laws.n_boot, laws.base_uncertainty) == ({}, 0.95, 0, False)
    assert PatternLaws(Q, {}, {}, {}, {}, {}, {}).intervals is not laws.intervals


def test_fit_patterns_draws_200_resamples_by_default():
    # the documented default, read off the signature: running it costs 200 refits
    import inspect

    params = inspect.signature(fit_patterns).parameters
    assert params["n_boot"].default == 200 and params["level"].default == 0.95
