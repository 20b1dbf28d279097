"""The run's schedule code, called directly, against hand-computed values.

`_lr_at` (the learning rate of one step) and `_build` (the model, optimizer
and pruner of a run) are what `train()` wires; test_schedule_wiring.py checks
the same wiring end to end. These tests run in a second and pin the values
that the end-to-end runs do not reach: warmups whose length is not an integer
number of steps, the first step after the warmup, the cosine's midpoint and
floor, the pruner's window, cadence and schedule kind, the seeded init.
Every expected number is worked out in the comments, not computed with the
code under test.
"""

from __future__ import annotations

import math

import pytest
import torch

from sparsescale.train import run
from sparsescale.train.config import RunConfig
from sparsescale.train.plan import plan_run

BASE = 1.0


@pytest.mark.parametrize(
    "step,expected",
    [
        (0, 0.1),  # warmup 0.1 of 100 steps: n_w = 10; step k < 10 gets (k + 1) / 10
        (4, 0.5),
        (9, 1.0),  # the last warmup step reaches the base
    ],
)
@pytest.mark.parametrize("schedule", ["constant", "cosine", "rsqrt"])
def test_warmup_is_linear_to_the_base(schedule, step, expected):
    assert run._lr_at(step, 100, BASE, schedule, 0.1) == pytest.approx(expected, rel=1e-12)


def test_warmup_length_is_the_floor_of_its_fraction():
    # warmup 0.15 of 10 steps: 1.5 -> n_w = 1 (floor, not round): step 0 is the whole warmup
    # (1/1 = base), and step 1 starts the cosine at progress 0 (base again), not 2/2 of a warmup.
    assert run._lr_at(0, 10, BASE, "cosine", 0.15) == pytest.approx(1.0, rel=1e-12)
    assert run._lr_at(0, 10, BASE, "constant", 0.15) == pytest.approx(1.0, rel=1e-12)
    # warmup 0.25 of 10: n_w = 2 -> step 0 is 1/2, step 1 is 2/2
    assert run._lr_at(0, 10, BASE, "cosine", 0.25) == pytest.approx(0.5, rel=1e-12)
    # cosine after a 2-step warmup over 10: step 6 -> progress (6 - 2) / (10 - 2) = 1/2 -> 0.1 +
    # 0.45 = 0.55
    assert run._lr_at(6, 10, BASE, "cosine", 0.25) == pytest.approx(0.55, rel=1e-12)


def test_constant_after_warmup_is_the_base():
    assert [run._lr_at(k, 100, 0.3, "constant", 0.1) for k in (10, 50, 99)] == pytest.approx(
        [0.3] * 3, rel=1e-12
    )
    assert run._lr_at(0, 100, 0.3, "constant", 0.0) == pytest.approx(0.3, rel=1e-12)


@pytest.mark.parametrize(
    "step,expected",
    [
        (10, 1.0),  # progress 0: cos 0 = 1 -> 0.1 + 0.9 = 1
        (55, 0.55),  # progress 45/90 = 1/2: cos(pi/2) = 0 -> 0.1 + 0.45
        (
            40,
            0.1 + 0.45 * (1 + math.cos(math.pi / 3)),
        ),  # progress 30/90 = 1/3: 0.1 + 0.45 * 1.5 = 0.775
        (100, 0.1),  # progress 1: the 10% floor (one past the last step)
    ],
)
def test_cosine_after_warmup_decays_to_ten_percent(step, expected):
    assert run._lr_at(step, 100, BASE, "cosine", 0.1) == pytest.approx(expected, rel=1e-12)


def test_cosine_without_warmup_and_an_unknown_name_fall_to_cosine():
    # n_w = 0: progress k / 100; step 50 -> 0.55, step 0 -> 1
    assert run._lr_at(50, 100, 2.0, "cosine", 0.0) == pytest.approx(1.1, rel=1e-12)
    assert run._lr_at(0, 100, 2.0, "cosine", 0.0) == pytest.approx(2.0, rel=1e-12)


@pytest.mark.parametrize(
    "step,warmup,expected",
    [
        (10, 0.1, math.sqrt(10 / 11)),  # first step after a 10-step warmup: sqrt(n_w / (k + 1))
        (39, 0.1, 0.5),  # sqrt(10 / 40)
        (0, 0.0, 1.0),  # no warmup: sqrt(1 / 1), capped at the base
        (3, 0.0, 0.5),  # sqrt(1 / 4)
        (99, 0.0, 0.1),  # sqrt(1 / 100)
    ],
)
def test_rsqrt_after_warmup(step, warmup, expected):
    assert run._lr_at(step, 100, BASE, "rsqrt", warmup) == pytest.approx(expected, rel=1e-12)


def _tiny(corpus, **kw) -> RunConfig:
    return RunConfig(
        model="gpt",
        params="10k",
        batch=8,
        seq_len=16,
        threads=1,
        steps=40,
        corpus=str(corpus),
        **kw,
    )


def test_build_gives_the_pruner_the_runs_window_cadence_and_kind(small_corpus):
    cfg = _tiny(small_corpus, sparsity=0.5, prune_start=0.1, prune_end=0.5, prune_every=3, seed=3)
    plan, _ = plan_run(cfg)
    model, optimizer, pruner = run._build(cfg, plan, torch.device("cpu"))
    c = pruner.config
    assert (c["sparsity"], c["total_steps"], c["start"], c["end"], c["every"], c["schedule"]) == (
        0.5,
        40,
        0.1,
        0.5,
        3,
        "cubic",
    )
    assert pruner.optimizer is optimizer
    # the cubic ramp by hand: t0 = round(0.1 * 40) = 4, t1 = round(0.5 * 40) = 20, updates every 3
    # steps from t0 (4, 7, 10, 13, ...); after step k the sparsity of the last update t <= k:
    # S (1 - (1 - (t - 4)/16)^3). Step 12 -> t = 10: 0.5 (1 - (10/16)^3) = 0.37792...;
    # step 13 -> 0.5 (1 - (7/16)^3) = 0.45812...; nothing before step 4, S from step 20 on.
    assert set(pruner.scheduled_sparsity(3).values()) == {0.0}
    assert list(set(pruner.scheduled_sparsity(12).values())) == [
        pytest.approx(0.5 * (1 - (10 / 16) ** 3), rel=1e-12)
    ]
    assert list(set(pruner.scheduled_sparsity(13).values())) == [
        pytest.approx(0.5 * (1 - (7 / 16) ** 3), rel=1e-12)
    ]
    assert set(pruner.scheduled_sparsity(20).values()) == {0.5}


def test_build_of_a_dense_run_has_a_dense_pruner(small_corpus):
    cfg = _tiny(small_corpus, sparsity=0.0)
    plan, _ = plan_run(cfg)
    _, _, pruner = run._build(cfg, plan, torch.device("cpu"))
    assert pruner.config["schedule"] == "dense" and pruner.config["sparsity"] == 0.0


def test_build_seeds_the_init(small_corpus):
    # the same seed twice: the same weights; another seed: other weights (and the global
    # generator's state in between does not matter)
    cfg = _tiny(small_corpus, sparsity=0.5, seed=7)
    plan, _ = plan_run(cfg)
    a = run._build(cfg, plan, torch.device("cpu"))[0].state_dict()
    torch.manual_seed(12345)
    b = run._build(cfg, plan, torch.device("cpu"))[0].state_dict()
    other = _tiny(small_corpus, sparsity=0.5, seed=8)
    c = run._build(other, plan_run(other)[0], torch.device("cpu"))[0].state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)
