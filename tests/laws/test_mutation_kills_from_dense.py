"""laws.from_dense, edge by edge: the tolerances, bounds, orderings, messages and
metadata the broader tests in test_pretrained.py leave open (each expected
value derived by hand in a comment, or from a brute-force reference)."""

import json
import math
import warnings

import numpy as np
import pytest

from sparsescale.errors import SparsescaleError
from sparsescale.laws import from_dense as pre
from sparsescale.laws.fit import fit_law
from sparsescale.laws.law import Law
from sparsescale.laws.points import FitOptions, Points
from sparsescale.laws.uncertainty.intervals import FitRange, ModelError, Uncertainty

TRUE = {"aS": 40.0, "bS": 0.8, "cS": 25.0, "bN": 0.35, "aD": 3.0e4, "bD": 0.3, "c": 1.0}


def pruned_law(fraction=(0.25, 0.5), **kw) -> Law:
    meta = {"from_dense": {"dense_fraction": list(fraction), "dense_prefixes": [4e5, 8e5]}}
    return Law(form="sparse", coefficients=dict(TRUE), fit=meta, tokens_per_unit=1.0, **kw)


def test_method_names_and_the_minimum_continuation():
    assert pre.METHODS == ("dense", "sparse from scratch", "pruned from dense")
    assert (pre.DENSE, pre.SCRATCH, pre.PRUNED) == pre.METHODS
    assert pre.MIN_CONTINUATION == 1e-3


def test_loss_at_compute_sorts_and_holds_its_ends_within_1e_9_in_log_compute():
    # L = 3 (C / 1e9)^-0.1, given out of order: sorted by compute before interpolating
    flops, loss = [4e9, 1e9], [3.0 * 4**-0.1, 3.0]
    assert pre.loss_at_compute(flops, loss, 2e9) == pytest.approx(3.0 * 2**-0.1, rel=1e-12)
    lo, hi = math.log(1e9), math.log(4e9)
    # 0.5e-9 outside an end (in log compute) still counts as that end; 1.5e-9 does not
    assert pre.loss_at_compute(flops, loss, math.exp(lo - 0.5e-9)) == pytest.approx(3.0)
    assert pre.loss_at_compute(flops, loss, math.exp(lo - 1.5e-9)) is None
    assert pre.loss_at_compute(flops, loss, math.exp(hi + 0.5e-9)) == pytest.approx(3 * 4**-0.1)
    assert pre.loss_at_compute(flops, loss, math.exp(hi + 1.5e-9)) is None
    # exactly 1e-9 outside an end (a compute whose log is the bound to the last bit, found
    # by stepping through the floats near it): still inside, the bound is inclusive
    for end, sign, expect in ((lo, -1, 3.0), (hi, 1, 3.0 * 4**-0.1)):
        bound = np.log([1e9, 4e9])[0 if sign < 0 else 1] + sign * 1e-9
        at0 = math.exp(bound)
        at = next(
            a for a in (at0 + k * np.spacing(at0) for k in range(-400, 400)) if math.log(a) == bound
        )
        assert pre.loss_at_compute(flops, loss, at) == pytest.approx(expect)
    # three runs: above the second run's compute, below the last's, still inside
    three = [1e9, 2e9, 4e9], [3.0, 3.0 * 2**-0.1, 3.0 * 4**-0.1]
    assert pre.loss_at_compute(*three, 3e9) == pytest.approx(3.0 * 3**-0.1, rel=1e-12)
    # no runs: None; one run: its own loss at its own compute
    assert pre.loss_at_compute([], [], 1e9) is None
    assert pre.loss_at_compute([2e9], [2.5], 2e9) == pytest.approx(2.5, rel=1e-12)
    assert isinstance(pre.loss_at_compute([2e9], [2.5], 2e9), float)


def _run(method, s, n, d, loss, flops, cont=None, **extra):
    return {
        "method": method,
        "sparsity": s,
        "n_target": n,
        "data": d,
        "loss": loss,
        "flops": flops,
        "flops_continuation": flops if cont is None else cont,
    } | extra


