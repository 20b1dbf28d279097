import io
import math

import pytest
import torch
from sparsity_helpers import TinyTransformer, batches, lm_loss
from torch import nn

from sparsescale.errors import SparsescaleError
from sparsescale.sparsity import GradualPruner, SparseAdafactor, one_shot_prune
from sparsescale.sparsity.masks import n_kept
from sparsescale.sparsity.pruner import select_embeddings, select_prunable


class Uneven(nn.Module):
    """Blocks with odd, uneven shapes (numel not divisible by anything nice)."""

    def __init__(self, shapes=((37, 53), (13, 7), (1, 11), (64, 24))):
        super().__init__()
        self.blocks = nn.ModuleList(nn.Linear(i, o) for i, o in shapes)


def perturb(model: nn.Module, step: int) -> None:
    """Stand-in for an optimizer step: moves every weight, pruned ones too."""
    gen = torch.Generator().manual_seed(1000 + step)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=gen) * 0.05)


def zeros(p: torch.Tensor) -> int:
    return int((p == 0).sum())


@pytest.mark.parametrize("sparsity", [0.5, 0.75, 0.875])
def test_exact_scheduled_sparsity_every_step_and_s_at_end(sparsity):
    model = Uneven()
    pruner = GradualPruner(model, sparsity=sparsity, total_steps=120, start=0.2, end=0.7, every=7)
    weights = select_prunable(model)
    assert list(weights) == [f"blocks.{i}.weight" for i in range(4)]
    previous = {k: torch.zeros_like(p, dtype=torch.bool) for k, p in weights.items()}
    for step in range(120):
        perturb(model, step)
        pruner.step()
        s = pruner.schedule.sparsity_at(step)
        for name, p in weights.items():
            assert zeros(p) == p.numel() - n_kept(p.numel(), s), (step, name)
            pruned = p == 0
            assert (pruned >= previous[name]).all()  # pruned weights never return
            previous[name] = pruned
    for p in weights.values():
        assert zeros(p) == p.numel() - n_kept(p.numel(), sparsity)
    stats = pruner.stats()
    assert stats["n_nonzero"] == sum(int((p != 0).sum()) for p in weights.values())
    assert stats["tensors"]["blocks.0.weight"] == pytest.approx(
        1 - n_kept(37 * 53, sparsity) / (37 * 53)
    )
    # biases are never pruned
    assert all(zeros(m.bias) == 0 for m in model.blocks)


@pytest.mark.parametrize("pattern", ["2:4", "1:4", "4:8", "2:8", "3:4"])
def test_gradual_nm_ends_exactly_nm(pattern):
    n, m = map(int, pattern.split(":"))
    model = Uneven(((24, 10), (48, 7), (16, 3)))
    pruner = GradualPruner(model, pattern=pattern, total_steps=60, start=0.1, end=0.8, every=5)
    assert pruner.sparsity == pytest.approx(1 - n / m)
    for step in range(60):
        perturb(model, step)
        pruner.step()
        s = pruner.schedule.sparsity_at(step)
        for p in select_prunable(model).values():
            assert zeros(p) == p.numel() - n_kept(p.numel(), s)
            # during the ramp no group ever drops below n survivors
            assert ((p != 0).reshape(-1, m).sum(1) >= n).all()
    for name, p in select_prunable(model).items():
        per_group = (p != 0).reshape(-1, m).sum(1)
        assert (per_group == n).all(), name


def test_nm_above_its_sparsity_prunes_inside_the_pattern():
    model = Uneven(((24, 10),))
    pruner = GradualPruner(model, sparsity=0.75, pattern="2:4", total_steps=20, every=2)
    for step in range(20):
        perturb(model, step)
        pruner.step()
    w = model.blocks[0].weight
    assert zeros(w) == 240 - 60
    assert ((w != 0).reshape(-1, 4).sum(1) <= 2).all()


