"""depth = "auto": depth grows with the dense block size at width/depth near 64,
heads follow head_dim, and N still lands within the sizing tolerance."""

from __future__ import annotations

import pytest

from sparsescale.errors import SparsescaleError
from sparsescale.models.sizing import ASPECT_RATIO, N_TOLERANCE, plan_size
from sparsescale.train.config import RunConfig


@pytest.mark.parametrize("sparsity", [0.0, 0.75])
def test_depth_grows_with_n_at_the_aspect_ratio(sparsity):
    depths = []
    for n in (1e6, 4e6, 16e6, 64e6, 256e6, 1e9):
        plan = plan_size(
            "gpt", int(n), sparsity, None, {"depth": "auto", "head_dim": 64, "vocab_size": 512}
        )
        mc = plan.model_config
        dense = n / (1 - sparsity)
        # the closed form: 12 d^2 per GPT layer at d = 64 L  ->  L = (P / (12 * 64^2))^(1/3)
        assert mc.depth == max(1, round((dense / (12 * ASPECT_RATIO**2)) ** (1 / 3)))
        assert mc.n_heads == mc.width // 64 and mc.width % 64 == 0
        assert abs(plan.n_nonzero / n - 1) < N_TOLERANCE
        # the width the sizing picks stays within Kaplan et al.'s flat band of width / depth
        assert 20 <= mc.width / mc.depth <= 200 or mc.depth == 1
        depths.append(mc.depth)
    assert depths == sorted(depths) and depths[-1] > depths[0] + 10


def test_sparse_models_are_deeper_at_the_same_nonzeros():
    dense = plan_size("gpt", 10_000_000, 0.0, None, {"depth": "auto", "head_dim": 64})
    sparse = plan_size("gpt", 10_000_000, 0.875, None, {"depth": "auto", "head_dim": 64})
    assert sparse.model_config.depth > dense.model_config.depth and sparse.width > dense.width


def test_t5_stacks_both_grow():
    plan = plan_size(
        "t5", 4_000_000, 0.0, None, {"enc_depth": "auto", "dec_depth": "auto", "head_dim": 32}
    )
    assert plan.model_config.enc_depth == plan.model_config.dec_depth >= 2


@pytest.mark.parametrize(
    "value, expect", [("x", 'expected a number of blocks or "auto"'), (0, "must be >= 1")]
)
def test_bad_depth_is_named(value, expect):
    with pytest.raises(SparsescaleError, match=f"^--depth: {expect}"):
        RunConfig(params="1M", tokens="1M", depth=value)
    assert RunConfig(params="1M", tokens="1M", depth="4").depth == 4


def test_bad_depth_flag_is_one_line(tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    env = dict(os.environ, PYTHONPATH=str(Path(__file__).parents[2] / "src"))
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "sparsescale",
            "train",
            "--params",
            "1M",
            "--tokens",
            "1M",
            "--depth",
            "deep",
            "--out",
            str(tmp_path / "run"),
            "--check",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert (
        r.returncode == 2
        and r.stderr.strip()
        == "sparsescale: error: --depth: expected a number of blocks or \"auto\", got 'deep'"
    )
    assert not (tmp_path / "run").exists()
