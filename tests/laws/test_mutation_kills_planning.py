"""Planning, intervals and the cost model against hand calculations: the mutants
of laws/planning.py, laws/uncertainty/intervals.py and laws/costs.py that
tests/laws/test_mutation_kills.py and the modules' own tests let survive (see
docs/mutation.md). Every expected value is worked out in a comment or comes
from a brute-force reference written here, never from the code under test.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from sparsescale.errors import SparsescaleError
from sparsescale.laws import Law, planning

SPARSE = {"aS": 2.0, "bS": 0.5, "cS": 1.0, "bN": 1.0, "aD": 10.0, "bD": 2.0, "c": 0.5}
DENSE = {"A": 8.0, "alpha": 1.0 / 3.0, "B": 9.0, "beta": 0.5, "E": 1.0}


def _loss_by_hand(S, N, C, f=None):
    """SPARSE's loss along the budget C: D = C / (6 N c_mul(S)), c_mul = 1 / (1 - S) (dense
    FLOPs) or (1 - f S) / (1 - S) (sparse FLOPs, mean sparsity fraction f). The sparse law at
    these coefficients: L = (2 sqrt(1 - S) + 1) / N + (10 / D)^2 + 0.5."""
    c = (1.0 if f is None else 1.0 - f * S) / (1.0 - S)
    D = C / (6.0 * N * c)
    return (2.0 * np.sqrt(1.0 - S) + 1.0) / N + (10.0 / D) ** 2 + 0.5, D


def _brute_force_sopt(N, C, f=None):
    S = np.linspace(0.0, 0.9995, 2_000_001)
    return S[int(np.argmin(_loss_by_hand(S, N, C, f)[0]))]


# ---------------------------------------------------------------------------
# planning
# ---------------------------------------------------------------------------
def test_the_advertised_accountings_are_the_ones_c_mul_accepts():
    # the two idealised accountings, by name: c_mul at S = 1/2 is 2 (dense) and 1.375 (sparse)
    assert planning.FLOP_ACCOUNTINGS == ("sparse", "dense")
    by_hand = {"sparse": 1.375, "dense": 2.0}
    for name in planning.FLOP_ACCOUNTINGS:
        assert planning.c_mul(0.5, name) == pytest.approx(by_hand[name], rel=1e-14)


def test_planning_refusals_word_for_word():
    # a law without a unit for D names the fallback "data"
    law = Law("sparse", SPARSE, units={"N": "x"})
    with pytest.raises(SparsescaleError) as err:
        planning.law_compute(law, 1.0)
    assert str(err.value) == (
        "compute_flops: law sparse does not say what one unit of D (data) costs "
        "(tokens_per_unit); give the budget as a multiple of the dense compute-optimal budget "
        "instead"
    )
    with pytest.raises(SparsescaleError) as err:
        planning.optimal_sparsity(Law("dense", DENSE), 4.0, 1e3)
    assert str(err.value) == (
        "this needs a sparse-form law (it has aS, bS, cS); a dense law has no sparsity term"
    )


def test_the_grid_handles_more_points_than_one_chunk():
    # 4097 + 2 points (more than one chunk of 4096): every point's S_opt is the brute-force
    # minimum of its own (N, C) within the grid's resolution
    law = Law("sparse", SPARSE)
    C = np.where(np.arange(4099) % 2 == 0, 1e3, 1e4)
    grid = planning.optimal_sparsity_grid(law, 4.0, C, "dense")
    want = {c: _brute_force_sopt(4.0, c) for c in (1e3, 1e4)}
    assert grid.shape == (4099,)
    assert np.all(np.abs(grid - np.array([want[c] for c in C])) <= 0.9995 / 2000)


def _spy_on_predict(law):
    """Record every S that law.predict is asked for."""
    seen, predict = [], law.predict

    def spy(S, N, D):
        seen.append(np.array(S, dtype=float))
        return predict(S, N, D)

    law.predict = spy
    return seen


@pytest.mark.parametrize(
    "resolution, coarse_n",
    [
        (2000, 178),  # 4 sqrt(2000) = 178.9
        (17, 16),  # 4 sqrt(17) = 16.49 -> 16, the floor of 16
        (10, 10),  # 4 sqrt(10) = 12.6, below the floor of 16, and at most the resolution
    ],
)
def test_the_grid_costs_what_its_docstring_says(resolution, coarse_n):
    # coarse-to-fine: a coarse grid of int(min(resolution, max(16, 4 sqrt(resolution)))) values
    # over [0, MAX_SPARSITY], then a fine grid over the two coarse cells around the coarse
    # minimum, [centre - step, centre + step] with step = MAX / (coarse_n - 1), evenly spaced at
    # the fewest points that keep the spacing within MAX / resolution:
    # fine_n = ceil(2 step / (MAX / resolution)) + 1 = ceil(2 resolution / (coarse_n - 1)) + 1
    law = Law("sparse", SPARSE)
    seen = _spy_on_predict(law)
    S_out = planning.optimal_sparsity_grid(law, 4.0, 1e3, "dense", resolution=resolution)
    fine_n = math.ceil(2 * resolution / (coarse_n - 1)) + 1
    assert [v.shape for v in seen] == [(coarse_n, 1), (fine_n, 1)]
    # the fine grid around the coarse minimum: two coarse steps wide, even spacing
    step = 0.9995 / (coarse_n - 1)
    window = seen[1][:, 0]
    assert abs(window[-1] - window[0] - 2 * step) < 1e-12
    assert np.allclose(np.diff(window), 2 * step / (fine_n - 1), rtol=0, atol=1e-12)
    k = (window[0] + step) / step  # the window's centre is a coarse value, k step
    assert abs(k - round(k)) < 1e-9
    assert abs(float(S_out) - _brute_force_sopt(4.0, 1e3)) <= 0.9995 / resolution


@pytest.mark.parametrize(
    "compute",
    [
        679.0,  # S_opt = 1.2e-4, inside the first cell (0, MAX / 4000) of the search grid
        678.825,  # S_opt = 2.9e-6, inside the first cell of the first zoom (1.25e-5 wide)
        7.88e6,  # S_opt = 0.99944, inside the last cell, nearer its upper end
        9.011e6,  # S_opt = 0.9995 - 3.0e-6, inside the last cell of the last zoom
        1e9,  # S_opt beyond MAX_SPARSITY: the search ends at its upper bound
    ],
)
def test_optimal_sparsity_in_the_first_and_last_cells_of_its_grid(compute):
    # the values of compute were found by bisection on the brute-force S_opt (dense FLOPs, N = 4)
    law = Law("sparse", SPARSE)
    S = np.linspace(0.0, 0.9995, 2_000_001)
    i = int(np.argmin(_loss_by_hand(S, 4.0, compute)[0]))
    # refine the brute force within its own cell
    S2 = np.linspace(S[max(i - 1, 0)], S[min(i + 1, S.size - 1)], 20_001)
    want = S2[int(np.argmin(_loss_by_hand(S2, 4.0, compute)[0]))]
    got = planning.optimal_sparsity(law, 4.0, compute, "dense").sparsity
    assert got == pytest.approx(want, abs=1e-7)
    cell = 0.9995 / 4000
    assert want < cell or want > 0.9995 - cell  # the cases meant: first or last cell


def test_small_positive_sizes_and_budgets_are_accepted():
    # "positive" includes values below 1: N = 0.5, C = 0.5 is a valid (if tiny) plan, and at this
    # budget the data term dominates: D = C / (6 N c_mul) is tiny, so S_opt = 0 (brute force)
    law = Law("sparse", SPARSE)
    point = planning.optimal_sparsity(law, 0.5, 0.5, "dense")
    assert (point.n_nonzero, point.compute) == (0.5, 0.5)
    S = np.linspace(0.0, 0.9995, 200_001)
    assert point.sparsity == pytest.approx(S[int(np.argmin(_loss_by_hand(S, 0.5, 0.5)[0]))])


def _sparse_loss_by_hand(S, N, C, coef, f):
    """The sparse law (aS (1-S)^bS + cS) N^-bN + (aD / D)^bD + c along the budget C with sparse
    FLOPs: D = C / (6 N (1 - f S) / (1 - S))."""
    D = C * (1.0 - S) / (6.0 * N * (1.0 - f * S))
    aS, bS, cS, bN, aD, bD, c = (coef[k] for k in ("aS", "bS", "cS", "bN", "aD", "bD", "c"))
    return (aS * (1.0 - S) ** bS + cS) * N**-bN + (aD / D) ** bD + c, D


def test_optimal_intervals_replan_every_draw_with_the_default_accounting():
    from sparsescale.laws.uncertainty import intervals

    # three draws that differ in aD only (5, 10, 20): each has its own S_opt (brute force, sparse
    # FLOPs on the default 25%-75% ramp, f = 0.625); the law itself is the middle one
    draws = [dict(SPARSE, aD=a) for a in (5.0, 10.0, 20.0)]
    law = Law("sparse", SPARSE)
    law.uncertainty = intervals.Uncertainty(
        form="sparse",
        draws=np.array([list(d.values()) for d in draws]),
        fit_range=intervals.FitRange((1.0, 10.0), (1.0, 1e6), 0.9),
        model_error=intervals.ModelError(0.0, 0.0),
    )
    N, C = 4.0, 1e3
    S = np.linspace(0.0, 0.9995, 2_000_001)
    s_opt = []
    for d in draws:
        s_opt.append(S[int(np.argmin(_sparse_loss_by_hand(S, N, C, d, 0.625)[0]))])
    v0, v1, v2 = sorted(s_opt)
    assert v0 < v1 < v2 and s_opt[1] == v1
    point = planning.optimal_sparsity(law, N, C)  # sparse FLOPs, the default
    # numpy's linear percentile of 3 values at p: index 2 p / 100 into the sorted values
    for level, (lo_at, hi_at) in ((None, (0.05, 1.95)), (0.5, (0.5, 1.5))):
        out = (
            planning.optimal_intervals(law, point)
            if level is None
            else planning.optimal_intervals(law, point, level=level)
        )
        lo = v0 + lo_at * (v1 - v0)
        hi = v1 + (hi_at - 1.0) * (v2 - v1)
        assert out["sparsity"] == (pytest.approx(lo, abs=2e-6), pytest.approx(hi, abs=2e-6))
        # the data each draw's plan buys, D = C (1 - S) / (6 N (1 - f S)), decreases with S
        dv = [_sparse_loss_by_hand(s, N, C, SPARSE, 0.625)[1] for s in (v2, v1, v0)]
        assert out["data"] == (
            pytest.approx(dv[0] + lo_at * (dv[1] - dv[0]), rel=1e-5),
            pytest.approx(dv[1] + (hi_at - 1.0) * (dv[2] - dv[1]), rel=1e-5),
        )
    # two draws (aD = 5 and 20) are enough for a percentile interval: 2.5% and 97.5% of two
    # values lie 0.025 and 0.975 of the way between them, and the law's own S_opt lies inside
    two = [draws[0], draws[2]]
    law.uncertainty.draws = np.array([list(d.values()) for d in two])
    a, b = sorted((s_opt[0], s_opt[2]))
    out = planning.optimal_intervals(law, point)
    assert out["sparsity"] == (
        pytest.approx(a + 0.025 * (b - a), abs=2e-6),
        pytest.approx(a + 0.975 * (b - a), abs=2e-6),
    )


# ---------------------------------------------------------------------------
# intervals
# ---------------------------------------------------------------------------
from sparsescale.laws.uncertainty import intervals  # noqa: E402


def _bare_uncertainty():
    return intervals.Uncertainty(
        form="dense",
        draws=np.array([list(DENSE.values())] * 2),
        fit_range=intervals.FitRange((1.0, 2.0), (3.0, 4.0), 0.5),
        model_error=intervals.ModelError(0.1, 0.2),
    )


def test_an_uncertainty_has_no_calibration_and_no_source_by_default():
    one, two = _bare_uncertainty(), _bare_uncertainty()
    assert (one.calibration, one.source) == ({}, "")
    d = one.to_dict()
    assert (d["calibration"], d["source"]) == ({}, "")
    one.calibration["coverage"] = 0.9  # each instance has a calibration of its own
    assert two.calibration == {}


def test_a_fit_range_without_sparsities_is_dense():
    # no sparsities given: every run was dense, the sparsest run is at S = 0, and a point at
    # S = 1/2 lies ln(1 / 0.5) = ln 2 beyond it
    r = intervals.FitRange.of(None, [1.0, 4.0], [2.0, 8.0])
    assert (r.n_nonzero, r.data, r.sparsity_max) == ((1.0, 4.0), (2.0, 8.0), 0.0)
    assert r.distance(0.5, 2.0, 4.0) == pytest.approx(math.log(2.0), rel=1e-14)


def test_the_method_of_an_uncertainty_word_for_word():
    # the description a law file carries with its draws
    assert _bare_uncertainty().to_dict()["method"] == (
        "bootstrap coefficient draws + model error growing with extrapolation distance "
        "(sigma = sqrt(floor^2 + (per_efold * d)^2), d = e-folds beyond the fitted range)"
    )


def test_the_grid_and_the_point_search_default_to_sparse_flops_on_the_default_ramp():
    # no accounting given: sparse FLOPs, schedule 25% to 75% (f = 0.625); the brute-force S_opt
    # at N = 4, C = 1e3 is 0.587 there (0.266 under dense FLOPs)
    law = Law("sparse", SPARSE)
    want = _brute_force_sopt(4.0, 1e3, 0.625)
    assert abs(float(planning.optimal_sparsity_grid(law, 4.0, 1e3)) - want) <= 0.9995 / 2000
    assert planning.optimal_sparsity(law, 4.0, 1e3).sparsity == pytest.approx(want, abs=2e-6)


# ---------------------------------------------------------------------------
# costs
# ---------------------------------------------------------------------------
from sparsescale.laws import costs  # noqa: E402


def test_cost_model_schedule_refusal_word_for_word():
    with pytest.raises(SparsescaleError) as err:
        costs.CostModel("x", (0.0, 1.0), (1.0, 0.0), start=0.5, end=0.5)
    assert str(err.value) == "schedule fractions need 0 <= start < end <= 1, got start=0.5, end=0.5"


def test_the_log_slope_of_c_mul_at_both_ends_of_its_domain():
    # dense accounting: log c_mul(S) = -ln(1 - S). The slope is a difference over [S - h, S + h],
    # h = 1e-6, clipped to [0, 1 - 1e-9] (c_mul has its pole at S = 1) and divided by the clipped
    # width, so at the ends it is a one-sided secant:
    dense = costs.dense_cost()
    # S = 0: (-ln(1 - h) - 0) / h = 1 + h / 2 + h^2 / 3 ...
    assert dense.dlog_c_mul(0.0) == pytest.approx(-math.log1p(-1e-6) / 1e-6, rel=1e-9)
    # S = 1 - 5e-7: from lo = 1 - 1.5e-6 to hi = 1 - 1e-9: ln(1.5e-6 / 1e-9) / (1.5e-6 - 1e-9)
    S = 1.0 - 5e-7
    want = math.log(1.5e-6 / 1e-9) / (1.5e-6 - 1e-9)  # 4.88e6
    assert dense.dlog_c_mul(S) == pytest.approx(want, rel=1e-6)


def test_cost_model_refusals_word_for_word():
    with pytest.raises(SparsescaleError) as err:
        costs.CostModel("x", (0.0, 0.0), (1.0, 1.0))
    assert str(err.value) == "knots must be strictly increasing, one relative step time each"
    with pytest.raises(SparsescaleError) as err:
        costs.CostModel("x", (0.0, 1.0), (1.0, -1.0))
    assert str(err.value) == "relative step times must be finite and >= 0"


def test_mean_step_time_when_the_dense_step_is_not_one():
    # a hand-made r with r(0) = 2 (the dense phases cost 2, not 1): r(s) = 2 (1 - s).
    # final_only: end r(0) + (1 - end) r(S) = 0.75 * 2 + 0.25 * 1 = 1.75 at S = 1/2
    final = costs.CostModel("x", (0.0, 1.0), (2.0, 0.0), final_only=True)
    assert final.mean_step_time(0.5) == pytest.approx(1.75, rel=1e-14)
    # the cubic ramp: mean s = S (1 - mean (1 - p)^3) = 3 S / 4, so the ramp mean of the linear r
    # is 2 - 1.5 S = 1.25; start r(0) + (end - start) 1.25 + (1 - end) r(S)
    # = 0.25 * 2 + 0.5 * 1.25 + 0.25 * 1 = 1.375
    ramped = costs.CostModel("x", (0.0, 1.0), (2.0, 0.0))
    assert ramped.mean_step_time(0.5) == pytest.approx(1.375, rel=1e-12)


@pytest.mark.parametrize("S", [0.8, 0.55, 0.3])
def test_the_ramp_mean_is_exact_for_a_kink_below_the_final_sparsity(S):
    # r(s) = 1 up to s = 1/2, then 2 (1 - s). The ramp s(p) = S (1 - (1 - p)^3) crosses 1/2 where
    # (1 - p)^3 = 1 - 1 / (2 S), i.e. at p* = 1 - q, q = (1 - 1 / (2 S))^(1/3) (when S > 1/2).
    # Beyond it r = 2 - 2 S + 2 S (1 - p)^3, whose integral over [p*, 1] is
    # (2 - 2 S) q + 2 S q^4 / 4. Below S = 1/2 the ramp never reaches the kink: r = 1.
    model = costs.CostModel("kink", (0.0, 0.5, 1.0), (1.0, 1.0, 0.0))
    if S > 0.5:
        q = (1.0 - 1.0 / (2.0 * S)) ** (1.0 / 3.0)
        ramp = (1.0 - q) + (2.0 - 2.0 * S) * q + S * q**4 / 2.0
        final = 2.0 * (1.0 - S)
    else:
        ramp, final = 1.0, 1.0
    assert model.mean_step_time(S) == pytest.approx(0.25 + 0.5 * ramp + 0.25 * final, rel=1e-12)
    assert model.mean_step_time(np.array([S, S])) == pytest.approx(
        [0.25 + 0.5 * ramp + 0.25 * final] * 2, rel=1e-12
    )


def test_a_missing_pattern_lists_the_measured_ones():
    doc = {
        "format": "sparsescale-speedups/1",
        "speedups": {"unstructured": {"0.9": 2.0}, "2:4": {"0.5": 1.5}},
    }
    with pytest.raises(SparsescaleError) as err:
        costs.speedups_from_dict(doc, "f.json").cost_model("1:4")
    assert (
        str(err.value) == "f.json: no speedups measured for pattern '1:4' (has: 2:4, unstructured)"
    )
