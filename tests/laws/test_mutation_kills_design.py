"""laws.design: hand-computed answers for what test_design checks only loosely (mutation kills).

Every number below is derived in the comment next to it: targets and axes parsed by hand, the
greedy batch on small covariances whose conditioning is exact in binary floating point, and
propose() on a stand-in bootstrap whose draws are chosen so that the covariances are known.
"""

import dataclasses
import math

import numpy as np
import pytest

import sparsescale.laws.design as design
from sparsescale.errors import SparsescaleError
from sparsescale.laws.design import (
    MIN_SHARE,
    TARGET_EXAMPLE,
    TARGET_KEYS,
    candidate_grid,
    extend_axis,
    greedy_batch,
    parse_axis,
    parse_target,
    predict_draws,
    propose,
    run_flops,
)
from sparsescale.laws.fit import FitResult
from sparsescale.laws.law import Law
from sparsescale.laws.planning import c_mul
from sparsescale.laws.points import FitOptions, Points
from sparsescale.laws.presets import preset
from sparsescale.laws.uncertainty.bootstrap import BootstrapResult

EXAMPLE = "sopt:N=1e8,C=1e20, equivalent-size:S=0.75 or loss:S=0.5,N=1e8,D=1e10"


def _refusal(call, *args):
    with pytest.raises(SparsescaleError) as info:
        call(*args)
    return str(info.value)


# -- targets -------------------------------------------------------------------


def test_target_keys_and_example_word_for_word():
    assert TARGET_KEYS == {"sopt": ("N", "C"), "equivalent-size": ("S",), "loss": ("S", "N", "D")}
    assert TARGET_EXAMPLE == EXAMPLE


def test_parse_target_normalises_kind_and_orders_values():
    # the kind is stripped and lower-cased; values come back in the kind's key order
    t = parse_target(" SOPT :C=2e20, N=1e8 ,")
    assert t.kind == "sopt"
    assert list(t.values.items()) == [("N", 1e8), ("C", 2e20)]
    assert t.label == "sopt:N=1e+08,C=2e+20"
    assert parse_target("loss:D=1e10,N=1e8,S=0").label == "loss:S=0,N=1e+08,D=1e+10"
    # S = 0 is inside [0, 1)
    assert parse_target("equivalent-size:S=0").values == {"S": 0.0}
    # quantities with suffixes go through parse_quantity
    assert parse_target("loss:S=0.5,N=2M,D=3B").values == {"S": 0.5, "N": 2e6, "D": 3e9}


@pytest.mark.parametrize(
    "text, message",
    [
        ("nope:S=1", "--t: unknown target 'nope:S=1'; expected " + EXAMPLE),
        ("sopt:N=1e8", "--t: 'sopt:N=1e8' lacks C (e.g. " + EXAMPLE + ")"),
        ("loss:S=0.5", "--t: 'loss:S=0.5' lacks N, D (e.g. " + EXAMPLE + ")"),
        ("sopt:N=1e8,C=1e20,X=1", "--t: 'X=1' in 'sopt:N=1e8,C=1e20,X=1': sopt takes N=..., C=..."),
        ("sopt:N=1e8,C", "--t: 'C' in 'sopt:N=1e8,C': sopt takes N=..., C=..."),
        ("equivalent-size:N=1", "--t: 'N=1' in 'equivalent-size:N=1': equivalent-size takes S=..."),
        ("loss:S=1,N=1,D=1", "--t: S=1 is outside [0, 1)"),
        ("equivalent-size:S=-0.1", "--t: S=-0.1 is outside [0, 1)"),
        ("loss:S=0.5,N=0,D=1", "--t: N=0 must be positive"),
        ("loss:S=0.5,N=1,D=0", "--t: D=0 must be positive"),
        ("sopt:N=1,C=0", "--t: C=0 must be positive"),
        ("sopt:N=1,C=-5", "--t: C=-5 must be positive"),
    ],
)
def test_parse_target_refusals_word_for_word(text, message):
    assert _refusal(parse_target, text, "--t") == message


