"""laws.design: hand-computed answers for what test_design checks only loosely (mutation kills).

Every number below is derived in the comment next to it: targets and axes parsed by hand, the
greedy batch on small covariances whose conditioning is exact in binary floating point, and
propose() on a stand-in bootstrap whose draws are chosen so that the covariances are known.
"""

import math

import numpy as np
import pytest

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
    run_flops,
)
from sparsescale.laws.planning import c_mul

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