def test_equal_compute_table_selects_the_matching_series_and_sorts_its_rows():
    # scratch at S = 0.5, N = 100: L = 3 (C / 1e6)^-0.1 at C = 1e6, 4e6
    pts = [_run(pre.SCRATCH, 0.5, 100, d, 3.0 * (d / 1e5) ** -0.1, 10.0 * d) for d in (1e5, 4e5)]
    # decoys that must not be read: another N, S 1.5e-9 away, another method's name
    pts += [_run(pre.SCRATCH, 0.5, 200, d, 9.0, 10.0 * d) for d in (1e5, 4e5)]
    pts += [_run(pre.SCRATCH, 0.5 + 1.5e-9, 100, d, 9.0, 10.0 * d) for d in (1e5, 4e5)]
    # dense at N = 100: L = 4 (C / 1e6)^-0.1; a "dense" run at S exactly 1e-9 is not S = 0
    pts += [_run(pre.DENSE, 0.0, 100, d, 4.0 * (d / 1e5) ** -0.1, 10.0 * d) for d in (1e5, 4e5)]
    pts += [_run(pre.DENSE, 1e-9, 100, d, 9.0, 10.0 * d) for d in (1e5, 4e5)]
    # pruned runs, given in reverse of their order (S, N, D, dense prefix; none = 0):
    pruned = [
        _run(pre.PRUNED, 0.5, 100, 2e5, 2.6, 2e6, 1.5e6, dense_prefix=0.5),
        _run(pre.PRUNED, 0.5, 100, 2e5, 2.5, 2e6, 1.2e6),  # no prefix: sorts as 0
        _run(pre.PRUNED, 0.5, 100, 1e5, 2.7, 1e6, 1e6, dense_prefix=7.0),
    ]
    rows = pre.equal_compute_table(pts + pruned)
    assert [r["loss"] for r in rows] == [2.7, 2.5, 2.6]
    # the row of the run without a prefix, every key: at 2e6 FLOPs scratch reads
    # 3 * 2^-0.1, dense 4 * 2^-0.1; at its continuation's 1.2e6, scratch 3 * 1.2^-0.1
    assert rows[1] == {
        "sparsity": 0.5,
        "n_target": 100,
        "data": 2e5,
        "dense_prefix": None,
        "loss": 2.5,
        "flops": 2e6,
        "flops_continuation": 1.2e6,
        "scratch_loss": pytest.approx(3.0 * 2**-0.1, rel=1e-12),
        "dense_loss": pytest.approx(4.0 * 2**-0.1, rel=1e-12),
        "scratch_loss_at_continuation": pytest.approx(3.0 * 1.2**-0.1, rel=1e-12),
    }
    # 1e6 is the series' first run: exactly its loss
    assert rows[0]["scratch_loss"] == pytest.approx(3.0) and rows[0]["dense_loss"] == 4.0
    assert rows[2]["scratch_loss_at_continuation"] == pytest.approx(3.0 * 1.5**-0.1)
    # compute beyond the measured series: None, not an extrapolation
    far = _run(pre.PRUNED, 0.5, 100, 1e6, 2.0, 1e8, 5e7, dense_prefix=1.0)
    (row,) = pre.equal_compute_table(pts[:2] + [far])
    assert row["scratch_loss"] is None and row["dense_loss"] is None
    assert row["scratch_loss_at_continuation"] is None
    # only pruned runs make rows
    assert pre.equal_compute_table(pts) == []


def test_frontier_keeps_only_strict_improvements_by_increasing_compute():
    pts = [
        _run(pre.DENSE, 0.0, 1, 1, 3.0, 4.0),
        _run(pre.DENSE, 0.0, 1, 1, 3.5, 1.0),
        _run(pre.DENSE, 0.0, 1, 1, 3.5, 2.0),  # ties the best so far: not on the frontier
        _run(pre.DENSE, 0.0, 1, 1, 3.6, 3.0),  # worse than a cheaper run
        _run(pre.SCRATCH, 0.5, 1, 1, 1.0, 0.5),  # another method
    ]
    assert pre.frontier(pts, pre.DENSE) == [(1.0, 3.5), (4.0, 3.0)]
    assert pre.frontier(pts, pre.PRUNED) == []


