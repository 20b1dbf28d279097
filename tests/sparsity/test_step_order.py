"""The paper's step order: on update step t the new mask is ranked on the
weights BEFORE step t's optimizer update; then the (dense) update; then
weights *= mask."""

import torch
from torch import nn

from sparsescale.sparsity import GradualPruner


def _model(values):
    model = nn.Module()
    model.blocks = nn.ModuleList([nn.Linear(4, 1, bias=False)])
    with torch.no_grad():
        model.blocks[0].weight.copy_(torch.tensor([values], dtype=torch.float32))
    return model


def _fake_update(model, values):
    with torch.no_grad():
        model.blocks[0].weight.copy_(torch.tensor([values], dtype=torch.float32))


def test_update_step_mask_is_ranked_on_pre_update_weights():
    model = _model([1.0, 2.0, 3.0, 4.0])
    pruner = GradualPruner(model, sparsity=0.5, total_steps=4, schedule="one-shot", at_step=1)
    pruner.step()  # step 0: dense; ranks the mask for step 1 on [1, 2, 3, 4]
    _fake_update(model, [4.0, 3.0, 2.0, 1.0])  # step 1's optimizer update reverses the order
    pruner.step()  # step 1: install the mask ranked before the update, then weights *= mask
    assert model.blocks[0].weight.tolist() == [[0.0, 0.0, 2.0, 1.0]]


def test_pending_mask_survives_a_checkpoint_round_trip():
    model = _model([1.0, 2.0, 3.0, 4.0])
    pruner = GradualPruner(model, sparsity=0.5, total_steps=4, schedule="one-shot", at_step=1)
    pruner.step()
    state = {k: (dict(v) if isinstance(v, dict) else v) for k, v in pruner.state_dict().items()}
    assert state["pending_masks"] is not None

    resumed_model = _model([1.0, 2.0, 3.0, 4.0])
    resumed = GradualPruner(
        resumed_model, sparsity=0.5, total_steps=4, schedule="one-shot", at_step=1
    )
    resumed.load_state_dict(state)
    for m in (model, resumed_model):
        _fake_update(m, [4.0, 3.0, 2.0, 1.0])
    pruner.step()
    resumed.step()
    assert (
        resumed_model.blocks[0].weight.tolist()
        == model.blocks[0].weight.tolist()
        == [[0.0, 0.0, 2.0, 1.0]]
    )