def test_parse_target_default_label_and_value_label():
    assert _refusal(parse_target, "nope") == "target: unknown target 'nope'; expected " + EXAMPLE
    # a value that is not a number names the flag and the key
    assert _refusal(parse_target, "sopt:N=x,C=1", "--t").startswith("--t: N: 'x' is not a number")


# -- axes ----------------------------------------------------------------------


def test_parse_axis_ranges_by_hand():
    # sparsity: evenly spaced in log(1 - S): densities 0.5, 0.25, 0.125
    assert parse_axis("0.5:0.875:3", "--s", "sparsity") == pytest.approx([0.5, 0.75, 0.875])
    # N and D: geometric; a single value, and 1000 values are both allowed
    assert parse_axis("1:1000:4", "--n", "n_nonzero") == pytest.approx([1, 10, 100, 1000])
    assert parse_axis("5:5:1", "--n", "n_nonzero") == pytest.approx([5.0])
    assert len(parse_axis("1:2:1000", "--n", "data")) == 1000
    # spaces around the range are allowed, suffixes too
    assert parse_axis(" 1k:4k:3 ", "--d", "data") == pytest.approx([1e3, 2e3, 4e3])
    # lists: sorted, duplicates dropped, empty items skipped
    assert parse_axis("0.5, 0,0.5,,", "--s", "sparsity") == [0.0, 0.5]
    assert parse_axis("2e6,1M", "--n", "n_nonzero") == [1e6, 2e6]


@pytest.mark.parametrize(
    "text, kind, message",
    [
        ("1:2:0", "n_nonzero", "--x: range '1:2:0' needs LOW <= HIGH and 1..1000 values"),
        ("1:2:1001", "n_nonzero", "--x: range '1:2:1001' needs LOW <= HIGH and 1..1000 values"),
        ("2:1:3", "data", "--x: range '2:1:3' needs LOW <= HIGH and 1..1000 values"),
        ("", "data", "--x: give values like 0,0.5,0.75 or a range LOW:HIGH:COUNT"),
        (" , ", "data", "--x: give values like 0,0.5,0.75 or a range LOW:HIGH:COUNT"),
        ("0,1", "sparsity", "--x: sparsity 1 is outside [0, 1)"),
        ("-0.5", "sparsity", "--x: sparsity -0.5 is outside [0, 1)"),
        ("0:1:3", "sparsity", "--x: sparsity 1 is outside [0, 1)"),
        ("-0.5:0.5:3", "sparsity", "--x: sparsity -0.5 is outside [0, 1)"),
        ("1,0", "n_nonzero", "--x: 0 must be positive"),
        ("-1:2:3", "data", "--x: -1 must be positive"),
        ("0:2:3", "data", "--x: 0 must be positive"),
    ],
)
def test_parse_axis_refusals_word_for_word(text, kind, message):
    assert _refusal(parse_axis, text, "--x", kind) == message


def test_extend_axis_by_hand():
    # N, D: one geometric step beyond each end (ratio of the end pairs), x2 for one value
    assert extend_axis([10.0, 20.0, 60.0], "data") == pytest.approx([5.0, 10, 20, 60, 180])
    assert extend_axis([3.0], "n_nonzero") == pytest.approx([1.5, 3.0, 6.0])
    assert extend_axis([4.0, 4.0], "data") == pytest.approx([2.0, 4.0, 8.0])
    # sparsity: one more halving of the density beyond the sparsest value; dense alone -> 0.5
    assert extend_axis([0.5, 0.0], "sparsity") == [0.0, 0.5, 0.75]
    assert extend_axis([0.0], "sparsity") == [0.0, 0.5]
    assert extend_axis([0.9], "sparsity") == pytest.approx([0.9, 0.95])