def test_scratch_compute_for_loss_under_dense_flops_and_at_the_asymptote():
    law = pruned_law()
    n, s, d = 3e4, 0.5, 7e5
    target = float(law.predict(s, n, d))
    # dense accounting: C = 6 N D / (1 - S) = 6 * 3e4 * 7e5 * 2
    assert pre.scratch_compute_for_loss(law, s, n, target, "dense") == pytest.approx(
        6 * n * d * 2, rel=1e-9
    )
    # exactly the loss at infinite data: nothing left for the data term, inf (not a 0 division)
    assert pre.scratch_compute_for_loss(law, s, n, float(law.predict(s, n, np.inf))) == math.inf


def test_from_dense_info_reads_checks_and_quotes_the_fractions():
    base = dict(form="sparse", coefficients=dict(TRUE), name="mine")
    assert pre.from_dense_info(Law(**base)) is None
    assert pre.from_dense_info(Law(**base, fit={"objective": 1.0})) is None
    assert pre.from_dense_info(Law(**base, fit={"from_dense": [0.1, 0.2]})) is None
    assert pre.from_dense_info(Law(**base, fit={"from_dense": {"data": "x"}})) is None
    for ok in ([0, 1], [0.0, 0.0], [1.0, 1.0], [0.25, 0.5]):
        info = {"dense_fraction": ok, "n_pruned_runs": 3}
        assert pre.from_dense_info(Law(**base, fit={"from_dense": info})) == info
    long = [0.123456789] * 8
    for bad in ([0.5], [0.1, 0.2, 0.3], (0.1, 0.2), [True, 1], [0, False], [-0.1, 0.5],
                [0.5, 1.1], [0.6, 0.5], ["0.1", 0.2], long):  # fmt: skip
        law = Law(**base, fit={"from_dense": {"dense_fraction": bad}})
        msg = (
            "law mine: fit.from_dense.dense_fraction must be [low, high], two fractions with "
            f"0 <= low <= high <= 1, got {json.dumps(bad)[:60]}"
        )
        with pytest.raises(SparsescaleError) as exc:
            pre.from_dense_info(law)
        assert str(exc.value) == msg, bad
    # cut at 60 characters: "[0.123456789, 0.123456789, 0.123456789, 0.123456789, 0.12345"
    assert msg.endswith("got " + json.dumps(long)[:60]) and len(json.dumps(long)) > 61


def _plan(fraction, dense_fraction, intervals=None):
    kw = {} if intervals is None else {"intervals": intervals}
    return pre.FromDensePlan(
        n_params=1.0,
        dense_data=2.0,
        compute=3.0,
        flops="sparse",
        sparsity=0.5,
        n_nonzero=0.5,
        continue_data=4.0,
        total_data=6.0,
        dense_fraction=dense_fraction,
        loss=2.0,
        dense_continue_data=5.0,
        dense_loss=2.5,
        fitted_dense_fraction=fraction,
        **kw,
    )


def test_extrapolated_has_a_factor_1_25_of_slack_each_side():
    # fitted [0.25, 0.5]: inside [0.25 * 0.8, 0.5 * 1.25] = [0.2, 0.625], both ends included
    for f, out in ((0.2, False), (0.3, False), (0.55, False), (0.625, False),
                   (0.199, True), (0.626, True), (0.9, True)):  # fmt: skip
        assert _plan((0.25, 0.5), f).extrapolated is out, f
    plan = _plan((0.25, 0.5), 0.9)
    assert plan.intervals is None
    d = plan.to_dict()
    assert d["extrapolated"] is True and d["intervals"] is None
    assert d == {
        "n_params": 1.0,
        "dense_data": 2.0,
        "compute": 3.0,
        "flops": "sparse",
        "sparsity": 0.5,
        "n_nonzero": 0.5,
        "continue_data": 4.0,
        "total_data": 6.0,
        "dense_fraction": 0.9,
        "loss": 2.0,
        "dense_continue_data": 5.0,
        "dense_loss": 2.5,
        "fitted_dense_fraction": (0.25, 0.5),
        "intervals": None,
        "extrapolated": True,
    }


