import subprocess
import sys

import pytest

from sparsescale.errors import SparsescaleError
from sparsescale.sparsity.schedules import (
    ConstantSchedule,
    CubicSchedule,
    DenseSchedule,
    OneShotSchedule,
    cubic_mean_sparsity_fraction,
    make_schedule,
    mean_density,
)


def cubic(S, t, t0, t1):
    p = min(max((t - t0) / (t1 - t0), 0.0), 1.0)
    return S * (1 - (1 - p) ** 3)


def test_cubic_formula_at_start_middle_end_and_between_updates():
    sched = CubicSchedule(0.8, total_steps=1000, start=0.25, end=0.75, every=50)
    assert (sched.start_step, sched.end_step) == (250, 750)
    assert sched.sparsity_at(0) == 0.0
    assert sched.sparsity_at(249) == 0.0
    assert sched.sparsity_at(250) == 0.0  # p = 0 at the start
    # Middle of the ramp: p = 1/2 -> S * (1 - 1/8).
    assert sched.sparsity_at(500) == pytest.approx(0.8 * 7 / 8, abs=1e-15)
    assert sched.target_at(500) == pytest.approx(0.7, abs=1e-15)
    # Between updates the value of the last update step holds.
    for t in (351, 375, 399):
        assert sched.sparsity_at(t) == pytest.approx(cubic(0.8, 350, 250, 750), abs=1e-15)
        assert sched.target_at(t) == pytest.approx(cubic(0.8, t, 250, 750), abs=1e-15)
    assert sched.sparsity_at(400) == pytest.approx(cubic(0.8, 400, 250, 750), abs=1e-15)
    assert [t for t in range(1000) if sched.is_update_step(t)] == list(range(250, 751, 50))
    assert sched.sparsity_at(750) == 0.8 and sched.sparsity_at(999) == 0.8


def test_cubic_reaches_end_exactly_when_end_is_off_the_update_grid():
    sched = CubicSchedule(0.5, total_steps=1000, start=0.1, end=0.73, every=100)
    updates = [t for t in range(1000) if sched.is_update_step(t)]
    assert updates == [100, 200, 300, 400, 500, 600, 700, 730]
    assert sched.sparsity_at(729) == pytest.approx(cubic(0.5, 700, 100, 730))
    assert sched.sparsity_at(730) == 0.5
    # end = 1 is clipped to the last step so the final sparsity is reached.
    assert CubicSchedule(0.5, 10, start=0.0, end=1.0, every=3).sparsity_at(9) == 0.5


def test_sparsity_never_decreases():
    sched = CubicSchedule(0.9, total_steps=777, start=0.2, end=0.9, every=7)
    values = [sched.sparsity_at(t) for t in range(777)]
    assert all(b >= a for a, b in zip(values, values[1:]))


def test_mean_density_is_the_mean_of_the_applied_values():
    sched = CubicSchedule(0.75, total_steps=1234, start=0.3, end=0.6, every=17)
    brute = sum(1 - sched.sparsity_at(t) for t in range(1234)) / 1234
    assert sched.mean_density() == pytest.approx(brute, rel=1e-12)


@pytest.mark.parametrize("start,end", [(0.25, 0.75), (0.1, 0.9), (0.0, 0.5)])
def test_discrete_mean_density_converges_to_closed_form(start, end):
    from sparsescale.laws.planning import mean_sparsity_fraction

    assert cubic_mean_sparsity_fraction(start, end) == pytest.approx(
        mean_sparsity_fraction(start, end)
    )
    S = 0.8
    closed = 1 - S * mean_sparsity_fraction(start, end)
    errors = [
        abs(mean_density("cubic", S, steps, start=start, end=end, every=100) - closed)
        for steps in (10_000, 100_000, 1_000_000)
    ]
    assert errors[-1] < 2e-4
    assert errors[0] > errors[1] > errors[2]
    assert cubic_mean_sparsity_fraction() == 0.625


def test_other_kinds():
    one = OneShotSchedule(0.5, 100, at_step=40)
    assert [one.sparsity_at(t) for t in (0, 39, 40, 99)] == [0, 0, 0.5, 0.5]
    assert one.mean_density() == pytest.approx(1 - 0.5 * 60 / 100)
    const = ConstantSchedule(0.5, 100)
    assert const.is_update_step(0) and not const.is_update_step(1)
    assert const.mean_density() == 0.5
    dense = DenseSchedule(100)
    assert dense.mean_density() == 1.0 and not any(dense.is_update_step(t) for t in range(100))
    assert isinstance(make_schedule("one-shot", 0.5, 100, at_step=3), OneShotSchedule)


@pytest.mark.parametrize(
    "kwargs,message",
    [
        (dict(sparsity=1.0, total_steps=10), "sparsity"),
        (dict(sparsity=-0.1, total_steps=10), "sparsity"),
        (dict(sparsity=0.5, total_steps=0), "total_steps"),
        (dict(sparsity=0.5, total_steps=10, start=0.5, end=0.5), "start"),
        (dict(sparsity=0.5, total_steps=10, start=0.8, end=0.2), "start"),
        (dict(sparsity=0.5, total_steps=10, every=0), "every"),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(SparsescaleError, match=message):
        CubicSchedule(**kwargs)


def test_unknown_kind():
    with pytest.raises(SparsescaleError, match="unknown schedule 'linear'"):
        make_schedule("linear", 0.5, 10)


def test_schedules_import_without_torch():
    code = "import sys, sparsescale.sparsity.schedules; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