def test_candidate_grid_tolerances():
    # order: S, then N, then D (itertools.product)
    grid = candidate_grid([0.0, 0.5], [1e6], [1e3, 2e3])
    assert grid.tolist() == [[0.0, 1e6, 1e3], [0.0, 1e6, 2e3], [0.5, 1e6, 1e3], [0.5, 1e6, 2e3]]
    assert candidate_grid([0.5], [1e6], [1e3], done=[]).tolist() == [[0.5, 1e6, 1e3]]
    assert candidate_grid([0.5], [1e6], [1e3], done=np.zeros((0, 3))).shape == (1, 3)
    # N and D match within 0.1% in log, on either side; S within 1e-9
    for done in ([0.5, 1e6 * 1.0009, 1e3], [0.5, 1e6, 1e3 / 1.0009], [0.5 + 5e-10, 1e6, 1e3]):
        assert candidate_grid([0.5], [1e6], [1e3], done=[done]).shape == (0, 3), done
    for done in ([0.5, 1e6 * 1.0011, 1e3], [0.5, 1e6, 1e3 / 1.0011], [0.5 + 2e-9, 1e6, 1e3]):
        assert candidate_grid([0.5], [1e6], [1e3], done=[done]).shape == (1, 3), done
    # a finished run removes only its own row
    grid = candidate_grid([0.0, 0.5], [1e6, 2e6], [1e3], done=[[0.0, 2e6, 1e3], [0.5, 1e6, 1e3]])
    assert grid.tolist() == [[0.0, 1e6, 1e3], [0.5, 2e6, 1e3]]


def test_run_flops_by_hand():
    # 6 N D c_mul(S); the default is one token per unit of D
    assert run_flops(0.0, 1e6, 1e3) == pytest.approx(6e9)
    assert run_flops(0.5, 1e6, 1e3) == pytest.approx(6e9 * float(c_mul(0.5, "sparse")))
    assert run_flops(0.5, 1e6, 1e3, 4.0) == pytest.approx(24e9 * float(c_mul(0.5, "sparse")))
    out = run_flops(np.array([0.0, 0.0]), np.array([1.0, 2.0]), np.array([3.0, 4.0]))
    assert out.tolist() == pytest.approx([18.0, 48.0])


# -- the greedy batch ----------------------------------------------------------

# Target variance 1, two independent candidates with unit variance, covariances 0.5 and 0.75
# with the target, noise variance 1. Gains: 0.5^2 / 2 = 0.125 and 0.75^2 / 2 = 0.28125. After
# the second is observed, cov[0,0] = 1 - 0.28125 = 0.71875, cov[0,1] stays 0.5 (the candidates
# are independent), so the first still gains 0.125: left 0.59375. All exact in binary.
COV = np.array([[1.0, 0.5, 0.75], [0.5, 1.0, 0.0], [0.75, 0.0, 1.0]])


def test_greedy_batch_by_hand():
    chosen, shares, left = greedy_batch(COV, 1.0, np.array([1.0, 1.0]), budget=2.0)
    assert chosen == [1, 0] and shares == [0.28125, 0.125] and left == 0.59375
    # the input is not changed
    assert COV[0, 0] == 1.0 and COV[0, 2] == 0.75


def test_greedy_batch_limits():
    ones = np.array([1.0, 1.0])
    # a run that exactly uses the rest of the budget still fits
    assert greedy_batch(COV, 1.0, ones, budget=2.0)[0] == [1, 0]
    assert greedy_batch(COV, 1.0, ones, budget=1.999)[0] == [1]
    # max_runs counts runs
    assert greedy_batch(COV, 1.0, ones, budget=9.0, max_runs=1) == ([1], [0.28125], 0.71875)
    assert greedy_batch(COV, 1.0, ones, budget=9.0, max_runs=0) == ([], [], 1.0)
    # min_share: a gain must exceed it strictly (0.125 of var0 = 1 does not)
    assert greedy_batch(COV, 1.0, ones, budget=9.0, min_share=0.125)[0] == [1]
    assert greedy_batch(COV, 1.0, ones, budget=9.0, min_share=0.1249)[0] == [1, 0]
    # gain per FLOP: the first run at a quarter of the price (0.125 / 0.25 = 0.5 per FLOP
    # against 0.28125) goes first
    assert greedy_batch(COV, 1.0, np.array([0.25, 1.0]), budget=9.0)[0] == [0, 1]