def test_continuation_data_uses_the_schedule_window():
    n, c = 1e5, 6e11
    # default window 25%-75%: f = 3/4 * 0.5 + 0.25 = 0.625, so at S = 0.5 the sparse
    # phase costs 6 n (1 - 0.3125) per token: D1 = 6e11 / (6e5 * 0.6875)
    assert pre.continuation_data(n, c, 0.5) == pytest.approx(1e6 / 0.6875, rel=1e-12)
    # window 10%-90%: f = 3/4 * 0.8 + 0.1 = 0.7, D1 = 1e6 / (1 - 0.35)
    assert pre.continuation_data(n, c, 0.5, "sparse", 0.1, 0.9) == pytest.approx(
        1e6 / 0.65, rel=1e-12
    )
    # dense accounting: every step costs 6 n, D1 = C / (6 n) at any S
    assert pre.continuation_data(n, c, 0.9, "dense") == pytest.approx(1e6, rel=1e-12)


def _brute_best(law, n, d0, c, flops="sparse", start=0.25, end=0.75):
    """argmin over S of the law along the budget: a grid of 20001, then 20001 points
    within one coarse cell either side (spacing 1e-8)."""

    def loss(S):
        return law.predict(S, n * (1 - S), d0 + pre.continuation_data(n, c, S, flops, start, end))

    S = np.linspace(0.0, 0.9995, 20001)
    s0 = S[np.argmin(loss(S))]
    fine = np.linspace(max(s0 - 1e-4, 0.0), s0 + 1e-4, 20001)
    return float(fine[np.argmin(loss(fine))])


def test_plan_is_refined_past_the_grid_and_honours_the_window():
    law = pruned_law()
    n, d0, c = 1e5, 8e5, 6 * 1e5 * 8e5
    for start, end in ((0.25, 0.75), (0.1, 0.9)):
        plan = pre.plan_from_dense(law, n, d0, c, start=start, end=end)
        ref = _brute_best(law, n, d0, c, "sparse", start, end)
        # the 4001-point grid alone is off by up to 1.2e-4; the refinement is not
        assert abs(plan.sparsity - ref) < 2e-7, (start, end)
        f = 0.75 * (end - start) + (1 - end)
        d1 = c / (6 * n * (1 - f * plan.sparsity))
        assert plan.continue_data == pytest.approx(d1, rel=1e-12)
        assert plan.total_data == pytest.approx(d0 + d1, rel=1e-12)
        assert plan.n_nonzero == pytest.approx(n * (1 - plan.sparsity), rel=1e-12)
        assert plan.loss == pytest.approx(
            float(law.predict(plan.sparsity, n * (1 - plan.sparsity), d0 + d1)), rel=1e-12
        )
        assert plan.dense_continue_data == pytest.approx(c / (6 * n), rel=1e-12)
        assert (plan.n_params, plan.dense_data, plan.compute) == (n, d0, c)
        assert plan.flops == "sparse" and plan.fitted_dense_fraction == (0.25, 0.5)
    assert pre.best_sparsity(law, n, d0, c, "sparse", 0.1, 0.9) == pytest.approx(ref, abs=2e-7)


