"""laws.regime: verdicts at their exact thresholds, and every message word for word (mutation
kills).

Budgets are 1, 2, 4 (one doubling apart, log2 of each ratio is exactly 1), so a series' drops
are the differences of its losses, and the noise level is MIN_DROP x the mean loss. The losses
of the threshold tests were found by stepping through neighbouring float64 values until the
drop (or ratio) equals the threshold exactly as the code computes it.
"""

import numpy as np
import pytest

from sparsescale.errors import SparsescaleError
from sparsescale.laws.regime import (
    CRASH_RATIO,
    MIN_DROP,
    STEP_RATIO,
    Series,
    check_series,
    regime_warning,
)

D3 = [1.0, 2.0, 4.0]


def one(loss, data=D3, s=0.0, n=1e4):
    (series,) = check_series(np.full(len(data), s), np.full(len(data), n), data, loss)
    return series


def _noise(loss):
    return MIN_DROP * float(np.mean(loss))


def test_thresholds():
    assert CRASH_RATIO == 2**-1.5 and STEP_RATIO == 1.15 and MIN_DROP == 0.005


def test_three_budgets_are_judged_two_are_not():
    # two drops give one ratio: enough to judge; a step of ratio 2
    assert one([3.0, 2.9, 2.7]).verdict == "step"
    assert one([3.0, 2.9], data=D3[:2]).verdict == "too short"
    assert one([3.0], data=D3[:1]).drops == [] and one([3.0], data=D3[:1]).ratios == []


def test_ratio_exactly_at_the_step_threshold_is_not_a_step():
    # drops 4 - 3 = 1 and 3 - 1.85 = 1.15: the ratio equals STEP_RATIO in float64
    x = one([4.0, 3.0, 1.85])
    assert x.drops == [1.0, 3.0 - 1.85] and x.ratios == [STEP_RATIO]
    assert x.verdict == "power law"
    # just above it, a step
    assert one([4.0, 3.0, 1.84]).verdict == "step"


def test_ratio_exactly_at_the_crash_threshold_is_not_a_crash():
    # drops 3 and 3 - 1.93933982822017860 = 1.0606601717798214: ratio 2^-1.5 exactly
    x = one([6.0, 3.0, 1.9393398282201786])
    assert x.ratios == [CRASH_RATIO]
    assert x.verdict == "power law"
    assert one([6.0, 3.0, 1.94]).verdict == "crash"


def test_a_later_drop_exactly_at_noise_is_no_step():
    # drops 0.005192 and 0.009992 (ratio 1.92 > 1.15), the later one equal to the noise
    loss = [2.0051920000000005, 2.0, 1.990008]
    x = one(loss)
    assert x.drops[1] == _noise(loss) and x.ratios[0] > STEP_RATIO
    assert x.verdict == "power law"
    # a little more drop: a step
    assert one([2.0051920000000005, 2.0, 1.9899]).verdict == "step"


def test_an_earlier_drop_exactly_at_noise_is_no_crash():
    # drops 0.010015 (= the noise) and 0.001015: ratio 0.10 < 2^-1.5
    loss = [2.010015, 2.0, 1.9989850000000642]
    x = one(loss)
    assert x.drops[0] == _noise(loss) and x.ratios[0] < CRASH_RATIO
    assert x.verdict == "power law"
    assert one([2.0101, 2.0, 1.9989850000000642]).verdict == "crash"


def test_a_rise_exactly_at_noise_is_not_rising():
    # drops -0.010033 (= minus the noise) and 0.000266; the first drop is not positive, so its
    # ratio is inf, and the later drop is within noise: no step either
    loss = [2.0, 2.010033, 2.009766999999975]
    x = one(loss)
    assert x.drops[0] == -_noise(loss) and x.ratios == [float("inf")]
    assert x.verdict == "power law"
    assert one([2.0, 2.0101, 2.009766999999975]).verdict == "rising"


def test_a_flat_start_has_an_infinite_ratio_and_steps():
    # drops 0 and 0.5: the ratio of a zero drop is inf (no division by zero); a step
    x = one([2.0, 2.0, 1.5])
    assert x.drops == [0.0, 0.5] and x.ratios == [float("inf")]
    assert x.verdict == "step"


def test_rising_comes_before_step_and_step_before_crash():
    # drops 1, 0.1, 1, -0.5: a crash (0.1), a step (10) and a rise; rising wins
    assert one([5.0, 4.0, 3.9, 2.9, 3.4], data=[1, 2, 4, 8, 16]).verdict == "rising"
    # drops 1, 0.1, 1: crash first in the series, but a step is named
    assert one([5.0, 4.0, 3.9, 2.9], data=[1, 2, 4, 8]).verdict == "step"


