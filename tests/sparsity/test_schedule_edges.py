"""The schedules' edges: every refusal's exact message, the boundaries that
are accepted, the defaults, and the other kinds' values step by step against
hand-written expectations. (Written against the surviving mutants of
scripts/mutation.sh: a message, a bound or a default changed unseen.)"""

from __future__ import annotations

import dataclasses

import pytest

from sparsescale.errors import SparsescaleError
from sparsescale.sparsity.schedules import (
    SCHEDULE_KINDS,
    ConstantSchedule,
    CubicSchedule,
    DenseSchedule,
    OneShotSchedule,
    cubic_mean_sparsity_fraction,
    make_schedule,
    mean_density,
)


def _message(make) -> str:
    with pytest.raises(SparsescaleError) as info:
        make()
    return str(info.value)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: CubicSchedule(1.0, 10), "sparsity must be in [0, 1), got 1.0"),
        (lambda: CubicSchedule(-0.1, 10), "sparsity must be in [0, 1), got -0.1"),
        (lambda: CubicSchedule("0.5", 10), "sparsity must be in [0, 1), got '0.5'"),
        (lambda: CubicSchedule(0.5, 0), "total_steps must be a positive integer, got 0"),
        (lambda: CubicSchedule(0.5, 10.0), "total_steps must be a positive integer, got 10.0"),
        (lambda: CubicSchedule(0.5, True), "total_steps must be a positive integer, got True"),
        (
            lambda: CubicSchedule(0.5, 10, start=-0.1),
            "start must be a fraction of training in [0, 1), got -0.1",
        ),
        (
            lambda: CubicSchedule(0.5, 10, start=1.0, end=1.0),
            "start must be a fraction of training in [0, 1), got 1.0",
        ),
        (
            lambda: CubicSchedule(0.5, 10, start=0.0, end=0.0),
            "end must be a fraction of training in (0, 1], got 0.0",
        ),
        (
            lambda: CubicSchedule(0.5, 10, end=1.5),
            "end must be a fraction of training in (0, 1], got 1.5",
        ),
        (
            lambda: CubicSchedule(0.5, 10, start=0.6, end=0.5),
            "start (0.6) must be before end (0.5)",
        ),
        (
            lambda: CubicSchedule(0.5, 10, every=0),
            "every must be a positive integer number of steps, got 0",
        ),
        (
            lambda: CubicSchedule(0.5, 10, every=2.0),
            "every must be a positive integer number of steps, got 2.0",
        ),
        (
            lambda: CubicSchedule(0.5, 10, every=True),
            "every must be a positive integer number of steps, got True",
        ),
        (
            lambda: OneShotSchedule(0.5, 10, at_step=10),
            "at_step must be in [0, total_steps=10), got 10",
        ),
        (
            lambda: OneShotSchedule(0.5, 10, at_step=-1),
            "at_step must be in [0, total_steps=10), got -1",
        ),
        (lambda: OneShotSchedule(1.5, 10), "sparsity must be in [0, 1), got 1.5"),
        (lambda: ConstantSchedule(0.5, 0), "total_steps must be a positive integer, got 0"),
        (lambda: ConstantSchedule(1.0, 5), "sparsity must be in [0, 1), got 1.0"),
        (lambda: DenseSchedule(0), "total_steps must be a positive integer, got 0"),
        (lambda: DenseSchedule(10, sparsity=0.5), "the dense schedule has sparsity 0, got 0.5"),
        (
            lambda: make_schedule("linear", 0.5, 10),
            "unknown schedule 'linear'; expected one of cubic, one-shot, constant, dense",
        ),
        (
            lambda: cubic_mean_sparsity_fraction(0.5, 0.5),
            "need 0 <= start < end <= 1, got start=0.5, end=0.5",
        ),
        (
            lambda: cubic_mean_sparsity_fraction(-0.1, 0.5),
            "need 0 <= start < end <= 1, got start=-0.1, end=0.5",
        ),
        (
            lambda: cubic_mean_sparsity_fraction(0.1, 1.1),
            "need 0 <= start < end <= 1, got start=0.1, end=1.1",
        ),
    ],
)
def test_each_refusal_says_exactly_what_is_wrong(make, message):
    assert _message(make) == message


def test_the_boundaries_are_accepted():
    # S = 0, one step, start 0, end 1, every 1, a numpy-free int: all valid
    s = CubicSchedule(0.0, 1, start=0.0, end=1.0, every=1)
    assert (s.start_step, s.end_step) == (0, 0) and s.sparsity_at(0) == 0.0
    assert (
        CubicSchedule(0.5, 1).sparsity_at(0) == 0.5
    )  # one step: the end (capped at step 0) at once
    assert (
        OneShotSchedule(0.0, 1).sparsity_at(0) == 0.0
        and OneShotSchedule(0.5, 10, at_step=9).sparsity_at(9) == 0.5
    )
    assert ConstantSchedule(0.0, 1).mean_density() == 1.0
    assert (
        cubic_mean_sparsity_fraction(0.0, 1.0) == 0.75
    )  # the whole run is the ramp: 3/4 of S on average