def test_best_sparsity_in_the_first_and_last_cells_of_its_grid():
    # The grid's cells are 0.9995 / 4000 = 2.4988e-4 wide. cS = 55.99 puts the optimum at
    # S* = 1.6998e-4, inside the first cell, nearest grid point 1: the search bracket must
    # reach down to 0 (a fine grid of spacing 1e-9 is the reference, S* to within 1e-7)
    n, d0, c = 1e5, 8e5, 6 * 1e5 * 8e5

    def budget_loss(law, S):
        return law.predict(S, n * (1 - S), d0 + pre.continuation_data(n, c, S))

    law = Law(form="sparse", coefficients=dict(TRUE, cS=55.99))
    fine = np.linspace(0.0, 5e-4, 500001)
    ref = fine[np.argmin(budget_loss(law, fine))]
    assert 1.6e-4 < ref < 1.8e-4
    assert pre.best_sparsity(law, n, d0, c) == pytest.approx(ref, abs=1e-6)
    # cS = 0.129: S* = 0.999442, in the last cell (0.99925, 0.9995), nearest the grid's end:
    # the bracket must reach up to the last grid point, and no further
    law = Law(form="sparse", coefficients=dict(TRUE, cS=0.129))
    fine = np.linspace(0.9992, 0.9995, 300001)
    ref = fine[np.argmin(budget_loss(law, fine))]
    assert 0.99944 < ref < 0.99945
    assert pre.best_sparsity(law, n, d0, c) == pytest.approx(ref, abs=1e-6)
    # the defaults: sparse FLOPs, the 25%-75% window (the TRUE law's S* near 0.6)
    law = pruned_law()
    assert pre.best_sparsity(law, n, d0, c) == pytest.approx(_brute_best(law, n, d0, c), abs=2e-7)


def test_best_sparsity_raises_no_warning():
    # the bounded search is given only options it knows (scipy warns of an unknown one)
    law = pruned_law()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pre.best_sparsity(law, 1e5, 8e5, 6 * 1e5 * 8e5)


def test_best_sparsity_at_the_dense_end_of_the_grid():
    # a sparsity term that only hurts (cS huge, aS small): every S > 0 is worse, S = 0 wins
    law = Law(form="sparse", coefficients=dict(TRUE, cS=1e9, aS=1e-3, bS=0.5), fit=None)
    assert pre.best_sparsity(law, 1e5, 8e5, 6 * 1e5 * 8e5) == pytest.approx(0.0, abs=1e-9)


def test_plan_refuses_bad_inputs_word_for_word():
    law = pruned_law()
    for name, args in (
        ("n_params", (0.0, 8e5, 1e12)),
        ("dense_data", (1e5, -1.0, 1e12)),
        ("compute", (1e5, 8e5, math.inf)),
        ("compute", (1e5, 8e5, math.nan)),
        ("n_params", (math.inf, 8e5, 1e12)),
    ):
        with pytest.raises(SparsescaleError) as exc:
            pre.plan_from_dense(law, *args)
        bad = args[("n_params", "dense_data", "compute").index(name)]
        assert str(exc.value) == f"{name}: must be a positive number, got {bad}"
        assert exc.value.param == name
    plain = Law(form="sparse", coefficients=dict(TRUE))
    with pytest.raises(SparsescaleError) as exc:
        pre.plan_from_dense(plain, 1e5, 8e5, 1e12)
    assert str(exc.value) == (
        "law sparse: not a pruned-from-dense law (no fit.from_dense); "
        "use the pruned-law.json a report of a pretrained sweep writes"
    )
    # a plan in other units: D in millions of tokens (aD / 1e6, d0 = 0.8) is the same plan;
    # numbers below 1 are positive numbers too
    mega = pruned_law()
    mega.coefficients["aD"] = TRUE["aD"] / 1e6
    small = pre.plan_from_dense(mega, 1e5, 0.8, 6 * 1e5 * 0.8)
    same = pre.plan_from_dense(law, 1e5, 8e5, 6 * 1e5 * 8e5)
    assert small.sparsity == pytest.approx(same.sparsity, abs=1e-6)
    assert small.continue_data == pytest.approx(same.continue_data / 1e6, rel=1e-5)
    with pytest.raises(SparsescaleError, match="^law named: not a pruned"):
        pre.plan_from_dense(Law(form="sparse", coefficients=dict(TRUE), name="named"), 1, 1, 1)
    # at S = 0 the budget buys D1 = C / (6 n): 4.8e8 / 6e5 = 800 = 1e-3 x 8e5 exactly,
    # the least continuation accepted; a little less is refused
    ok = pre.plan_from_dense(law, 1e5, 8e5, 4.8e8)
    assert ok.dense_continue_data == pytest.approx(800.0)
    with pytest.raises(SparsescaleError) as exc:
        pre.plan_from_dense(law, 1e5, 8e5, 4.79e8)
    assert str(exc.value) == (
        "compute: buys 798 of continuation data, under 0.001 x the 8e+05 already trained: "
        "nothing to prune over"
    )