def test_select_prunable_on_a_transformer():
    model = TinyTransformer()
    names = list(select_prunable(model))
    expected = [
        f"blocks.{b}.{k}.weight"
        for b in range(2)
        for k in ("q", "k", "v", "o", "mlp_in", "mlp_out")
    ]
    assert names == expected
    assert (
        select_prunable(model) is not select_prunable(model)
        and list(select_prunable(model)) == expected
    )
    with_head = select_prunable(model, include="head.weight", exclude="*.mlp_*")
    assert list(with_head) == [n for n in expected if "mlp" not in n] + ["head.weight"]
    # norms and biases are never pruned, even when a pattern names them; a
    # pattern naming only those is a mistake and is said so
    assert list(select_prunable(model, include=["*.weight"])) == [
        "embed.weight",
        *expected,
        "head.weight",
    ]
    with pytest.raises(SparsescaleError, match=r"include pattern '\*.bias' matches only biases"):
        select_prunable(model, include=["*.bias"])
    assert list(select_embeddings(model)) == ["embed.weight", "head.weight"]
    with pytest.raises(SparsescaleError, match="include pattern 'nope.*' matches no parameter"):
        select_prunable(model, include="nope.*")


def test_embeddings_auto_and_stats():
    torch.manual_seed(0)
    model = TinyTransformer(width=32, vocab=256)
    pruner = GradualPruner(
        model, sparsity=0.75, total_steps=10, schedule="one-shot", embeddings="auto"
    )
    pruner.step()
    s_emb = 1 - math.sqrt(1 - 0.75)
    assert zeros(model.embed.weight) == 256 * 32 - n_kept(256 * 32, s_emb)
    assert zeros(model.head.weight) == 256 * 32 - n_kept(256 * 32, s_emb)
    assert zeros(model.pos) == 0 and zeros(model.norm.weight) == 0
    stats = pruner.stats()
    block_linear = 2 * (4 * 32 * 32 + 2 * 4 * 32 * 32)
    assert stats["n_params_prunable"] == block_linear
    assert stats["n_nonzero"] == 2 * (4 * n_kept(1024, 0.75) + 2 * n_kept(4096, 0.75))
    assert stats["sparsity"] == pytest.approx(1 - stats["n_nonzero"] / block_linear)
    assert stats["n_params"] == sum(p.numel() for p in model.parameters())
    assert stats["n_params_embedding"] == 2 * 256 * 32
    assert stats["embedding_sparsity"] == pytest.approx(s_emb, abs=1e-3)
    assert stats["forward_flops_per_token_dense"] == 2 * (block_linear + 256 * 32)
    assert stats["forward_flops_per_token_sparse"] == 2 * (
        stats["n_nonzero"] + n_kept(256 * 32, s_emb)
    )


def test_global_scope_and_erk_reach_the_overall_sparsity():
    for kwargs in (dict(scope="global"), dict(distribution="erk")):
        torch.manual_seed(0)
        model = Uneven()
        with torch.no_grad():
            model.blocks[3].weight.mul_(5)  # one tensor with larger weights
        pruner = GradualPruner(model, sparsity=0.8, total_steps=1, schedule="one-shot", **kwargs)
        pruner.step()
        stats = pruner.stats()
        assert stats["sparsity"] == pytest.approx(0.8, abs=2e-3)
        assert len({round(v, 3) for v in stats["tensors"].values()}) > 1  # not uniform


def test_optimizer_state_of_pruned_entries_is_zeroed():
    def run_one_step(pass_optimizer):
        torch.manual_seed(0)
        model = Uneven()
        opt = torch.optim.Adam(model.parameters(), lr=1e-2)
        pruner = GradualPruner(
            model,
            sparsity=0.5,
            total_steps=10,
            schedule="one-shot",
            optimizer=opt if pass_optimizer else None,
        )
        loss = sum((m.weight**2).sum() + m.weight.sum() for m in model.blocks)
        loss.backward()
        opt.step()
        pruner.step()
        return pruner.masks["blocks.0.weight"], opt.state[model.blocks[0].weight]

    mask, state = run_one_step(True)
    assert (state["exp_avg"][~mask] == 0).all() and (state["exp_avg_sq"][~mask] == 0).all()
    assert (state["exp_avg"][mask] != 0).all()
    mask, state = run_one_step(False)  # without the optimizer its state is left alone
    assert (state["exp_avg"][~mask] != 0).all()


def test_one_shot_prune_of_a_dense_model_keeps_largest_and_holds():
    torch.manual_seed(0)
    model = Uneven()
    before = model.blocks[0].weight.detach().clone()
    pruner = one_shot_prune(model, 0.75, total_steps=5)
    w = model.blocks[0].weight
    kept = w != 0
    assert int(kept.sum()) == n_kept(w.numel(), 0.75)
    assert before.abs()[kept].min() >= before.abs()[~kept].max()
    for step in range(5):
        perturb(model, step)
        pruner.step()
        assert ((w != 0) == kept).all()


