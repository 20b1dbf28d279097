"""Selection rules on hand-made module trees (the seven real models are in test_model_zoo)."""

import pytest
import torch
from torch import nn

from sparsescale.errors import SparsescaleError
from sparsescale.sparsity import GradualPruner
from sparsescale.sparsity.selection import (
    block_paths,
    input_dims,
    select_prunable,
    select_token_embeddings,
)


class Conv1D(nn.Module):
    """GPT-2's layout, written here so the rule is tested without transformers:
    weight (in, out), y = x @ W + b."""

    def __init__(self, nf: int, nx: int) -> None:
        super().__init__()
        self.nf = nf
        self.weight = nn.Parameter(torch.randn(nx, nf))
        self.bias = nn.Parameter(torch.zeros(nf))

    def forward(self, x):
        return x @ self.weight + self.bias


class Layer(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(8, 2, batch_first=True)
        self.c_fc = Conv1D(16, 8)  # 8 -> 16
        self.proj = nn.Linear(16, 8)


class Siblings(nn.Module):
    """Blocks held as plain attributes: found because they repeat."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(50, 8)
        self.pos = nn.Embedding(50, 8)
        self.first = Layer()
        self.second = Layer()
        self.lm_head = nn.Linear(8, 50)


def test_repeated_siblings_are_blocks_with_every_kind_of_weight():
    model = Siblings()
    assert block_paths(model) >= {"first", "second"}
    names = list(select_prunable(model))
    assert names == [
        f"{b}.{w}"
        for b in ("first", "second")
        for w in ("attn.in_proj_weight", "attn.out_proj.weight", "c_fc.weight", "proj.weight")
    ]
    assert (
        input_dims(model, names)["first.c_fc.weight"] == 0
    )  # Conv1D: input runs along storage dim 0
    assert input_dims(model, names)["first.proj.weight"] == 1  # (out, in)
    # the token embedding is the table with as many rows as the head has outputs; pos stays dense
    assert list(select_token_embeddings(model)) == ["embed.weight", "lm_head.weight"]


def test_separate_qkv_projections_of_multihead_attention():
    model = nn.Module()
    model.layers = nn.ModuleList([nn.MultiheadAttention(8, 2, kdim=4, vdim=4)])
    assert list(select_prunable(model)) == [
        "layers.0.q_proj_weight",
        "layers.0.k_proj_weight",
        "layers.0.v_proj_weight",
        "layers.0.out_proj.weight",
    ]


def test_conv1d_nm_groups_follow_the_input_dimension():
    model = Siblings()
    pruner = GradualPruner(model, pattern="2:4", total_steps=1, schedule="one-shot")
    pruner.step()
    w = model.first.c_fc.weight  # (in=8, out=16)
    assert ((w.t() != 0).reshape(-1, 4).sum(1) == 2).all()
    assert not ((w != 0).reshape(-1, 4).sum(1) == 2).all()
    flops = pruner.stats()["forward_flops_per_token_dense"]
    assert flops == 2 * 2 * (3 * 8 * 8 + 8 * 8 + 8 * 16 + 16 * 8) + 2 * 8 * 50


def test_a_sequential_of_linears_is_still_a_block():
    model = nn.Sequential(nn.Linear(16, 16), nn.Linear(16, 16))
    assert list(select_prunable(model)) == ["0.weight", "1.weight"]


def test_nothing_selectable_names_what_is_looked_for():
    with pytest.raises(
        SparsescaleError,
        match="no nn.Linear, Conv1D or nn.MultiheadAttention weight inside its blocks",
    ):
        GradualPruner(nn.Linear(4, 4), sparsity=0.5, total_steps=10)
    model = nn.Sequential(nn.Linear(4, 4))
    with pytest.raises(SparsescaleError, match=r"include pattern '0.bias' matches only biases"):
        GradualPruner(model, sparsity=0.5, total_steps=10, include="0.bias", exclude="0.weight")