def test_greedy_batch_default_min_share_is_relative_to_the_initial_variance():
    assert MIN_SHARE == 0.005
    # scaled by 1e-4 (and the noise too) every gain and share scales alike: both runs are
    # still worth more than 0.5% of the (small) initial variance
    chosen, shares, left = greedy_batch(COV * 1e-4, 1e-4, np.array([1.0, 1.0]), budget=9.0)
    assert chosen == [1, 0]
    assert shares == pytest.approx([0.28125, 0.125], rel=1e-12)
    assert left == pytest.approx(0.59375e-4, rel=1e-12)
    # the default threshold: a run removing 0.4% of the variance is not proposed, 0.6% is.
    # cov(t, l) = sqrt(0.004 * 2) with unit variances and noise 1 -> gain 0.004
    for share, want in ((0.004, []), (0.006, [0])):
        c = math.sqrt(share * 2)
        cov = np.array([[1.0, c], [c, 1.0]])
        assert greedy_batch(cov, 1.0, np.array([1.0]), budget=9.0)[0] == want, share


def test_greedy_batch_zero_variance_and_left_never_negative():
    # a target that does not vary: nothing to learn, nothing chosen
    zero = np.zeros((3, 3))
    assert greedy_batch(zero, 1.0, np.array([1.0, 1.0]), budget=9.0) == ([], [], 0.0)
    # a candidate that is the target itself without noise: the variance left is 0 (clipped
    # at 0 from rounding)
    cov = np.array([[0.3, 0.3], [0.3, 0.3]])
    with np.errstate(invalid="ignore"):  # the conditioned candidate's gain is 0 / 0
        chosen, shares, left = greedy_batch(cov, 0.0, np.array([1.0]), budget=1.0)
    assert chosen == [0] and shares == pytest.approx([1.0]) and 0.0 <= left < 1e-15


# -- propose() on a stand-in bootstrap ---------------------------------------
#
# The fitted law is a dense law; the stand-in's 40 draws have A = 0, beta = 1, so a candidate at
# D predicts (1 + v_b) / D + 2 + u_b, with u_b, v_b = +-0.1 in every combination ten times
# (orthogonal, balanced: no winsorising clips them). The target's draws are t_b = u_b. With
# s2 = Var(u) = Var(v) = 40 * 0.01 / 39 (np.cov divides by B - 1), a candidate at D has
# (w = 1 / D): Cov(t, l) = s2, Var(l) = s2 (1 + w^2), Cov(l, l') = s2 (1 + w w').

S2 = 0.4 / 39
U = np.repeat([0.1, 0.1, -0.1, -0.1], 10)
V = np.tile(np.repeat([0.1, -0.1], 10), 2)
LAW = Law("dense", {"A": 400.0, "alpha": 0.34, "B": 2000.0, "beta": 0.28, "E": 1.7})
# residuals pred - y of the finished runs: median 0.12, absolute deviations 0.02, 0.01, 0, 0.02,
# 0.08, their median 0.02: the noise is 1.4826 * 0.02 = 0.029652 (deviations from -0.12 would
# have the median 0.24)
RESIDUALS = np.array([0.1, 0.11, 0.12, 0.14, 0.2])
RUNS_N = np.array([1e6, 2e6, 4e6, 8e6, 1.6e7])
RUNS_D = np.array([1e8, 2e8, 1e8, 4e8, 1e9])


def _points(law=LAW, space="linear"):
    S = np.zeros(5)
    pred = law.predict(S, RUNS_N, RUNS_D)
    y = pred - RESIDUALS if space == "linear" else pred * np.exp(-RESIDUALS)
    return Points(S, RUNS_N, RUNS_D, y)


def _stand_in(monkeypatch, draws, target, interval=(1.0, 2.0, 4.0)):
    """Replace the bootstrap by fixed draws (columns A, alpha, B, beta, E) and target draws."""
    calls = []

    def fake(points, options, *, n_boot, level, reference, derived):
        calls.append(dict(options=options, n_boot=n_boot, level=level, ref=reference, d=derived))
        samples = {k: draws[:, j] for j, k in enumerate(("A", "alpha", "B", "beta", "E"))}
        samples["target"] = np.asarray(target, dtype=float)
        return BootstrapResult(level, n_boot, {"target": interval}, samples)

    monkeypatch.setattr(design, "bootstrap", fake)
    return calls