def _uncertain_law(**kw):
    law = pruned_law(**kw)
    rng = np.random.default_rng(1)
    names = ("aS", "bS", "cS", "bN", "aD", "bD", "c")
    draws = np.array([[TRUE[k] for k in names]] * 7) * np.exp(0.03 * rng.standard_normal((7, 7)))
    law.uncertainty = Uncertainty(
        "sparse", draws, FitRange((1e4, 5e4), (4e5, 1e6), 0.75), ModelError(0.01, 0.02)
    )
    return law


@pytest.mark.parametrize("level", [0.95, 0.8])
def test_plan_intervals_are_the_uncertaintys_own_at_the_plan(level):
    law = _uncertain_law()
    unc = law.uncertainty
    n, d0, c, start, end = 1e5, 8e5, 6 * 1e5 * 8e5, 0.1, 0.9
    plan = pre.plan_from_dense(law, n, d0, c, start=start, end=end, level=level)
    iv = plan.intervals
    lo, hi = unc.loss_interval(law, plan.sparsity, plan.n_nonzero, plan.total_data, level)
    assert iv["loss"] == (pytest.approx(float(lo), rel=1e-12), pytest.approx(float(hi), rel=1e-12))
    dlo, dhi = unc.loss_interval(law, 0.0, n, d0 + c / (6 * n), level)
    assert iv["dense_loss"] == (pytest.approx(float(dlo)), pytest.approx(float(dhi)))
    s = [_brute_best(lw, n, d0, c, "sparse", start, end) for lw in unc.draw_laws(law)]
    s_lo, s_hi = np.percentile(s, [(1 - level) / 2 * 100, (1 + level) / 2 * 100])
    s_lo, s_hi = min(s_lo, plan.sparsity), max(s_hi, plan.sparsity)
    assert iv["sparsity"] == (pytest.approx(s_lo, abs=1e-6), pytest.approx(s_hi, abs=1e-6))
    # D1 = C / (6 n (1 - 0.7 S)) rises in S: its interval is D1 at the two ends of S's
    f = 0.7
    d1 = (c / (6 * n * (1 - f * iv["sparsity"][0])), c / (6 * n * (1 - f * iv["sparsity"][1])))
    assert iv["continue_data"] == (pytest.approx(d1[0], rel=1e-12), pytest.approx(d1[1]))
    assert iv["continue_data"][0] < iv["continue_data"][1]
    assert all(isinstance(x, float) for v in iv.values() for x in v)


def _pruned_sweep():
    # 4 sizes x 3 lengths dense, 2 sparsities x prefixes pruned, 2 sparse-from-scratch
    # runs (S > 0, no prefix: neither pruned nor dense), noise 1e-3 on the log loss
    rng = np.random.default_rng(0)
    rows = []
    for n in (1.25e4, 2.5e4, 5e4, 1e5):
        for d in (4e5, 8e5, 1.6e6):
            rows.append((0.0, n, d, 0.0))
            for s in (0.5, 0.75):
                for d0 in (4e5, 8e5):
                    if d0 < d:
                        rows.append((s, n, d, d0))
    rows += [(0.5, 2.5e4, 8e5, 0.0), (0.75, 5e4, 1.6e6, 0.0)]
    S, N, D, D0 = (np.array(c) for c in zip(*rows))
    L = Law(form="sparse", coefficients=TRUE).predict(S, N, D) * np.exp(rng.normal(0, 1e-3, len(S)))
    return S, N, D, L, D0


