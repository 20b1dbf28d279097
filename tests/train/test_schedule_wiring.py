"""The run's hyperparameter wiring against closed forms.

The learning rate each optimizer step actually used and the sparsity the
pruned weights actually have after each step are recorded from a real
`train()` run (the session's optimizer and pruner are wrapped to observe
them, nothing is replaced). The expected values are computed here by hand
from the config, not with the code's own schedule functions, so a wrong
wiring (a window ignored, another schedule) shows up as a mismatch.
"""

from __future__ import annotations

import math

import pytest

from sparsescale.train import run
from sparsescale.train.config import RunConfig

STEPS = 40
BASE_LR = 0.01
TINY = {
    "model": "gpt",
    "params": "10k",
    "sparsity": 0.5,
    "batch": 8,
    "seq_len": 16,
    "threads": 1,
    "steps": STEPS,
    "lr": BASE_LR,
    "eval_tokens": 1024,
}


def _observed_run(
    cfg: RunConfig, out, monkeypatch
) -> tuple[list[float], list[int], list[int], object]:
    """Train `cfg`; return the lr of every optimizer step, the number of zeros
    in the pruned weights after every pruner step, the pruned tensors' sizes,
    and the result."""
    lrs: list[float] = []
    zeros: list[int] = []
    sizes: list[int] = []
    real_setup = run.setup

    def observed_setup(c, o):
        s = real_setup(c, o)
        opt_step, prune_step = s.optimizer.step, s.pruner.step

        def step(*args, **kwargs):
            lrs.append(s.optimizer.param_groups[0]["lr"])
            return opt_step(*args, **kwargs)

        def prune():
            prune_step()
            weights = list(s.pruner.prunable.values())
            zeros.append(sum(int((w == 0).sum()) for w in weights))
            sizes[:] = [w.numel() for w in weights]

        s.optimizer.step, s.pruner.step = step, prune
        return s

    monkeypatch.setattr(run, "setup", observed_setup)
    result = run.train(cfg, out, quiet=True)
    assert len(lrs) == len(zeros) == STEPS
    return lrs, zeros, sizes, result


def _lr_by_hand(k: int, schedule: str, warmup: float) -> float:
    """Step k (0-based) of STEPS: linear warmup over n_w = floor(warmup*STEPS)
    steps reaching the base at step n_w - 1, then
      constant: base
      cosine:   base * (0.1 + 0.9 * (1 + cos(pi * (k - n_w) / (STEPS - n_w))) / 2), 10% at the end
      rsqrt:    base * sqrt(max(n_w, 1) / (k + 1)), capped at base (the T5 recipe's
                1/sqrt(max(step, warmup)), scaled so that it meets the warmup's peak)."""
    n_w = int(warmup * STEPS)
    if k < n_w:
        return BASE_LR * (k + 1) / n_w
    if schedule == "constant":
        return BASE_LR
    if schedule == "cosine":
        return BASE_LR * (0.1 + 0.45 * (1 + math.cos(math.pi * (k - n_w) / (STEPS - n_w))))
    return BASE_LR * min(1.0, math.sqrt(max(n_w, 1) / (k + 1)))


@pytest.mark.slow
@pytest.mark.parametrize(
    "schedule,warmup",
    [("constant", 0.1), ("cosine", 0.1), ("rsqrt", 0.1), ("cosine", 0.0), ("rsqrt", 0.0)],
)
def test_learning_rate_of_every_step_is_the_closed_form(
    schedule, warmup, small_corpus, tmp_path, monkeypatch
):
    cfg = RunConfig(**TINY, corpus=str(small_corpus), lr_schedule=schedule, warmup=warmup)
    lrs, _, _, result = _observed_run(cfg, tmp_path / "run", monkeypatch)
    assert result.status == "finished"
    expected = [_lr_by_hand(k, schedule, warmup) for k in range(STEPS)]
    assert lrs == pytest.approx(expected, rel=1e-12)
    # spot values worked out on paper (STEPS = 40, base 0.01):
    if schedule == "cosine":
        # last step: progress (39 - n_w)/(40 - n_w) -> just above the 10% floor, never below it
        assert 0.001 < lrs[-1] < 0.0011
        assert min(lrs) > 0.001
    if schedule == "rsqrt":
        # warmup 0.1: n_w = 4, step 15 -> 0.01 * sqrt(4/16) = 0.005; warmup 0: step 3 -> 0.01 / 2
        assert lrs[15 if warmup else 3] == pytest.approx(0.005, rel=1e-12)
    if warmup:
        assert lrs[:4] == pytest.approx([0.0025, 0.005, 0.0075, 0.01], rel=1e-12)


@pytest.mark.slow
def test_sparsity_reached_follows_the_prune_window(small_corpus, tmp_path, monkeypatch):
    # A window far from the 25%-75% default: t0 = round(0.1 * 40) = 4, t1 = round(0.5 * 40) = 20,
    # masks updated on steps 4, 7, 10, 13, 16, 19 and 20 (every 3, and always at t1).
    cfg = RunConfig(**TINY, corpus=str(small_corpus), prune_start=0.1, prune_end=0.5, prune_every=3)
    _, zeros, sizes, result = _observed_run(cfg, tmp_path / "run", monkeypatch)
    updates = [4, 7, 10, 13, 16, 19, 20]

    def by_hand(k: int) -> float:
        """s(t) = S (1 - (1 - p)^3) at the last update t <= k, p = (t - 4) / 16."""
        last = max((u for u in updates if u <= k), default=None)
        return 0.0 if last is None else 0.5 * (1 - (1 - (last - 4) / 16) ** 3)

    def zeros_by_hand(k: int) -> int:
        """Every tensor keeps round(numel * (1 - s)) weights (halves up)."""
        s = by_hand(k)
        return sum(n - math.floor(n * (1 - s) + 0.5 + 1e-9) for n in sizes)

    assert zeros == [zeros_by_hand(k) for k in range(STEPS)]
    total = sum(sizes)
    # hand values: nothing before step 4; after step 4 p = 0 -> 0; after step 7 p = 3/16:
    # 0.5 * (1 - (13/16)^3) = 0.23181...; held until step 10; from step 20 on, S = 0.5
    assert zeros[3] == zeros[6] == 0
    assert zeros[7] / total == pytest.approx(0.5 * (1 - (13 / 16) ** 3), abs=1e-3)
    assert zeros[9] == zeros[7]
    assert all(z / total == pytest.approx(0.5, abs=1e-3) for z in zeros[20:])
    assert result.measured_sparsity == pytest.approx(0.5, abs=1e-3)
    assert (result.prune_start, result.prune_end) == (0.1, 0.5)
