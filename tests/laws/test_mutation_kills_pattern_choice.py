"""laws.pattern_choice against hand calculations (the mutation tests' kill file;
see docs/mutation.md): every choice's c_mul, data and loss under both
accountings, the paired differences as percentiles over draws computed here
from the law's formula, the pairing checks, and every message word for word.

Laws are written down, not fitted: L = (aS (1-S)^bS + cS) N^-bN + (aD/D)^bD + c."""

from __future__ import annotations

import numpy as np
import pytest

from sparsescale.errors import SparsescaleError
from sparsescale.laws.law import Law
from sparsescale.laws.pattern_choice import (
    Choice,
    choices,
    compare_choices,
    paired_difference,
    parse_speedups,
    reference_of,
)
from sparsescale.laws.uncertainty.intervals import FitRange, ModelError, Uncertainty

NAMES = ("aS", "bS", "cS", "bN", "aD", "bD", "c")
BASE = {"aS": 3.0, "bS": 0.8, "cS": 5.0, "bN": 0.3, "aD": 1e4, "bD": 0.4, "c": 0.1}
# the 2:4 law: A = aS + cS = 8 and bN, aD, bD, c kept; a strong structure (small k)
P24 = {**BASE, "aS": 6.0, "bS": 2.0, "cS": 2.0}
P14 = {**BASE, "aS": 6.5, "bS": 1.5, "cS": 1.5}
N_NZ, COMPUTE = 5e4, 6 * 5e4 * 2e6


def predict(k: dict, S, N, D):
    return (
        (k["aS"] * (1 - S) ** k["bS"] + k["cS"]) * N ** -k["bN"] + (k["aD"] / D) ** k["bD"] + k["c"]
    )


def with_draws(form: str, point: dict, draws: list[dict], fit=None) -> Law:
    law = Law(form, dict(point), fit=fit)
    law.uncertainty = Uncertainty(
        form,
        np.array([[d[n] for n in NAMES] for d in draws]),
        FitRange((1e4, 1e5), (1e6, 1e7), 0.75),
        ModelError(0.004, 0.01),
    )
    return law


BN_C = ((0.3, 0.1), (0.31, 0.12), (0.29, 0.08), (0.305, 0.11))
BASE_DRAWS = [{**BASE, "bN": b, "c": c} for b, c in BN_C]
# the pattern's draw i was refitted on base draw PAIRS[i]: it keeps that draw's bN and c
PAIRS = [2, 0, 3, 1]
P24_DRAWS = [
    {**P24, "aS": a, "bN": BASE_DRAWS[j]["bN"], "c": BASE_DRAWS[j]["c"]}
    for a, j in zip((6.0, 6.2, 5.7, 5.9), PAIRS)
]


def make_laws():
    base = with_draws("sparse", BASE, BASE_DRAWS)
    pats = {
        "1:4": Law("nm", dict(P14)),
        "2:4": with_draws("nm", P24, P24_DRAWS, fit={"base_draw_index": list(PAIRS)}),
    }
    return base, pats


def test_choices_and_their_references():
    base, _ = make_laws()
    laws = {p: Law("nm", dict(P24)) for p in ("1:8", "2:4T", "1:4", "2:4")}
    opts = choices(base, laws)
    assert [(c.name, c.sparsity, c.pattern) for c in opts] == [
        ("dense", 0.0, "dense"),
        ("unstructured 50%", 0.5, "unstructured"),
        ("unstructured 75%", 0.75, "unstructured"),
        ("unstructured 88%", 0.875, "unstructured"),  # 87.5% rounds to even
        ("2:4", 0.5, "2:4"),
        ("2:4T", 0.5, "2:4T"),
        ("1:4", 0.75, "1:4"),
        ("1:8", 0.875, "1:8"),
    ]
    assert all(c.law is base for c in opts[:4]) and opts[5].law is laws["2:4T"]
    by = {c.name: c for c in opts}
    assert reference_of(by["dense"], opts) is None
    assert reference_of(by["2:4T"], opts) is by["unstructured 50%"]
    assert reference_of(by["1:8"], opts) is by["unstructured 88%"]
    assert reference_of(by["unstructured 75%"], opts) is by["dense"]


def test_speedups_parsed_and_refused_word_for_word():
    # any factor > 0 is a speedup (a slowdown below 1)
    assert parse_speedups([" 2:4t = 1.5", "unstructured=0.5", "1:4=3", "1:8=1"]) == {
        "2:4T": 1.5,
        "unstructured": 0.5,
        "1:4": 3.0,
        "1:8": 1.0,
    }
    assert parse_speedups([]) == {}
    refusals = {
        "2:4": "speedup: expected PATTERN=FACTOR (e.g. 2:4=1.3), got '2:4'",
        "2:4=x": "speedup: '2:4=x': the factor must be a number",
        "2:4=1=2": "speedup: '2:4=1=2': the factor must be a number",
        "2:4=-1": "speedup: '2:4=-1': the factor must be a positive number",
        "2:4=0": "speedup: '2:4=0': the factor must be a positive number",
        "2:4=inf": "speedup: '2:4=inf': the factor must be a positive number",
        "2-4=1": "speedup: unknown pattern '2-4'; expected 'unstructured', n:m such as '2:4', "
        "or n:mT such as '2:4T'",
    }
    for item, message in refusals.items():
        with pytest.raises(SparsescaleError) as info:
            parse_speedups([item])
        assert str(info.value) == message
    with pytest.raises(SparsescaleError) as info:
        parse_speedups(["2:4=1", "02:04=2"], "--speedup")
    assert str(info.value) == "--speedup: 2:4 given twice"


