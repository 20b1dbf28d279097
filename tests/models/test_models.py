"""Forward/backward shapes and structural properties of the three families."""

from __future__ import annotations

import pytest
import torch

from sparsescale.models.gpt import GPT, GPTConfig
from sparsescale.models.t5 import T5, T5Config, relative_bucket
from sparsescale.models.vit import ViT, ViTConfig
from sparsescale.sparsity.pruner import select_prunable


@pytest.mark.parametrize("mlp,pos", [("gelu", "learned"), ("geglu", "rope")])
def test_gpt_shapes_backward_and_causality(mlp, pos):
    torch.manual_seed(0)
    cfg = GPTConfig(
        vocab_size=50,
        seq_len=12,
        depth=2,
        width=32,
        head_dim=8,
        n_heads=4,
        mlp_hidden=48,
        mlp=mlp,
        pos=pos,
    )
    model = GPT(cfg)
    idx = torch.randint(0, 50, (3, 12))
    logits, loss = model(idx, idx)
    assert logits.shape == (3, 12, 50)
    loss.backward()
    assert all(p.grad is not None and p.grad.shape == p.shape for p in model.parameters())
    # Causal: changing the last token changes no earlier position's logits.
    changed = idx.clone()
    changed[:, -1] = (changed[:, -1] + 1) % 50
    with torch.no_grad():
        a, _ = model(idx)
        b, _ = model(changed)
    assert torch.allclose(a[:, :-1], b[:, :-1], atol=1e-6)
    assert not torch.allclose(a[:, -1], b[:, -1])
    # The pruned set is exactly the block linears.
    names = set(select_prunable(model))
    assert names == {
        f"blocks.{i}.{m}.weight"
        for i in range(2)
        for m in ("attn.qkv", "attn.proj", "mlp.fc_in", "mlp.fc_out")
    }


def test_t5_shapes_backward_and_decoder_causality():
    torch.manual_seed(0)
    cfg = T5Config(
        vocab_size=60, enc_depth=2, dec_depth=1, width=32, head_dim=8, n_heads=4, mlp_hidden=40
    )
    model = T5(cfg)
    enc = torch.randint(0, 60, (2, 10))
    dec = torch.randint(0, 60, (2, 5))
    logits, loss = model(enc, dec, dec)
    assert logits.shape == (2, 5, 60)
    loss.backward()
    assert all(p.grad is not None for p in model.parameters())
    changed = dec.clone()
    changed[:, -1] = (changed[:, -1] + 1) % 60
    with torch.no_grad():
        a, _ = model(enc, dec)
        b, _ = model(enc, changed)
    assert torch.allclose(a[:, :-1], b[:, :-1], atol=1e-6)
    names = set(select_prunable(model))
    assert (
        "decoder.blocks.0.cross.kv.weight" in names and "encoder.blocks.1.mlp.fc_in.weight" in names
    )
    assert not any("rel_bias" in n or n.startswith(("head", "tok_emb")) for n in names)
    assert len(names) == 2 * 4 + 1 * 7


def test_relative_buckets_exact_near_log_far():
    rel = torch.arange(-200, 201)
    b = relative_bucket(rel, bidirectional=True, n_buckets=32, max_distance=128)
    assert b.min() >= 0 and b.max() < 32
    # Small distances get their own bucket, each side separately.
    assert len(set(b[(rel.abs() < 8)].tolist())) == 15
    # Monotone in distance on each side, saturating at the far end.
    right = b[rel >= 0]
    assert (right[1:] >= right[:-1]).all() and right[-1] == 31
    causal = relative_bucket(rel, bidirectional=False, n_buckets=32, max_distance=128)
    assert (causal[rel >= 0] == 0).all() and causal.max() == 31


@pytest.mark.parametrize("pool", ["cls", "mean"])
def test_vit_shapes_backward_and_patch_order(pool):
    torch.manual_seed(0)
    cfg = ViTConfig(
        image_size=8,
        channels=2,
        patch=4,
        n_classes=5,
        depth=2,
        width=16,
        head_dim=8,
        n_heads=2,
        mlp_hidden=32,
        pool=pool,
    )
    model = ViT(cfg)
    images = torch.randn(3, 2, 8, 8)
    logits, loss = model(images, torch.tensor([0, 1, 4]))
    assert logits.shape == (3, 5)
    loss.backward()
    assert all(p.grad is not None for p in model.parameters())
    patches = model.patchify(images)
    assert patches.shape == (3, 4, 2 * 16)
    # patch 1 is the top-right 4x4 block of every channel
    expected = images[:, :, 0:4, 4:8].reshape(3, 2 * 16)
    assert torch.equal(patches[:, 1], expected)