def run(model, opt, pruner, data, steps, start=0):
    for step in range(start, steps):
        loss = lm_loss(model, batches(data, 4, 16, step))
        loss.backward()
        opt.step()
        opt.zero_grad()
        pruner.step()


@pytest.mark.parametrize("pattern", [None, "2:4", "2:4T"])
def test_checkpoint_round_trip_and_resume_equivalence(pattern):
    data = torch.randint(0, 256, (5000,), generator=torch.Generator().manual_seed(0))

    def fresh():
        torch.manual_seed(7)
        model = TinyTransformer(width=16, heads=2, context=16)
        opt = SparseAdafactor(model.parameters(), lr=1e-2)
        pruner = GradualPruner(
            model, sparsity=0.5, pattern=pattern, total_steps=40, every=3, optimizer=opt
        )
        return model, opt, pruner

    straight = fresh()
    run(*straight, data, 40)

    first = fresh()
    run(*first, data, 22)  # interrupted in the middle of the ramp
    buffer = io.BytesIO()
    torch.save(
        {
            "model": first[0].state_dict(),
            "opt": first[1].state_dict(),
            "pruner": first[2].state_dict(),
        },
        buffer,
    )
    buffer.seek(0)
    saved = torch.load(buffer)
    assert all(m.dtype == torch.bool for m in saved["pruner"]["masks"].values())
    resumed = fresh()
    resumed[0].load_state_dict(saved["model"])
    resumed[1].load_state_dict(saved["opt"])
    resumed[2].load_state_dict(saved["pruner"])
    assert resumed[2].step_count == 22
    for k, m in first[2].masks.items():
        assert torch.equal(resumed[2].masks[k], m)
    run(*resumed, data, 40, start=22)

    for k, m in straight[2].masks.items():
        assert torch.equal(resumed[2].masks[k], m), k
    for (name, a), b in zip(straight[0].named_parameters(), resumed[0].parameters()):
        assert torch.equal(a, b), name


def test_load_state_dict_rejects_other_config():
    model = Uneven()
    state = GradualPruner(model, sparsity=0.5, total_steps=10).state_dict()
    with pytest.raises(SparsescaleError, match="sparsity=0.5"):
        GradualPruner(model, sparsity=0.75, total_steps=10).load_state_dict(state)


@pytest.mark.parametrize(
    "kwargs,message",
    [
        (dict(sparsity=1.0), r"sparsity must be in \[0, 1\)"),
        (dict(sparsity=-0.2), r"sparsity must be in \[0, 1\)"),
        (dict(sparsity=0.5, pattern="4:4"), "need 0 < n < m"),
        (dict(sparsity=0.5, pattern="6:4"), "need 0 < n < m"),
        (dict(sparsity=0.5, pattern="two:four"), "unknown pattern"),
        (dict(sparsity=0.5, start=0.75, end=0.25), "start"),
        (dict(sparsity=0.5, start=0.5, end=0.5), "start"),
        (dict(sparsity=0.25, pattern="2:4"), "below 0.5"),
        (dict(sparsity=0.5, schedule="linear"), "unknown schedule"),
        (dict(sparsity=0.5, embeddings="maybe"), "embeddings"),
        (dict(sparsity=0.5, scope="layer"), "scope"),
        (dict(sparsity=0.5, distribution="erk", pattern="2:4"), "erk"),
        (dict(), "sparsity is required"),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(SparsescaleError, match=message):
        GradualPruner(Uneven(((24, 8),)), total_steps=100, **kwargs)


def test_nm_on_indivisible_input_dimension_is_an_error_naming_the_tensor():
    with pytest.raises(
        SparsescaleError, match=r"blocks.1.weight with shape \(7, 13\).*multiple of 4"
    ):
        GradualPruner(Uneven(((24, 8), (13, 7))), pattern="2:4", total_steps=100)


def test_model_without_blocks_is_an_error():
    with pytest.raises(SparsescaleError, match="no prunable tensors"):
        GradualPruner(nn.Linear(4, 4), sparsity=0.5, total_steps=10)