def test_every_choice_priced_by_hand_under_both_accountings():
    base, pats = make_laws()
    cmp = compare_choices(
        base, pats, N_NZ, COMPUTE, {"2:4": 2.0, "unstructured": 4.0}, start=0.1, end=0.5, level=0.5
    )
    rows = {r["choice"]: r for r in cmp.rows}
    assert list(rows) == ["dense", "unstructured 50%", "unstructured 75%", "2:4", "1:4"]
    # equal FLOPs: c_mul = (1 - f S) / (1 - S), f = the 10%-50% cubic ramp's mean sparsity / S
    # = 0.4 * 3/4 + 0.5 = 0.8: S = 1/2 -> 0.6 / 0.5 = 1.2, S = 3/4 -> 0.4 / 0.25 = 1.6.
    # Equal time: unstructured at 4x, r(s) = 1 + (1/4 - 1) s / S, mean 0.1 + 0.4 (1 - 3/4 * 3/4)
    # + 0.5 / 4 = 0.4, c_mul = 0.4 / (1 - S): 0.8 at S = 1/2, 1.6 at 3/4; 2:4 at 2x only after
    # the ramp: (0.5 + 0.5 / 2) / 0.5 = 1.5; 1:4 at dense step time: 1 / (1 - 3/4) = 4.
    want = {
        "dense": (0.0, BASE, None, 1.0, 1.0),
        "unstructured 50%": (0.5, BASE, 4.0, 1.2, 0.8),
        "unstructured 75%": (0.75, BASE, 4.0, 1.6, 1.6),
        "2:4": (0.5, P24, 2.0, 1.2, 1.5),
        "1:4": (0.75, P14, None, 1.6, 4.0),
    }
    for name, (S, k, speedup, flops_cmul, time_cmul) in want.items():
        row = rows[name]
        assert (row["sparsity"], row["speedup"]) == (S, speedup)
        for acc, cm in (("flops", flops_cmul), ("time", time_cmul)):
            data = COMPUTE / (6 * N_NZ * cm)
            assert row[acc]["c_mul"] == pytest.approx(cm, rel=1e-12)
            assert row[acc]["data"] == pytest.approx(data, rel=1e-12)
            assert row[acc]["loss"] == pytest.approx(predict(k, S, N_NZ, data), rel=1e-12)
    assert rows["2:4"]["pattern"] == "2:4" and rows["unstructured 75%"]["pattern"] == "unstructured"
    # an interval where the law has an uncertainty, at the level asked for
    for name, law in (("2:4", pats["2:4"]), ("dense", base)):
        S, d = rows[name]["sparsity"], rows[name]["time"]["data"]
        lo, hi = law.uncertainty.loss_interval(law, S, N_NZ, d, 0.5)
        assert rows[name]["time"]["interval"] == [pytest.approx(lo), pytest.approx(hi)]
    assert "interval" not in rows["1:4"]["flops"]
    # the best choice of each accounting: the least loss, worked out from the formula
    for acc in ("flops", "time"):
        losses = {n: predict(w[1], w[0], N_NZ, COMPUTE / (6 * N_NZ * w[3 if acc == "flops" else 4]))
                  for n, w in want.items()}  # fmt: skip
        assert cmp.best[acc] == min(losses, key=losses.get)
    assert cmp.best == {"flops": "1:4", "time": "2:4"}
    assert cmp.to_dict() == {
        "n_nonzero": N_NZ,
        "compute": COMPUTE,
        "choices": cmp.rows,
        "best": cmp.best,
    }


