"""n:m pattern refits on a fixed dense base (laws.nm_patterns) and the pattern
choice (laws.pattern_choice), on synthetic runs made from known laws."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sparsescale.errors import SparsescaleError
from sparsescale.laws.forms import get_form
from sparsescale.laws.law import Law
from sparsescale.laws.nm_patterns import (
    families_of,
    fit_factor,
    fit_family,
    fit_patterns,
    group_patterns,
    load_pattern_laws,
    pattern_sparsity,
)
from sparsescale.laws.pattern_choice import compare_choices, parse_speedups
from sparsescale.laws.points import FitOptions, Points
from sparsescale.laws.uncertainty.intervals import FitRange, ModelError, Uncertainty
from sparsescale.units import parse_pattern

BASE = {"aS": 30.0, "bS": 0.8, "cS": 50.0, "bN": 0.3, "aD": 1e4, "bD": 0.4, "c": 1.0}
A = BASE["aS"] + BASE["cS"]
TRUTH = {4: (20.0, 1.5), 8: (25.0, 0.6)}  # per m: (aS, bS) of the family, cS = A - aS
N_GRID, D_GRID = [1e4, 2e4, 4e4, 8e4], [4e5, 8e5, 1.6e6]


def family_law(m: int) -> Law:
    aS, bS = TRUTH[m]
    return Law("sparse", {**BASE, "aS": aS, "bS": bS, "cS": A - aS})


def synthetic(patterns, noise: float = 0.0, seed: int = 0):
    """Runs of each pattern over the N x D grid, loss from its family's law
    (times exp(noise * normal) when noise > 0)."""
    rng = np.random.default_rng(seed)
    NN, DD = (a.ravel() for a in np.meshgrid(N_GRID, D_GRID))
    rows = {"pattern": [], "S": [], "N": [], "D": [], "L": []}
    for p in patterns:
        s = pattern_sparsity(p)
        loss = family_law(parse_pattern(p)[1]).predict(s, NN, DD) * np.exp(
            noise * rng.standard_normal(NN.size)
        )
        for key, vals in (
            ("pattern", [p] * NN.size),
            ("S", [s] * NN.size),
            ("N", NN),
            ("D", DD),
            ("L", loss),
        ):
            rows[key] += list(vals)
    return group_patterns(
        Points(rows["S"], rows["N"], rows["D"], rows["L"], pattern=rows["pattern"])
    )


def base_with_draws(n: int = 40, spread: float = 0.02, seed: int = 1) -> Law:
    """The base law carrying bootstrap-like draws (coefficients perturbed by `spread` in log)."""
    rng = np.random.default_rng(seed)
    names = get_form("sparse").coefficients
    draws = np.array(
        [[BASE[k] * math.exp(spread * rng.standard_normal()) for k in names] for _ in range(n)]
    )
    law = Law(
        "sparse", dict(BASE), units={"N": "non-zero parameters", "D": "tokens"}, tokens_per_unit=1.0
    )
    law.uncertainty = Uncertainty(
        "sparse", draws, FitRange((1e4, 8e4), (4e5, 1.6e6), 0.75), ModelError(0.004, 0.01)
    )
    return law


def test_detection_groups_patterns_and_names_a_bad_row():
    groups = group_patterns(
        Points(
            [0.5, 0.5, 0.0, 0.75, 0.5],
            [1, 2, 3, 4, 5],
            [10] * 5,
            [3.0] * 5,
            pattern=["unstructured", "2:4", None, "1:4", "2:4"],
        )
    )
    assert list(groups) == ["2:4", "1:4"]  # unstructured and None are not patterns; ordered by S
    assert groups["2:4"].n_nonzero.tolist() == [2.0, 5.0] and groups["1:4"].sparsity == 0.75
    with pytest.raises(
        SparsescaleError,
        match=r"row 2: pattern: 2:4 fixes S = 1 - 2/4 = 0.5, incompatible with sparsity 0.75",
    ):
        group_patterns(
            Points([0.5, 0.75], [1, 2], [1, 1], [3.0, 3.0], pattern=["unstructured", "2:4"])
        )
    with pytest.raises(SparsescaleError, match="row 1: unknown pattern '2-4'"):
        group_patterns(Points([0.5], [1], [1], [3.0], pattern=["2-4"]))
    with pytest.raises(SparsescaleError, match="need 0 < n < m"):
        pattern_sparsity("4:2")


def test_families_recover_known_coefficients_and_per_pattern_factors_are_closed_form():
    fitted = fit_patterns(
        synthetic(["2:4", "1:4", "4:8", "2:8"]),
        FitOptions(form="nm", base=Law("sparse", dict(BASE))),
        n_boot=0,
    )
    for p, pt in fitted.points.items():
        s, m = pattern_sparsity(p), int(p.split(":")[1])
        aS, bS = TRUTH[m]
        assert pt["aS"] == pytest.approx(aS, rel=1e-6) and pt["bS"] == pytest.approx(bS, rel=1e-6)
        assert pt["cS"] == pytest.approx(A - aS, rel=1e-6)  # A = aS + cS kept from the base
        k = aS * (1 - s) ** bS + A - aS
        ku = BASE["aS"] * (1 - s) ** BASE["bS"] + BASE["cS"]
        assert pt["k"] == pytest.approx(k, rel=1e-8) and pt["k_ratio"] == pytest.approx(
            k / ku, rel=1e-8
        )
        assert pt["equivalent_dense_size"] == pytest.approx((A / k) ** (1 / BASE["bN"]), rel=1e-7)
        assert {pt[n] for n in ("bN", "aD", "bD", "c")} <= set(BASE.values())
        assert fitted.undetermined[p] == {}  # two sparsities per family: aS, bS, cS identified
        # the pattern's law reproduces its runs exactly
        law = fitted.laws[p]
        assert law.form == "nm" and law.predict(s, 3e4, 1e6) == pytest.approx(
            family_law(m).predict(s, 3e4, 1e6), rel=1e-8
        )


def test_joint_family_fit_equals_the_closed_form_from_two_factors_on_noisy_runs():
    """With A fixed and two sparsities (1/2 and 3/4), k1 = A - aS (1 - u), k2 = A - aS (1 - u^2),
    u = (1/2)^bS, so u = (A - k2) / (A - k1) - 1 and aS = (A - k1) / (1 - u): the joint fit is
    a reparametrisation of the two per-pattern factors, so it must land there."""
    groups = synthetic(["2:4", "1:4"], noise=0.01, seed=3)
    base = {**{k: BASE[k] for k in ("bN", "aD", "bD", "c")}, "A": A}
    k1, k2 = fit_factor(base, groups["2:4"]), fit_factor(base, groups["1:4"])
    u = (A - k2) / (A - k1) - 1
    assert 0 < u < 1
    aS, bS = fit_family(base, [groups["2:4"], groups["1:4"]])
    assert aS == pytest.approx((A - k1) / (1 - u), rel=1e-4) and bS == pytest.approx(
        -math.log2(u), rel=1e-4
    )


def test_a_transposable_pattern_is_its_own_pattern_and_family():
    """2:4T shares S = 0.5 and m = 4 with 2:4 but is another structure: its
    runs are grouped apart, and it does not join the n:4 family (which would
    otherwise mix two structures into one aS, bS)."""
    plain = synthetic(["2:4", "1:4"])
    t = plain["2:4"]
    rows = {"pattern": [], "S": [], "N": [], "D": [], "L": []}
    # the 2:4 runs again as 2:4T runs whose constraint costs 1% of the loss
    for name, r, factor in [(r.pattern, r, 1.0) for r in plain.values()] + [("2:4t", t, 1.01)]:
        rows["pattern"] += [name] * r.loss.size
        rows["S"] += [r.sparsity] * r.loss.size
        rows["N"] += list(r.n_nonzero)
        rows["D"] += list(r.data)
        rows["L"] += list(r.loss * factor)
    groups = group_patterns(
        Points(rows["S"], rows["N"], rows["D"], rows["L"], pattern=rows["pattern"])
    )
    assert sorted(groups) == ["1:4", "2:4", "2:4T"] and groups["2:4T"].sparsity == 0.5
    assert {k: [r.pattern for r in v] for k, v in families_of(groups).items()} == {
        "n:4": ["2:4", "1:4"],
        "n:4T": ["2:4T"],
    }
    fitted = fit_patterns(groups, FitOptions(form="nm", base=Law("sparse", dict(BASE))), n_boot=0)
    assert fitted.family["2:4T"] == "n:4T" and set(fitted.undetermined["2:4T"]) == {
        "aS",
        "bS",
        "cS",
    }
    assert not fitted.undetermined["2:4"]  # the plain family keeps its two sparsities
    assert fitted.points["2:4T"]["k"] > fitted.points["2:4"]["k"]


def test_a_lone_pattern_determines_only_its_factor():
    fitted = fit_patterns(
        synthetic(["2:4"]), FitOptions(form="nm", base=Law("sparse", dict(BASE))), n_boot=0
    )
    pt, law = fitted.points["2:4"], fitted.laws["2:4"]
    k = TRUTH[4][0] * 0.5 ** TRUTH[4][1] + A - TRUTH[4][0]
    assert pt["k"] == pytest.approx(k, rel=1e-8)
    assert set(fitted.undetermined["2:4"]) == {"aS", "bS", "cS"}
    assert "one sparsity" in fitted.undetermined["2:4"]["bS"]
    # shown with the unstructured bS and A kept, exact at the pattern's own S
    assert pt["bS"] == BASE["bS"] and pt["aS"] + pt["cS"] == pytest.approx(A)
    assert law.predict(0.5, 2e4, 8e5) == pytest.approx(
        family_law(4).predict(0.5, 2e4, 8e5), rel=1e-8
    )


def test_paired_bootstrap_carries_base_uncertainty_and_the_pattern_noise():
    k_true = TRUTH[4][0] * 0.5 ** TRUTH[4][1] + A - TRUTH[4][0]
    point_base = Law("sparse", dict(BASE))
    # no base draws: only the runs' noise moves k; exact runs leave nothing to move
    exact = fit_patterns(
        synthetic(["2:4", "1:4"]), FitOptions(form="nm", base=point_base), n_boot=30
    ).intervals["2:4"]["k"]
    assert exact[2] - exact[0] < 1e-6 * k_true
    lo, _, hi = fit_patterns(
        synthetic(["2:4", "1:4"], noise=0.02), FitOptions(form="nm", base=point_base), n_boot=60
    ).intervals["2:4"]["k"]
    assert lo < k_true < hi and hi - lo > 1e-3 * k_true
    # base draws: each refit keeps its draw's bN, aD, bD, c, so exact runs still get an interval
    base = base_with_draws()
    fitted = fit_patterns(
        synthetic(["2:4", "1:4"]), FitOptions(form="nm", base=base, seed=0), n_boot=30
    )
    lo, _, hi = fitted.intervals["2:4"]["k"]
    assert hi - lo > 1e-3 * k_true
    unc = fitted.laws["2:4"].uncertainty
    assert unc.draws.shape == (30, 7) and unc.model_error.floor == 0.004
    assert set(np.round(unc.draws[:, 3], 12)) <= set(np.round(base.uncertainty.draws[:, 3], 12))
    with pytest.raises(SparsescaleError, match="base: a pattern law is a refit on a dense base"):
        fit_patterns(synthetic(["2:4"]), FitOptions(form="nm", base=None))


def test_pattern_laws_round_trip_and_refuse_another_or_no_base():
    base = base_with_draws()
    obj = {
        "pattern_laws": fit_patterns(
            synthetic(["2:4", "1:4"]), FitOptions(form="nm", base=base), n_boot=20
        ).to_dict()
    }
    laws = load_pattern_laws(obj, base, "law.json")
    assert set(laws) == {"2:4", "1:4"} and laws["1:4"].uncertainty.draws.shape == (20, 7)
    other = Law("sparse", {**BASE, "bN": 0.31})
    with pytest.raises(
        SparsescaleError, match=r"law.json: the pattern laws were fitted on another base law \(bN"
    ):
        load_pattern_laws(obj, other, "law.json")
    no_base = {"pattern_laws": {k: v for k, v in obj["pattern_laws"].items() if k != "base"}}
    with pytest.raises(SparsescaleError, match="carry no base"):
        load_pattern_laws(no_base, base, "law.json")
    bad = {
        "pattern_laws": {
            **obj["pattern_laws"],
            "patterns": {"2:4": {**obj["pattern_laws"]["patterns"]["2:4"], "sparsity": 0.75}},
        }
    }
    with pytest.raises(
        SparsescaleError,
        match=r"patterns\['2:4'\]: 2:4 fixes S = 1 - 2/4 = 0.5, incompatible with sparsity 0.75",
    ):
        load_pattern_laws(bad, base, "law.json")
    with pytest.raises(SparsescaleError, match="holds no pattern laws"):
        load_pattern_laws({"form": "sparse"}, base, "law.json")


def test_choice_prices_each_option_in_closed_form():
    base = Law("sparse", dict(BASE), tokens_per_unit=1.0)
    pats = fit_patterns(synthetic(["2:4", "1:4"]), FitOptions(form="nm", base=base), n_boot=0).laws
    n, c = 5e4, 6 * 5e4 * 2e6
    cmp = compare_choices(base, pats, n, c, {"2:4": 1.3}, start=0.25, end=0.75)
    rows = {r["choice"]: r for r in cmp.rows}
    assert list(rows) == ["dense", "unstructured 50%", "unstructured 75%", "2:4", "1:4"]
    f = 0.75 * 0.5 + 0.25  # the cubic 25%-75% ramp's mean sparsity / S
    for name, s in (("dense", 0.0), ("unstructured 75%", 0.75), ("1:4", 0.75), ("2:4", 0.5)):
        flops_cmul = 1.0 if s == 0 else (1 - f * s) / (1 - s)
        assert rows[name]["flops"]["data"] == pytest.approx(c / (6 * n * flops_cmul))
    law24 = pats["2:4"]
    # equal time: the 2:4 kernel (1.3x) only after the ramp ends at 75%; unstructured has no speedup
    # given
    d_time = c / (6 * n * (0.75 + 0.25 / 1.3) / 0.5)
    assert rows["2:4"]["time"]["data"] == pytest.approx(d_time)
    assert rows["2:4"]["time"]["loss"] == pytest.approx(float(law24.predict(0.5, n, d_time)))
    assert rows["unstructured 50%"]["time"]["data"] == pytest.approx(c / (6 * n / 0.5))
    assert cmp.best["flops"] == min(cmp.rows, key=lambda r: r["flops"]["loss"])["choice"]
    with pytest.raises(SparsescaleError, match="speedup: 4:8 is not among the choices"):
        compare_choices(base, pats, n, c, {"4:8": 1.2})


@pytest.mark.parametrize(
    "item, msg",
    [
        ("2:4", "expected PATTERN=FACTOR"),
        ("2:4=fast", "must be a number"),
        ("2:4=0", "positive"),
        ("2:4=nan", "positive"),
        ("3:2=1.2", "need 0 < n < m"),
    ],
)
def test_speedup_flags_are_validated(item, msg):
    with pytest.raises(SparsescaleError, match=msg):
        parse_speedups([item], "--speedup")
    assert parse_speedups(["2:4=1.3", "unstructured=1.1"]) == {"2:4": 1.3, "unstructured": 1.1}


def fitted_base(n_boot: int = 40, noise: float = 0.003, seed: int = 5) -> Law:
    """The base law as a report has it: fitted to noisy unstructured runs of BASE,
    carrying its bootstrap draws (draws that each fit those runs)."""
    from sparsescale.laws.fit import fit_law
    from sparsescale.laws.uncertainty.bootstrap import bootstrap

    rng = np.random.default_rng(seed)
    S, N, D = (a.ravel() for a in np.meshgrid([0.0, 0.5, 0.75], N_GRID, D_GRID))
    y = Law("sparse", dict(BASE)).predict(S, N, D) * np.exp(noise * rng.standard_normal(S.size))
    fit = fit_law(Points(S, N, D, y))
    draws = bootstrap(Points(S, N, D, y), n_boot=n_boot, reference=fit).samples
    law = fit.law
    law.uncertainty = Uncertainty(
        "sparse",
        np.column_stack([draws[k] for k in get_form("sparse").coefficients]),
        FitRange.of(S, N, D),
        ModelError(noise, 0.01),
    )
    return law


def test_pattern_minus_unstructured_is_paired_over_the_base_draws():
    # the base's uncertainty dominates (noisy unstructured runs, exact pattern runs): pairing
    # cancels it
    base = fitted_base(noise=0.01)
    pats = fit_patterns(synthetic(["2:4", "1:4"]), FitOptions(form="nm", base=base), n_boot=40).laws
    assert pats["2:4"].fit["base_draw_index"] == list(range(40))
    n, c = 5e4, 6 * 5e4 * 2e6
    rows = {r["choice"]: r for r in compare_choices(base, pats, n, c, level=0.9).rows}
    mine, ref = rows["2:4"]["flops"], rows["unstructured 50%"]["flops"]
    vs = mine["vs"]
    assert vs["reference"] == "unstructured 50%" and vs["difference"] == pytest.approx(
        mine["loss"] - ref["loss"]
    )
    lo, hi = vs["interval"]
    # the truth: 2:4's family law minus the base at the same N and D
    true_gap = float(
        family_law(4).predict(0.5, n, mine["data"])
        - Law("sparse", dict(BASE)).predict(0.5, n, mine["data"])
    )
    assert lo - 0.01 < true_gap < hi + 0.01
    # unpaired (draws matched at random) the difference is wider: pairing cancels the shared D term
    # and floor
    unc_p, unc_b = pats["2:4"].uncertainty, base.uncertainty
    mine_d = np.array(
        [float(d.predict(0.5, n, mine["data"])) for d in unc_p.draw_laws(pats["2:4"])]
    )
    ref_d = np.array([float(d.predict(0.5, n, ref["data"])) for d in unc_b.draw_laws(base)])
    shuffled = mine_d - np.random.default_rng(0).permutation(ref_d)
    assert hi - lo < 0.8 * (np.percentile(shuffled, 95) - np.percentile(shuffled, 5))
    assert (
        rows["unstructured 75%"]["time"]["vs"]["reference"] == "dense"
        and "vs" not in rows["dense"]["flops"]
    )
    pats["1:4"].fit = {"base_draw_index": [99] * 40}  # not draws of this base: no pairing claimed
    rows = {r["choice"]: r for r in compare_choices(base, pats, n, c).rows}
    assert "interval" not in rows["1:4"]["flops"]["vs"]


def test_a_family_fit_on_a_bound_says_so():
    """Runs whose N-term shrinks with S faster than A = aS + cS allows at cS >= 0
    (k(3/4) below A (1/4)^bS for every admissible bS near the data) push aS to A."""
    base = Law("sparse", dict(BASE))
    steep = Law(
        "sparse", {**BASE, "aS": A * 1.3, "bS": 1.0, "cS": 0.0}
    )  # not reachable with A kept
    NN, DD = (a.ravel() for a in np.meshgrid(N_GRID, D_GRID))
    pats, S, N, D, L = [], [], [], [], []
    for p in ("2:4", "1:4"):
        s = pattern_sparsity(p)
        pats += [p] * NN.size
        S += [s] * NN.size
        N += list(NN)
        D += list(DD)
        L += list(steep.predict(s, NN, DD) - 0.3 * A * NN ** -BASE["bN"])
    fitted = fit_patterns(
        group_patterns(Points(S, N, D, L, pattern=pats)), FitOptions(form="nm", base=base), n_boot=0
    )
    assert fitted.points["2:4"]["aS"] == pytest.approx(A, rel=1e-6)
    assert (
        set(fitted.undetermined["2:4"]) >= {"aS", "cS"}
        and "bound aS = A (cS = 0)" in fitted.undetermined["2:4"]["aS"]
    )