def test_series_fields_order_and_dictionary():
    # N within 2% are one size; its N is their median; the series come in the order of S,
    # then size
    S = [0.5, 0.5, 0.5, 0.0, 0.0, 0.0]
    N = [1e4, 1.01e4, 1.015e4, 2e4, 2e4, 2e4]
    D = [1.0, 2.0, 4.0, 4.0, 2.0, 1.0]
    L = [3.0, 2.5, 2.25, 2.25, 2.5, 3.0]
    dense, sparse = check_series(S, N, D, L)
    assert (dense.sparsity, dense.n_nonzero, sparse.sparsity, sparse.n_nonzero) == (
        0.0,
        2e4,
        0.5,
        1.01e4,
    )
    assert sparse.to_dict() == {
        "sparsity": 0.5,
        "n_nonzero": 1.01e4,
        "data": [1.0, 2.0, 4.0],
        "loss": [3.0, 2.5, 2.25],
        "drops": [0.5, 0.25],
        "ratios": [0.5],
        "verdict": "power law",
    }
    assert dense.data == [1.0, 2.0, 4.0] and dense.loss == [3.0, 2.5, 2.25]
    # two sizes at one S: smaller first
    two = check_series([0.0] * 4, [2e4, 2e4, 1e4, 1e4], [1.0, 2.0, 1.0, 2.0], [3.0, 2.0, 4.0, 3.0])
    assert [(x.n_nonzero, x.loss) for x in two] == [(1e4, [4.0, 3.0]), (2e4, [3.0, 2.0])]


def test_refusals_word_for_word():
    with pytest.raises(SparsescaleError) as info:
        check_series([0.0], [1e4, 2e4], [1.0], [3.0])
    assert str(info.value) == (
        "check_series: sparsity, n_nonzero, data and loss must be equally long and non-empty"
    )
    with pytest.raises(SparsescaleError) as info:
        check_series([], [], [], [])
    assert "equally long and non-empty" in str(info.value)
    for bad in (
        ([0.0], [1e4], [-1.0], [3.0]),
        ([0.0], [1e4], [1.0], [float("inf")]),
        ([float("nan")], [1e4], [1.0], [3.0]),
    ):
        with pytest.raises(SparsescaleError) as info:
            check_series(*bad)
        assert str(info.value) == "check_series: data must be positive and every value finite"


def _series(verdict, s=0.0, n=1000.0, drops=(0.1, 0.2)):
    return Series(s, n, [], [], list(drops), [], verdict)


def test_regime_warning_word_for_word():
    assert regime_warning([]) is None
    assert regime_warning([_series("power law"), _series("too short")]) is None
    series = [
        _series("crash", 0.5, 2e4, (0.5, 0.1)),
        _series("rising", 0.0, 1e4, (0.2, -0.1)),
        _series("step", 0.75, 3.5e4, (0.01, 0.2, 0.4125)),
        _series("step", 0.875, 1e5),
        _series("power law"),
        _series("too short"),
    ]
    # 4 bad of 5 judged (too short is not judged); the counts in the order step, crash, rising;
    # the example is the first step
    assert regime_warning(series) == (
        "4 of 5 (S, N) series do not fall with D like a power law (2 step, 1 crash, 1 rising; "
        "e.g. S = 0.75, N = 35,000: drops per doubling of D 0.010, 0.200, 0.412); the law's D "
        "term cannot follow them, so its extrapolation in D is not to be trusted"
    )
    # a crash is named before a rise, and a kind with no series is left out of the counts
    msg = regime_warning(series[:2])
    assert msg.startswith(
        "2 of 2 (S, N) series do not fall with D like a power law (1 crash, 1 rising; "
        "e.g. S = 0.5, N = 20,000: drops per doubling of D 0.500, 0.100)"
    )
    msg = regime_warning([series[1], _series("power law")])
    assert msg.startswith("1 of 2 (S, N) series do not fall with D like a power law (1 rising; ")


def test_every_group_is_a_series():
    # three (S, N) groups (more than the two columns of the group keys): three series
    S = [0.0] * 6 + [0.5] * 3
    N = [1e4] * 3 + [2e4] * 3 + [1e4] * 3
    out = check_series(S, N, D3 * 3, [3.0, 2.5, 2.25] * 3)
    assert [(x.sparsity, x.n_nonzero) for x in out] == [(0.0, 1e4), (0.0, 2e4), (0.5, 1e4)]
    assert all(x.loss == [3.0, 2.5, 2.25] for x in out)
