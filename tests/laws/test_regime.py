"""laws.regime: which (S, N) series fall with D like the law's power law, against
closed forms, hand-made steps and crashes, and the paper's published sweeps."""

import numpy as np
import pytest

from sparsescale.errors import SparsescaleError
from sparsescale.laws.paper import paper_points
from sparsescale.laws.regime import CRASH_RATIO, STEP_RATIO, check_series, regime_warning

D = np.array([1e5, 2e5, 4e5, 8e5, 1.6e6])


def one(loss, data=D, s=0.0, n=1e4):
    (series,) = check_series(np.full(len(data), s), np.full(len(data), n), data, loss)
    return series


@pytest.mark.parametrize("b", [0.1, 0.5, 1.0, 1.4])
def test_a_power_law_gives_ratios_two_to_the_minus_b(b):
    E, A = 1.7, 3.0
    x = one(E + A * (D / 1e5) ** -b)
    want_drops = [A * (2.0 ** (-b * k)) * (1 - 2.0**-b) for k in range(4)]
    assert x.drops == pytest.approx(want_drops, rel=1e-12)
    assert x.ratios == pytest.approx([2.0**-b] * 3, rel=1e-12)
    assert x.verdict == "power law"


def test_uneven_budgets_are_drops_per_doubling():
    d = np.array([1e5, 4e5, 8e5])  # two doublings, then one
    y = 2.0 + (d / 1e5) ** -0.5
    x = one(y, data=d)
    # per doubling: (L(1e5) - L(4e5)) / 2 against L(4e5) - L(8e5)
    assert x.drops == pytest.approx([(y[0] - y[1]) / 2, y[1] - y[2]], rel=1e-12)
    assert x.ratios == pytest.approx([2 * (y[1] - y[2]) / (y[0] - y[1])], rel=1e-12)


def test_step_crash_rising_and_noise():
    base = 2.0 + (D / 1e5) ** -0.3
    step = base - np.array([0, 0, 0, 0.2, 0.5])  # leaves a plateau: drops grow
    assert one(step).verdict == "step"
    assert max(one(step).ratios) > STEP_RATIO
    crash = 2.0 + 5.0 * (D / 1e5) ** -2.0  # a local exponent of 2: drops collapse by 4x
    assert one(crash).ratios[0] == pytest.approx(0.25) and 0.25 < CRASH_RATIO
    assert one(crash).verdict == "crash"
    rising = base.copy()
    rising[-1] = base[-2] + 0.1
    assert one(rising).verdict == "rising"
    # a growing drop that is within noise (drops of 0.1% of the loss) says nothing
    flat = 3.0 - np.array([0, 0.001, 0.002, 0.0035, 0.006])
    assert one(flat).verdict == "power law"
    assert one(base[:2], data=D[:2]).verdict == "too short"


def test_seeds_are_averaged_and_nearby_sizes_are_one_series():
    S = np.zeros(6)
    N = np.array([1e4, 1.01e4, 1e4, 1.01e4, 1e4, 1.01e4])  # a sizer lands within 2%
    d = np.array([1e5, 1e5, 2e5, 2e5, 4e5, 4e5])
    L = np.array([3.0, 3.2, 2.8, 2.8, 2.7, 2.7])
    (x,) = check_series(S, N, d, L)
    assert x.loss == pytest.approx([3.1, 2.8, 2.7]) and x.data == [1e5, 2e5, 4e5]
    two = check_series(np.r_[S, S + 0.5], np.r_[N, N], np.r_[d, d], np.r_[L, L])
    assert [(x.sparsity, len(x.data)) for x in two] == [(0.0, 3), (0.5, 3)]


def test_the_papers_sweeps_pass_and_our_byte_step_would_not():
    for spec in ("paper:t5", "paper:vit"):
        series = check_series(*paper_points(spec))
        assert all(x.verdict == "power law" for x in series), spec
        assert regime_warning(series) is None
    # the byte-level GPT's dense N = 25k runs at 1-16M tokens
    # (research/cpu-scale/results/runs-past-step-gpu.csv)
    d = np.array([1e6, 2e6, 4e6, 8e6, 1.6e7])
    x = one(np.array([2.6947, 2.6001, 2.2734, 1.9429, 1.7839]), data=d, n=25088)
    assert x.verdict == "step"
    msg = regime_warning([x])
    assert msg.startswith(
        "1 of 1 (S, N) series do not fall with D like a power law (1 step; e.g. S = 0, N = 25,088"
    )


def test_bad_input_is_one_clear_error():
    with pytest.raises(SparsescaleError, match="equally long"):
        check_series([0.0], [1e4, 2e4], [1e5], [3.0])
    with pytest.raises(SparsescaleError, match="positive"):
        check_series([0.0], [1e4], [0.0], [3.0])
    with pytest.raises(SparsescaleError, match="finite"):
        check_series([0.0], [1e4], [1e5], [float("nan")])