def _draws(u=U, v=V):
    return np.column_stack([np.zeros(u.size), np.ones(u.size), 1.0 + v, np.ones(u.size), 2.0 + u])


def _cov(ws):
    """The analytic covariance of (t, l_c for D = 1 / w)."""
    w = np.r_[0.0, ws]
    cov = S2 * (1.0 + np.outer(w, w))
    cov[0, 0] = S2
    return cov


def _left(cov, chosen, noise_var):
    """Var(t | the chosen runs observed), conditioning on the whole batch at once."""
    B = [1 + c for c in chosen]
    return cov[0, 0] - cov[0, B] @ np.linalg.solve(
        cov[np.ix_(B, B)] + noise_var * np.eye(len(B)), cov[B, 0]
    )


CANDS = np.array([[0.0, 1.0, 1.0], [0.0, 1.0, 2.0], [0.0, 1.0, 4.0]])


def test_propose_by_hand(monkeypatch):
    calls = _stand_in(monkeypatch, _draws(), U)
    fit = FitResult(LAW, 0.5, 5)
    target = parse_target("loss:S=0.5,N=1e7,D=1e9")
    options = FitOptions(form="dense", space="linear", tokens_per_unit=2.0, seed=3)
    p = propose(_points(), target, CANDS, 36.0, options, n_boot=40, fit=fit, level=0.9)
    # the bootstrap: the caller's options without tokens_per_unit, the count, the level and the
    # fit as the reference
    (call,) = calls
    assert call["options"] == options.replace(tokens_per_unit=None)
    assert (call["n_boot"], call["level"], call["ref"]) == (40, 0.9, fit)
    # the derived target sets the unit on each draw before evaluating it
    law = Law("dense", dict(LAW.coefficients))
    assert call["d"]["target"](law) == pytest.approx(float(LAW.predict(0.5, 1e7, 1e9)))
    assert law.tokens_per_unit == 2.0 and fit.law.tokens_per_unit == 2.0
    # noise: 1.4826 * 0.02
    assert p.noise == pytest.approx(0.029652, rel=1e-9)
    n2 = p.noise**2
    # flops 6 N D tokens_per_unit: 12, 24, 48. Gains s2^2 / (s2 (1 + w^2) + n2) per FLOP:
    # D = 1 first (0.0049 / 12 against 0.0077 / 24 and 0.0089 / 48); then 24 FLOPs are left:
    # D = 2 still fits, D = 4 does not
    # After observing D = 1 (column s2 (1, 2, 1.5, 1.25), denominator d0 = 2 s2 + n2), the
    # target's covariance with D = 2 is s2 - 1.5 s2^2 / d0 and D = 2's variance
    # 1.25 s2 - 2.25 s2^2 / d0
    cov = _cov([1.0, 0.5, 0.25])
    d0 = 2 * S2 + n2
    g0 = S2**2 / d0
    g1 = (S2 - 1.5 * S2**2 / d0) ** 2 / (1.25 * S2 - 2.25 * S2**2 / d0 + n2)
    left = _left(cov, [0, 1], n2)
    assert S2 - g0 - g1 == pytest.approx(left, rel=1e-9)
    assert p.runs == [
        {
            "sparsity": 0.0,
            "n_nonzero": 1.0,
            "data": 1.0,
            "flops": 12.0,
            "variance_share": pytest.approx(g0 / S2, rel=1e-9),
        },
        {
            "sparsity": 0.0,
            "n_nonzero": 1.0,
            "data": 2.0,
            "flops": 24.0,
            "variance_share": pytest.approx(g1 / S2, rel=1e-9),
        },
    ]
    assert p.spent_flops == 36.0 and p.budget_flops == 36.0
    assert isinstance(p.budget_flops, float)
    assert p.interval == (1.0, 2.0, 4.0) and p.width == 3.0
    assert p.expected_width == pytest.approx(3.0 * math.sqrt(left / S2), rel=1e-9)
    assert (p.n_boot, p.n_candidates, p.target, p.fit) == (40, 3, target, fit)
    assert p.to_dict() == {
        "target": "loss:S=0.5,N=1e+07,D=1e+09",
        "interval": [1.0, 2.0, 4.0],
        "width": 3.0,
        "expected_width": p.expected_width,
        "budget_flops": 36.0,
        "spent_flops": 36.0,
        "noise": p.noise,
        "n_boot": 40,
        "n_candidates": 3,
        "runs": p.runs,
    }