def test_fit_pruned_law_fixes_the_form_and_records_the_metadata():
    S, N, D, L, D0 = _pruned_sweep()
    pts = Points(S, N, D, L, dense_tokens=D0)
    calls = []
    # form, space and delta are overridden (sparse, log, 1e-3); seed and tokens_per_unit kept
    opts = FitOptions(form="dense", space="linear", delta=0.5, seed=3, tokens_per_unit=2.0)
    res = pre.fit_pruned_law(
        pts,
        opts,
        n_boot=3,
        progress=lambda i, n: calls.append((i, n)),
        derived={"c2": lambda law: 2 * law["c"]},
    )
    assert res.law.form == "sparse" and res.law.tokens_per_unit == 2.0
    ref = fit_law(pts, FitOptions(seed=3, space="log", delta=1e-3, tokens_per_unit=2.0))
    assert res.fit.objective == pytest.approx(ref.objective, rel=1e-9)
    assert res.bootstrap.n_boot == 3 and calls[-1] == (3, 3)
    assert "c2" in res.bootstrap.intervals
    # 12 of the 36 pruned runs have D0 = 4e5 of D = 8e5 or 1.6e6, ... fractions 1/4 to 1/2
    npruned = int((D0 > 0).sum())
    assert res.law.fit["from_dense"] == {
        "data": "total: dense prefix + pruned continuation",
        "dense_prefixes": [4e5, 8e5],
        "dense_fraction": [0.25, 0.5],
        "n_pruned_runs": npruned,
        "n_dense_runs": 12,
    }
    assert npruned == 24 and res.law.fit["objective"] == res.fit.objective
    # no options at all: the defaults (seed 0) under the same fixed form
    bare = pre.fit_pruned_law(pts, n_boot=0)
    assert bare.law.tokens_per_unit is None and bare.law.uncertainty is None
    assert bare.law.fit["from_dense"]["n_pruned_runs"] == npruned


def test_fit_pruned_law_asks_assess_for_200_resamples_and_reads_small_prefixes(monkeypatch):
    # D in millions of tokens: prefixes of 0.4 and 0.8 are pruned runs all the same
    S, N, D, L, D0 = _pruned_sweep()
    from sparsescale.laws.uncertainty import assess as amod

    real, asked = amod.assess, []

    def spy(points, options, *, n_boot, progress, derived):
        asked.append(n_boot)
        return real(points, options, n_boot=0, progress=progress, derived=derived)

    monkeypatch.setattr(amod, "assess", spy)
    res = pre.fit_pruned_law(Points(S, N, D / 1e6, L, dense_tokens=D0 / 1e6))
    assert asked == [200]
    info = res.law.fit["from_dense"]
    assert info["dense_prefixes"] == [0.4, 0.8] and info["n_pruned_runs"] == 24
    assert info["dense_fraction"] == [0.25, 0.5]


def test_fit_pruned_law_refusals_word_for_word():
    S, N, D, L, D0 = _pruned_sweep()
    with pytest.raises(SparsescaleError) as exc:
        pre.fit_pruned_law(Points(S, N, D, L))
    assert str(exc.value) == "dense_tokens: the points carry no dense tokens column"
    with pytest.raises(SparsescaleError) as exc:
        pre.fit_pruned_law(Points(S, N, D, L, dense_tokens=np.zeros_like(D0)))
    assert str(exc.value) == (
        "dense_tokens: no pruned-from-dense runs (every run has 0 dense tokens)"
    )
    # a run with a dense prefix at S = 0 exactly is refused (S > 0, not S >= 0)
    bad = D0.copy()
    bad[0] = 1e5  # row 0 is dense (S = 0)
    with pytest.raises(SparsescaleError) as exc:
        pre.fit_pruned_law(Points(S, N, D, L, dense_tokens=bad))
    assert str(exc.value) == "sparsity: a pruned-from-dense run must have S > 0"