def test_paired_differences_are_percentiles_over_paired_draws():
    base, pats = make_laws()
    cmp = compare_choices(
        base, pats, N_NZ, COMPUTE, {"2:4": 2.0, "unstructured": 4.0}, start=0.1, end=0.5, level=0.5
    )
    rows = {r["choice"]: r for r in cmp.rows}
    assert "vs" not in rows["dense"]["flops"] and "vs" not in rows["dense"]["time"]
    for acc in ("flops", "time"):
        # 2:4 against unstructured at S = 1/2: pattern draw i minus base draw PAIRS[i]
        mine, theirs = rows["2:4"][acc], rows["unstructured 50%"][acc]
        diff = [
            predict(P24_DRAWS[i], 0.5, N_NZ, mine["data"])
            - predict(BASE_DRAWS[PAIRS[i]], 0.5, N_NZ, theirs["data"])
            for i in range(4)
        ]
        vs = mine["vs"]
        assert vs["reference"] == "unstructured 50%"
        assert vs["difference"] == pytest.approx(mine["loss"] - theirs["loss"], rel=1e-12)
        assert vs["interval"] == pytest.approx(list(np.percentile(diff, [25, 75])), rel=1e-9)
        # unstructured against dense: the same law, draw i with draw i
        mine, theirs = rows["unstructured 75%"][acc], rows["dense"][acc]
        diff = [
            predict(d, 0.75, N_NZ, mine["data"]) - predict(d, 0.0, N_NZ, theirs["data"])
            for d in BASE_DRAWS
        ]
        assert mine["vs"]["reference"] == "dense"
        assert mine["vs"]["interval"] == pytest.approx(list(np.percentile(diff, [25, 75])))
        # 1:4 has no draws: a difference, no interval
        assert rows["1:4"][acc]["vs"]["reference"] == "unstructured 75%"
        assert "interval" not in rows["1:4"][acc]["vs"]


def test_defaults_and_unknown_speedups():
    base, pats = make_laws()
    rows = {r["choice"]: r for r in compare_choices(base, pats, N_NZ, COMPUTE).rows}
    # the 25%-75% ramp: f = 0.5 * 3/4 + 0.25 = 0.625, c_mul(1/2) = (1 - 0.3125) / 0.5 = 1.375;
    # no speedups: dense step time, 1 / (1 - S)
    assert rows["2:4"]["flops"]["c_mul"] == pytest.approx(1.375, rel=1e-12)
    assert rows["2:4"]["time"]["c_mul"] == pytest.approx(2.0, rel=1e-12)
    assert rows["2:4"]["speedup"] is None
    law = pats["2:4"]
    d = rows["2:4"]["flops"]["data"]
    lo, hi = law.uncertainty.loss_interval(law, 0.5, N_NZ, d, 0.95)
    assert rows["2:4"]["flops"]["interval"] == [pytest.approx(lo), pytest.approx(hi)]
    theirs = rows["unstructured 50%"]["flops"]["data"]
    diff = [
        predict(P24_DRAWS[i], 0.5, N_NZ, d) - predict(BASE_DRAWS[PAIRS[i]], 0.5, N_NZ, theirs)
        for i in range(4)
    ]
    assert rows["2:4"]["flops"]["vs"]["interval"] == pytest.approx(
        list(np.percentile(diff, [2.5, 97.5])), rel=1e-9
    )
    with pytest.raises(SparsescaleError) as info:
        compare_choices(base, pats, N_NZ, COMPUTE, {"4:8": 1.2})
    assert str(info.value) == "speedup: 4:8 is not among the choices (1:4, 2:4, unstructured)"
    # dense is the unit of step time: a speedup for it would be shown and never applied
    with pytest.raises(SparsescaleError) as info:
        compare_choices(base, pats, N_NZ, COMPUTE, {"dense": 2.0})
    assert str(info.value) == "speedup: dense is not among the choices (1:4, 2:4, unstructured)"
    with pytest.raises(SparsescaleError, match="level"):
        compare_choices(base, pats, N_NZ, COMPUTE, level=1.5)


def test_pairing_is_refused_unless_it_indexes_this_bases_draws():
    base, pats = make_laws()
    law = pats["2:4"]
    choice, ref = (
        Choice("2:4", 0.5, "2:4", law),
        Choice("unstructured 50%", 0.5, "unstructured", base),
    )
    assert paired_difference(choice, ref, N_NZ, 1e6, 1e6, 0.5) is not None
    for fit in (None, {}, {"base_draw_index": [0, 1, 2]}, {"base_draw_index": [0.0, 1.0, 2.0, 3.0]},
                {"base_draw_index": [-1, 0, 1, 2]}, {"base_draw_index": [0, 1, 2, 4]}):  # fmt: skip
        law.fit = fit
        assert paired_difference(choice, ref, N_NZ, 1e6, 1e6, 0.5) is None, fit
    # an index with 0 and with B - 1 = 3 is valid
    law.fit = {"base_draw_index": [0, 0, 3, 3]}
    diff = [
        predict(P24_DRAWS[i], 0.5, N_NZ, 1e6) - predict(BASE_DRAWS[j], 0.5, N_NZ, 2e6)
        for i, j in enumerate([0, 0, 3, 3])
    ]
    got = paired_difference(choice, ref, N_NZ, 1e6, 2e6, 0.5)
    assert got == pytest.approx(tuple(np.percentile(diff, [25, 75])), rel=1e-9)
    plain = Choice("1:4", 0.75, "1:4", Law("nm", dict(P14)))
    assert paired_difference(plain, ref, N_NZ, 1e6, 1e6, 0.5) is None
    point = Choice("d", 0.0, "dense", Law("sparse", BASE))
    assert paired_difference(choice, point, N_NZ, 1e6, 1e6, 0.5) is None