def test_propose_defaults(monkeypatch):
    # no options: log space, one token per unit of D (flops 6 N D), 200 draws asked for,
    # the 95% level, the default min_share
    calls = _stand_in(monkeypatch, _draws(), U)
    fit = FitResult(LAW, 0.5, 5)
    p = propose(_points(space="log"), parse_target("equivalent-size:S=0.5"), CANDS, 1e9, fit=fit)
    (call,) = calls
    assert call["options"] == FitOptions()
    assert (call["n_boot"], call["level"]) == (200, 0.95)
    assert fit.law.tokens_per_unit == 1.0
    assert p.n_boot == 200
    assert [r["flops"] for r in p.runs] == sorted(r["flops"] for r in p.runs)
    assert {r["flops"] for r in p.runs} <= {6.0, 12.0, 24.0}
    # the noise is the MAD of the log residuals: the same 0.029652
    assert p.noise == pytest.approx(0.029652, rel=1e-9)
    # log space: the covariances are those of the log predictions
    X = np.column_stack([U, np.log(predict_draws(_draws(), *CANDS.T, form="dense"))])
    cov = np.cov(X, rowvar=False)
    chosen = [int(np.log2(r["data"])) for r in p.runs]
    assert p.expected_width == pytest.approx(
        3.0 * math.sqrt(_left(cov, chosen, p.noise**2) / cov[0, 0]), rel=1e-9
    )
    # max_runs caps the batch
    p = propose(
        _points(space="log"),
        parse_target("equivalent-size:S=0.5"),
        CANDS,
        1e9,
        fit=FitResult(LAW, 0.5, 5),
        min_share=0.0,
        max_runs=2,
    )
    assert len(p.runs) == 2


def test_propose_fits_when_no_fit_is_given(monkeypatch):
    # exact points of the law: the fit recovers it, and the noise floor 1e-12 applies
    # (every residual is ~0)
    _stand_in(monkeypatch, _draws(), U)
    S = np.zeros(12)
    Ng, Dg = np.meshgrid([1e6, 4e6, 1.6e7], [1e8, 4e8, 1.6e9, 6.4e9], indexing="ij")
    y = LAW.predict(S, Ng.ravel(), Dg.ravel())
    points = Points(S, Ng.ravel(), Dg.ravel(), y)
    p = propose(points, parse_target("equivalent-size:S=0.5"), CANDS, 1e9, FitOptions("dense"))
    assert p.fit.law.form == "dense"
    assert p.fit.law["E"] == pytest.approx(1.7, rel=1e-4)
    assert 1e-12 <= p.noise < 1e-6


def test_propose_winsorises_each_column(monkeypatch):
    # heavy-tailed draws: the covariance is that of the columns clipped to their 2.5 and 97.5
    # percentiles
    rng = np.random.default_rng(7)
    u, v = 0.1 * rng.standard_t(2, 40), 0.1 * rng.standard_t(2, 40)
    t = u + 0.5 * rng.standard_t(2, 40)
    _stand_in(monkeypatch, _draws(u, v), t)
    p = propose(
        _points(),
        parse_target("equivalent-size:S=0.5"),
        CANDS,
        1e9,
        FitOptions("dense", space="linear"),
        fit=FitResult(LAW, 0.5, 5),
        min_share=0.0,
    )
    X = np.column_stack([t, predict_draws(_draws(u, v), *CANDS.T, form="dense")])
    lo, hi = np.percentile(X, [2.5, 97.5], axis=0)
    cov = np.cov(np.clip(X, lo, hi), rowvar=False)
    chosen = [int(np.log2(r["data"])) for r in p.runs]
    assert len(chosen) == 3
    assert p.expected_width == pytest.approx(
        3.0 * math.sqrt(_left(cov, chosen, p.noise**2) / cov[0, 0]), rel=1e-9
    )
    # unclipped, the width would differ
    raw = np.cov(X, rowvar=False)
    assert abs(math.sqrt(_left(raw, chosen, p.noise**2) / raw[0, 0]) * 3 - p.expected_width) > 1e-3


