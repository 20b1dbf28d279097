"""Invariant: a mask never grows, whatever the schedule, the order of calls or a resume."""

import pytest
import torch
from torch import nn

from sparsescale.sparsity import GradualPruner
from sparsescale.sparsity.masks import global_magnitude_masks, magnitude_mask, n_kept


def _train(model, opt, pruner, steps, seed=0):
    gen = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        model(torch.randn(4, 16, generator=gen)).pow(2).mean().backward()
        opt.step()
        opt.zero_grad()
        pruner.step()


def _check_never_grows(model, opt, pruner, steps):
    """Train and assert after every step that each mask is a subset of the last."""
    before = {k: m.clone() for k, m in pruner.masks.items()}
    gen = torch.Generator().manual_seed(1)
    for _ in range(steps):
        model(torch.randn(4, 16, generator=gen)).pow(2).mean().backward()
        opt.step()
        opt.zero_grad()
        pruner.step()
        for name, mask in pruner.masks.items():
            if name in before:
                assert not (mask & ~before[name]).any(), f"{name}: a pruned weight came back"
            assert (pruner.params[name][~mask] == 0).all()
        before = {k: m.clone() for k, m in pruner.masks.items()}


def _model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(16, 16), nn.Linear(16, 16))


def test_prune_now_then_cubic_schedule_keeps_the_pruned_weights_pruned():
    model = _model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    pruner = GradualPruner(model, 0.75, total_steps=40, every=5)
    pruner.prune_now()
    assert float((model[0].weight == 0).float().mean()) == 0.75
    _check_never_grows(model, opt, pruner, 40)
    # the ramp asks for less than 0.75 until its end: the masks stay at 0.75
    assert float((model[0].weight == 0).float().mean()) == 0.75
    assert pruner.stats()["sparsity"] == 0.75


def test_prune_now_above_a_constant_schedule_stays_above():
    model = _model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    pruner = GradualPruner(model, 0.75, total_steps=20, schedule="constant")
    pruner.prune_now(sparsity=0.9)
    expected = 256 - n_kept(256, 0.9)
    _check_never_grows(model, opt, pruner, 20)
    for layer in model:
        assert int((layer.weight == 0).sum()) == expected


@pytest.mark.parametrize("pattern", [None, "2:4"])
def test_mask_functions_keep_a_subset_of_alive_when_asked_for_less(pattern):
    gen = torch.Generator().manual_seed(3)
    weight = torch.randn(8, 16, generator=gen)
    nm = None if pattern is None else (2, 4)
    alive = magnitude_mask(weight, 0.75, nm=nm)
    fresh = torch.randn(8, 16, generator=gen)  # pruned entries moved: they must not return
    for s in (0.0, 0.5, 0.75, 0.8):
        mask = magnitude_mask(fresh, s, alive=alive, nm=nm)
        assert not (mask & ~alive).any()
        assert int(mask.sum()) == min(int(alive.sum()), n_kept(128, s))
    masks = global_magnitude_masks({"a": fresh, "b": weight}, 0.2, alive={"a": alive}, nm=nm)
    assert not (masks["a"] & ~alive).any()


def test_resume_then_prune_now_lower_keeps_masks():
    model = _model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    pruner = GradualPruner(model, 0.75, total_steps=30, every=3, start=0.1, end=0.5)
    _train(model, opt, pruner, 20)
    state = pruner.state_dict()
    resumed = GradualPruner(model, 0.75, total_steps=30, every=3, start=0.1, end=0.5)
    resumed.load_state_dict(state)
    resumed.prune_now(sparsity=0.1)  # asks for less: nothing comes back
    for name, mask in state["masks"].items():
        assert torch.equal(resumed.masks[name], mask)
    _check_never_grows(model, opt, resumed, 10)


def test_resume_with_a_longer_run_reschedules_without_growing():
    model = _model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    pruner = GradualPruner(model, 0.75, total_steps=40, every=2)
    _train(model, opt, pruner, 30)  # the ramp (steps 10-30) is over: 0.75 reached
    assert pruner.stats()["sparsity"] == 0.75
    longer = GradualPruner(model, 0.9, total_steps=80, every=2)
    with pytest.raises(Exception, match="sparsity=0.75"):
        longer.load_state_dict(pruner.state_dict())  # only total_steps may change
    longer = GradualPruner(model, 0.75, total_steps=80, every=2)
    longer.load_state_dict(pruner.state_dict())
    assert longer.step_count == 30
    # the new ramp runs from step 20 to 60; at step 30 it asks for less than 0.75
    assert longer.scheduled_sparsity(30)["0.weight"] < 0.75
    _check_never_grows(model, opt, longer, 50)
    assert longer.stats()["sparsity"] == 0.75
    shorter = GradualPruner(model, 0.75, total_steps=20, every=2)
    with pytest.raises(Exception, match="may be longer, not shorter"):
        shorter.load_state_dict(pruner.state_dict())


def test_resume_longer_keeping_the_ramp_matches_the_saved_run_then_holds():
    def fresh(total):
        model = _model()
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        return model, opt, GradualPruner(model, 0.75, total_steps=total, every=2, optimizer=opt)

    straight = fresh(40)
    _train(*straight, 40)
    first = fresh(40)
    _train(*first, 16)  # inside the ramp (steps 10-30)
    state = {
        "model": first[0].state_dict(),
        "opt": first[1].state_dict(),
        "pruner": first[2].state_dict(),
    }
    longer = fresh(80)
    longer[0].load_state_dict(state["model"])
    longer[1].load_state_dict(state["opt"])
    longer[2].load_state_dict(state["pruner"], keep_ramp=True)
    gen = torch.Generator().manual_seed(0)
    for _ in range(16):  # replay the batches the first 16 steps used
        torch.randn(4, 16, generator=gen)
    for _ in range(16, 40):
        model, opt, pruner = longer
        model(torch.randn(4, 16, generator=gen)).pow(2).mean().backward()
        opt.step()
        opt.zero_grad()
        pruner.step()
    for a, b in zip(straight[0].parameters(), longer[0].parameters()):
        assert torch.equal(a, b)  # up to the saved run's end: the same run
    again = GradualPruner(longer[0], 0.75, total_steps=80, every=2)
    again.load_state_dict(longer[2].state_dict())  # the kept ramp travels with the state
    assert again.ramp_total_steps == 40
    _check_never_grows(longer[0], longer[1], again, 40)
    assert again.stats()["sparsity"] == 0.75
