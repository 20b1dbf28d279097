"""A family defined outside the package, named in a sweep spec as
"module:attribute", is imported at plan time, sized by N and trained for real."""

import json
import os
import subprocess
import sys
import textwrap

import pytest

USER_MODULE = '''
"""A user's own family: a causal "running mean" LM (no attention), reusing the
built-in GPT data pipeline. Nothing here is part of sparsescale."""
from dataclasses import dataclass

import torch
from torch import nn

from sparsescale.models.registry import FAMILIES, Family

GPT = FAMILIES["gpt"]


@dataclass
class MeanLMConfig:
    vocab_size: int = 256
    seq_len: int = 32
    depth: int = 1
    head_dim: int = 16      # sizing steps the width in multiples of this
    width: int = 16
    n_heads: int = 1
    mlp_hidden: int = 64


class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.mix = nn.Linear(c.width, c.width, bias=False)
        self.up = nn.Linear(c.width, c.mlp_hidden, bias=False)
        self.down = nn.Linear(c.mlp_hidden, c.width, bias=False)

    def forward(self, x):
        steps = torch.arange(1, x.shape[1] + 1, device=x.device, dtype=x.dtype)[None, :, None]
        x = x + self.mix(x.cumsum(1) / steps)          # the mean of the tokens so far
        return x + self.down(torch.relu(self.up(x)))


class MeanLM(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.embed = nn.Embedding(c.vocab_size, c.width)
        self.blocks = nn.ModuleList(Block(c) for _ in range(c.depth))
        self.head = nn.Linear(c.width, c.vocab_size, bias=False)

    def forward(self, idx, targets=None):
        x = self.embed(idx)
        for block in self.blocks:
            x = block(x)
        logits = self.head(x)
        if targets is None:
            return logits, None
        loss = nn.functional.cross_entropy(logits.flatten(0, 1), targets.flatten())
        return logits, loss


mean_lm = Family(
    name="mean_lm", data_unit="tokens",
    config_class=lambda: MeanLMConfig, model_class=lambda: MeanLM,
    default_arch={"depth": 1, "head_dim": 16, "vocab_size": 256, "seq_len": 32},
    # d^2 + 2 d h per block
    sizing_coeffs=lambda arch: (4.0, 1.0 * arch["depth"], 2.0 * arch["depth"]),
    load_data=GPT.load_data, data_arch=GPT.data_arch, make_batches=GPT.make_batches,
    block_macs=lambda prunable, mc, seq_len: seq_len * sum(p.numel() for p in prunable.values()),
    arch_from_run=lambda cfg: {
        "depth": cfg.depth, "head_dim": cfg.head_dim, "seq_len": cfg.resolved("seq_len")
    },
    defaults={"batch": 8, "seq_len": 32},
)
'''

SPEC = """
name = "user"
family = "{family}"
[grid]
sparsity = [0.0, 0.5]
n_nonzero = ["6k"]
tokens = ["4k"]
[train]
eval_tokens = 1024
eval_every = 4
"""


def _sweep(tmp_path, family):
    (tmp_path / "mine").mkdir(exist_ok=True)
    (tmp_path / "mine" / "myfamilies.py").write_text(textwrap.dedent(USER_MODULE))
    spec = tmp_path / "user.toml"
    spec.write_text(SPEC.format(family=family))
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "mine"), "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [
            sys.executable,
            "-c",
            "from sparsescale.cli import main; main()",
            "sweep",
            str(spec),
            "--store",
            str(tmp_path / "user.sqlite"),
            "--workers",
            "2",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )


@pytest.mark.slow
def test_a_user_family_runs_in_a_sweep(tmp_path):
    done = _sweep(tmp_path, "myfamilies:mean_lm")
    assert done.returncode == 0, done.stderr
    from sparsescale.sweep.store import Store

    with Store(tmp_path / "user.sqlite", readonly=True) as store:
        runs = store.runs(status=("finished",))
    assert len(runs) == 2
    results = [json.loads(run["result_json"]) for run in runs]
    for result in results:
        assert result["family"] == "myfamilies:mean_lm"
        assert abs(result["n_nonzero"] / 6000 - 1) < 0.05  # sized by N like the built-ins
        assert result["curve"][-1]["val_loss"] < result["curve"][0]["val_loss"]  # it learns
    assert {round(r["measured_sparsity"], 2) for r in results} == {0.0, 0.5}


@pytest.mark.parametrize(
    "family, message",
    [
        ("nosuchpkg.families:tiny", "cannot import module 'nosuchpkg.families'"),
        ("myfamilies:nothing_here", "module 'myfamilies' has no attribute 'nothing_here'"),
        ("myfamilies:MeanLM", "not a sparsescale Family"),
    ],
)
def test_a_family_that_cannot_be_imported_is_one_line(tmp_path, family, message):
    done = _sweep(tmp_path, family)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in done.stderr, done.stderr