def test_propose_needs_ten_finite_draws(monkeypatch):
    fit = FitResult(LAW, 0.5, 5)
    target = parse_target("equivalent-size:S=0.5")
    # 10 finite target draws of 40: enough; 9: refused
    t = np.where(np.arange(40) % 4 == 0, U, np.nan)
    assert np.isfinite(t).sum() == 10
    _stand_in(monkeypatch, _draws(), t)
    opts = FitOptions("dense", space="log")
    assert propose(_points(space="log"), target, CANDS, 1e9, opts, fit=fit).n_boot == 200
    t[0] = np.inf
    _stand_in(monkeypatch, _draws(), t)
    with pytest.raises(SparsescaleError) as info:
        propose(_points(space="log"), target, CANDS, 1e9, opts, fit=fit)
    assert str(info.value) == (
        "bootstrap: fewer than 10 draws give a finite target and predictions"
    )
    # a draw whose prediction is not positive has no log: it drops out too (E = -5 makes 31
    # draws' predictions negative: 9 are left)
    draws = _draws()
    draws[:31, 4] = -5.0
    _stand_in(monkeypatch, draws, U)
    with pytest.raises(SparsescaleError, match="fewer than 10 draws"):
        propose(_points(space="log"), target, CANDS, 1e9, opts, fit=fit)
    # in linear space a negative prediction is a number like any other
    _stand_in(monkeypatch, draws, U)
    lin = FitOptions("dense", space="linear")
    assert propose(_points(), target, CANDS, 1e9, lin, fit=fit).n_candidates == 3


@pytest.mark.parametrize("budget", [0.0, -1.0, math.inf, math.nan])
def test_propose_refuses_a_bad_budget(budget):
    with pytest.raises(SparsescaleError) as info:
        propose(_points(), parse_target("equivalent-size:S=0.5"), CANDS, budget)
    assert str(info.value) == f"budget: must be a positive number of FLOPs, got {budget}"


def test_propose_refuses_no_candidates():
    with pytest.raises(SparsescaleError) as info:
        propose(_points(), parse_target("equivalent-size:S=0.5"), np.zeros((0, 3)), 1.0)
    assert str(info.value) == "candidates: none left (every candidate run is already finished)"


def test_a_single_candidate_row_and_predict_draws_default_form(monkeypatch):
    _stand_in(monkeypatch, _draws(), U)
    p = propose(
        _points(),
        parse_target("equivalent-size:S=0.5"),
        [0.0, 1.0, 1.0],
        1e9,
        FitOptions("dense", space="linear"),
        fit=FitResult(LAW, 0.5, 5),
    )
    assert p.n_candidates == 1 and [r["data"] for r in p.runs] == [1.0]
    # predict_draws defaults to the sparse form and the law's default schedule fraction
    law = preset("t5-c4")
    row = np.array([[law[k] for k in law.coefficients]])
    got = predict_draws(row, [0.5], [1e7], [1e9])
    assert got.shape == (1, 1) and got[0, 0] == pytest.approx(float(law.predict(0.5, 1e7, 1e9)))


def test_target_of_sopt_converts_the_budget_with_the_unit():
    # sopt re-plans at C FLOPs: with 65536 tokens per unit of D the budget is 65536 times
    # fewer units of D than with one
    law = preset("t5-c4")
    t = parse_target("sopt:N=1e8,C=1e20")
    from sparsescale.laws.planning import law_compute, optimal_sparsity

    want = optimal_sparsity(law, 1e8, law_compute(law, 1e20)).sparsity
    assert t.of(law) == pytest.approx(want, rel=1e-12)
    assert 0.0 < t.of(law) < 1.0


# -- edges the first version of these tests missed -----------------------------