def test_kinds_and_defaults():
    assert SCHEDULE_KINDS == ("cubic", "one-shot", "constant", "dense")
    for kind, cls in zip(
        SCHEDULE_KINDS, (CubicSchedule, OneShotSchedule, ConstantSchedule, DenseSchedule)
    ):
        assert type(make_schedule(kind, 0.0 if kind == "dense" else 0.5, 1000)) is cls
    s = CubicSchedule(0.5, 1000)
    assert (s.start, s.end, s.every) == (0.25, 0.75, 100)
    assert (
        make_schedule("cubic", 0.5, 1000) == s and make_schedule("one-shot", 0.5, 1000).at_step == 0
    )
    # defaults by hand: updates on 250, 350, ..., 650 and 750
    assert [t for t in range(1000) if s.is_update_step(t)] == [250, 350, 450, 550, 650, 750]
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.sparsity = 0.9
    for cls, args in (
        (OneShotSchedule, (0.5, 10)),
        (ConstantSchedule, (0.5, 10)),
        (DenseSchedule, (10,)),
    ):
        with pytest.raises(dataclasses.FrozenInstanceError):
            cls(*args).total_steps = 3


def test_mean_density_by_name_is_the_hand_sum():
    """mean_density(kind, ...) with and without its keyword defaults, against
    sums written out here (1 - s per step, averaged)."""

    def cubic_by_hand(S, steps, start, end, every):
        t0, t1 = round(start * steps), min(round(end * steps), steps - 1)
        total = 0.0
        for t in range(steps):
            last = None if t < t0 else (t1 if t >= t1 else t0 + (t - t0) // every * every)
            total += 1 - (0.0 if last is None else S * (1 - (1 - (last - t0) / (t1 - t0)) ** 3))
        return total / steps

    assert mean_density("cubic", 0.8, 1000) == pytest.approx(
        cubic_by_hand(0.8, 1000, 0.25, 0.75, 100), rel=1e-12
    )
    assert mean_density("cubic", 0.8, 999, start=0.1, end=0.9, every=7) == pytest.approx(
        cubic_by_hand(0.8, 999, 0.1, 0.9, 7), rel=1e-12
    )
    assert mean_density("one-shot", 0.6, 100, at_step=30) == pytest.approx(
        1 - 0.6 * 70 / 100, rel=1e-12
    )
    assert mean_density("one-shot", 0.6, 100) == pytest.approx(0.4, rel=1e-12)
    assert mean_density("constant", 0.6, 100) == pytest.approx(0.4, rel=1e-12)
    assert mean_density("dense", 0.0, 100) == 1.0


def test_other_kinds_step_by_step():
    one = OneShotSchedule(0.5, 10, at_step=4)
    assert [one.target_at(t) for t in range(10)] == [0.0] * 4 + [0.5] * 6
    assert [one.is_update_step(t) for t in range(10)] == [t == 4 for t in range(10)]
    const = ConstantSchedule(0.5, 10)
    assert (
        [const.sparsity_at(t) for t in range(10)]
        == [0.5] * 10
        == [const.target_at(t) for t in range(10)]
    )
    dense = DenseSchedule(10)
    assert (
        [dense.sparsity_at(t) for t in range(10)]
        == [0.0] * 10
        == [dense.target_at(t) for t in range(10)]
    )
    assert dense.sparsity == 0.0 and DenseSchedule(10, sparsity=0.0).mean_density() == 1.0
    cubic = CubicSchedule(0.5, 100, start=0.2, end=0.6, every=10)
    assert cubic.last_update_step(19) is None and cubic.last_update_step(20) == 20
    assert (
        cubic.last_update_step(35) == 30
        and cubic.last_update_step(60) == 60
        and cubic.last_update_step(99) == 60
    )
    assert cubic.target_at(20) == 0.0 and cubic.target_at(40) == pytest.approx(
        0.5 * (1 - 0.5**3), rel=1e-15
    )
    assert cubic.target_at(60) == 0.5 and cubic.target_at(10) == 0.0


def test_update_grid_starts_at_t0_whatever_its_remainder():
    # t0 = round(0.1 * 40) = 4, t1 = 20, every 3: 4, 7, ..., 19 and t1 (t0 is no multiple of every)
    s = CubicSchedule(0.5, 40, start=0.1, end=0.5, every=3)
    assert [t for t in range(40) if s.is_update_step(t)] == [4, 7, 10, 13, 16, 19, 20]


@pytest.mark.parametrize("steps, start, end", [(1, 0.25, 0.75), (3, 0.5, 0.6)])
def test_a_ramp_of_no_length_prunes_at_once(steps, start, end):
    """t0 == t1 (one step, or a window narrower than a step): S from t1 on.
    (3 steps, 0.5-0.6: t0 = round(1.5) = 2, t1 = min(round(1.8), 2) = 2.)"""
    s = CubicSchedule(0.6, steps, start=start, end=end, every=5)
    assert s.start_step == s.end_step == steps - 1
    assert [s.sparsity_at(t) for t in range(steps)] == [0.0] * (steps - 1) + [0.6]
    assert s.mean_density() == pytest.approx(1 - 0.6 / steps, rel=1e-12)
