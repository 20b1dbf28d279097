"""A real small Transformer trained on real text under gradual pruning."""

import pytest
import torch
from sparsity_helpers import TinyTransformer, batches, lm_loss, text_bytes

from sparsescale.sparsity import GradualPruner, SparseAdafactor
from sparsescale.sparsity.masks import n_kept


@pytest.mark.slow
@pytest.mark.parametrize("pattern,sparsity", [(None, 0.75), ("2:4", 0.5)])
def test_pruned_transformer_trains_and_pruned_weights_stay_zero(pattern, sparsity):
    data, source = text_bytes()
    losses, weights, pruner = train(data, pattern, sparsity)  # on one thread: see conftest.py
    for p in weights.values():
        assert int((p == 0).sum()) == p.numel() - n_kept(p.numel(), sparsity)
    if pattern == "2:4":
        assert all(((p != 0).reshape(-1, 4).sum(1) == 2).all() for p in weights.values())
    first, last = sum(losses[:20]) / 20, sum(losses[-20:]) / 20
    # ln(256) = 5.55 at the start; byte-level text is learnable well below 3.5
    assert first > 4.5, source
    assert last < 3.5 and last < first - 1.5, (source, first, last)


def train(data, pattern, sparsity):
    torch.manual_seed(0)
    model = TinyTransformer(width=32, depth=2, heads=4, context=32)
    opt = SparseAdafactor(model.parameters(), lr=1e-2)
    steps = 300
    pruner = GradualPruner(model, sparsity=sparsity, pattern=pattern, total_steps=steps, every=10)
    weights = {name: p for name, p in model.named_parameters() if name in pruner.prunable}
    assert len(weights) == 12
    losses = []
    for step in range(steps):
        loss = lm_loss(model, batches(data, 8, 32, step))
        loss.backward()
        opt.step()
        opt.zero_grad()
        pruner.step()
        losses.append(loss.item())
        for name, mask in pruner.masks.items():
            assert (weights[name][~mask] == 0).all(), (step, name)
    return losses, weights, pruner