def test_targets_are_frozen_and_small_positive_values_are_fine():
    t = parse_target("loss:S=0,N=0.5,D=0.25")
    assert t.values == {"S": 0.0, "N": 0.5, "D": 0.25}
    with pytest.raises(dataclasses.FrozenInstanceError):
        t.kind = "sopt"
    # axes of N and D take any positive value
    assert parse_axis("0.5,2", "--d", "data") == [0.5, 2.0]
    # two values: the step is their ratio at both ends
    assert extend_axis([2.0, 8.0], "data") == pytest.approx([0.5, 2.0, 8.0, 32.0])


def test_candidate_grid_sparsity_tolerance_is_strict():
    # |0 - 1e-9| is exactly 1e-9 in float64: not below the tolerance, so not the same run;
    # 1.5e-9 is not either, 0.9e-9 is
    for s, kept in ((1e-9, 1), (1.5e-9, 1), (0.9e-9, 0)):
        grid = candidate_grid([0.0], [1e6], [1e3], done=[[s, 1e6, 1e3]])
        assert grid.shape == (kept, 3), s


def test_greedy_batch_at_tiny_variances():
    # a variance below 1e-300: the threshold is min_share * 1e-300 = 5e-303 (default 0.5%).
    # var0 = 1.5e-300, Var(l) = 1, no noise: the gain is Cov^2 = 8e-303 > 5e-303 (and
    # Cov = 8.9e-152 is below sqrt(1.5e-300), so the matrix is a covariance)
    c = math.sqrt(8e-303)
    cov = np.array([[1.5e-300, c], [c, 1.0]])
    with np.errstate(invalid="ignore"):  # the conditioned candidate's gain is 0 / 0
        assert greedy_batch(cov, 0.0, np.array([1.0]), budget=1.0)[0] == [0]
    # and with a gain of 4e-303 below it, nothing
    c = math.sqrt(4e-303)
    cov = np.array([[1.5e-300, c], [c, 1.0]])
    assert greedy_batch(cov, 0.0, np.array([1.0]), budget=1.0)[0] == []
    # a target without variance and a negative min_share: the run is taken, its share is 0
    assert greedy_batch(np.zeros((2, 2)), 1.0, np.array([1.0]), 1.0, min_share=-1.0) == (
        [0],
        [0.0],
        0.0,
    )


def test_propose_with_a_target_that_does_not_vary(monkeypatch):
    # every draw gives the same target: nothing to narrow, no run proposed, the expected
    # width is the current one
    _stand_in(monkeypatch, _draws(), np.full(40, 0.5), interval=(0.5, 0.5, 0.5))
    p = propose(
        _points(),
        parse_target("equivalent-size:S=0.5"),
        CANDS,
        1e9,
        FitOptions("dense", space="linear"),
        fit=FitResult(LAW, 0.5, 5),
    )
    assert p.runs == [] and p.spent_flops == 0.0
    assert p.width == 0.0 and p.expected_width == 0.0
    _stand_in(monkeypatch, _draws(), np.full(40, 0.5), interval=(0.25, 0.5, 1.0))
    p = propose(
        _points(),
        parse_target("equivalent-size:S=0.5"),
        CANDS,
        1e9,
        FitOptions("dense", space="linear"),
        fit=FitResult(LAW, 0.5, 5),
    )
    assert p.expected_width == 0.75


def test_propose_small_budget_noise_floor_and_repr(monkeypatch):
    # finished runs exactly on the law: residuals 0, the noise is its floor 1e-12; a budget
    # below one FLOP is still a budget (candidates of 6 * 0.1 * 0.1 = 0.06 FLOPs)
    _stand_in(monkeypatch, _draws(), U)
    S = np.zeros(5)
    exact = Points(S, RUNS_N, RUNS_D, LAW.predict(S, RUNS_N, RUNS_D))
    cands = np.array([[0.0, 0.1, 0.1]])
    p = propose(
        exact,
        parse_target("equivalent-size:S=0.5"),
        cands,
        0.5,
        FitOptions("dense", space="linear"),
        fit=FitResult(LAW, 0.5, 5),
    )
    assert p.noise == 1e-12
    assert [r["flops"] for r in p.runs] == [pytest.approx(0.06)]
    assert p.budget_flops == 0.5
    # the fit is left out of the repr (it is large)
    assert "fit=" not in repr(p) and "noise=1e-12" in repr(p)
