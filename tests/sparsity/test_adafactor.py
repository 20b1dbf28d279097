import numpy as np
import pytest
import torch

from sparsescale.errors import SparsescaleError
from sparsescale.sparsity import SparseAdafactor


def rms_nz(x):
    return np.sqrt((x**2).sum() / max(np.count_nonzero(x), 1))


def reference(p, grads, lr, factored=False, beta1=None, weight_decay=0.0, clip=1.0):
    """The paper's AdaFactor written out directly in float64 numpy."""
    p = p.astype(np.float64).copy()
    v = np.zeros_like(p)
    vr, vc = np.zeros(p.shape[0]), np.zeros(p.shape[1])
    m = np.zeros_like(p)
    for t, g in enumerate(grads):
        g = g.astype(np.float64)
        beta = 1 - (t + 1) ** -0.8
        if factored:
            vr = beta * vr + (1 - beta) * (g**2 + 1e-30).mean(1)
            vc = beta * vc + (1 - beta) * (g**2 + 1e-30).mean(0)
            vhat = np.outer(vr, vc) / vr.mean()
        else:
            v = beta * v + (1 - beta) * (g**2 + 1e-30)
            vhat = v
        u = g / np.sqrt(vhat)
        u = u / max(1.0, rms_nz(u) / clip)
        if beta1 is not None:
            m = beta1 * m + (1 - beta1) * u
            u = m
        scale = lr * max(rms_nz(p), 1e-3)
        p = p * (1 - lr * weight_decay) - scale * u
    return p


@pytest.mark.parametrize(
    "kwargs",
    [dict(), dict(factored=True), dict(beta1=0.9, weight_decay=0.1), dict(clip=0.5)],
)
def test_matches_direct_formula(kwargs):
    rng = np.random.default_rng(0)
    p0 = rng.normal(size=(6, 10)) * (rng.random((6, 10)) > 0.6)  # sparse parameter
    # Gradients zero where the parameter is zero in the first one, so the update
    # RMS has its own non-zero count to get right.
    grads = [
        rng.normal(size=(6, 10))
        * (rng.random((6, 10)) > 0.3)
        * 10 ** rng.uniform(-3, 1, size=(6, 10))
        for _ in range(4)
    ]
    p = torch.nn.Parameter(torch.tensor(p0, dtype=torch.float32))
    opt_kwargs = {k: v for k, v in kwargs.items() if k != "clip"}
    opt = SparseAdafactor([p], lr=0.05, clip_threshold=kwargs.get("clip", 1.0), **opt_kwargs)
    for g in grads:
        p.grad = torch.tensor(g, dtype=torch.float32)
        opt.step()
    expected = reference(p0, grads, 0.05, **kwargs)
    np.testing.assert_allclose(p.detach().numpy(), expected, rtol=2e-5, atol=1e-7)


def test_update_rms_at_875_percent_sparsity_matches_dense():
    gen = torch.Generator().manual_seed(0)
    shape = (128, 128)
    signs = torch.randint(0, 2, shape, generator=gen).float() * 2 - 1  # |w| = 1: RMS exactly 1
    keep = torch.zeros(128 * 128, dtype=torch.bool)
    keep[torch.randperm(128 * 128, generator=gen)[: 128 * 128 // 8]] = True  # exactly 87.5% sparse
    keep = keep.reshape(shape)
    grads = [torch.randn(shape, generator=gen) for _ in range(5)]

    def kept_update_rms(weight, sparse_aware, steps):
        p = torch.nn.Parameter(weight.clone())
        mask = weight != 0
        opt = SparseAdafactor([p], lr=1e-2, sparse_aware=sparse_aware)
        for g in grads[:steps]:
            before = p.detach().clone()
            p.grad = g.clone()
            opt.step()
            with torch.no_grad():
                p.mul_(mask)  # what the pruner does after every optimizer step
        delta = (p.detach() - before)[keep]
        return float(delta.square().mean().sqrt())

    # First step: u = sign(g), so the update RMS is exactly lr * RMS(param).
    dense = kept_update_rms(signs, True, 1)
    assert dense == pytest.approx(1e-2, rel=1e-5)
    assert kept_update_rms(signs * keep, True, 1) == pytest.approx(dense, rel=1e-5)
    # A dense-RMS AdaFactor shrinks the step by sqrt(1 - S).
    assert kept_update_rms(signs * keep, False, 1) == pytest.approx(
        dense * np.sqrt(0.125), rel=1e-3
    )
    # Later steps: same within sampling noise, while dense RMS stays ~0.35x.
    dense5 = kept_update_rms(signs, True, 5)
    assert kept_update_rms(signs * keep, True, 5) == pytest.approx(dense5, rel=0.05)
    assert kept_update_rms(signs * keep, False, 5) < 0.4 * dense5


def test_lr_is_a_param_group_value_for_schedulers():
    p = torch.nn.Parameter(torch.ones(3, 3))
    opt = SparseAdafactor([p])
    assert opt.param_groups[0]["lr"] == 1e-2
    assert opt.param_groups[0]["beta1"] is None and opt.param_groups[0]["weight_decay"] == 0.0


@pytest.mark.parametrize(
    "kwargs", [dict(lr=0), dict(beta1=1.0), dict(clip_threshold=0), dict(weight_decay=-1)]
)
def test_bad_arguments(kwargs):
    with pytest.raises(SparsescaleError):
        SparseAdafactor([torch.nn.Parameter(torch.ones(2))], **kwargs)


def test_guidance_lr_for_002_std_inits_learns_like_adamw():
    """The documented lr for 0.02-std inits (relative step: lr = 1e-3 / 0.02)
    learns about as well as AdamW at 1e-3 in the same steps, pruned alike."""
    pytest.importorskip("transformers")
    from sparsity_helpers import llama_bytes, text_bytes

    data, _ = text_bytes(200_000)

    def final_loss(make_opt):
        model = llama_bytes.build_llama(hidden=64, layers=2, context=64)
        losses = llama_bytes.pruned_losses(model, make_opt, data, steps=40, batch=8, length=32)
        return sum(losses[-5:]) / 5, sum(losses[:3]) / 3

    adamw, start = final_loss(lambda p: torch.optim.AdamW(p, lr=1e-3))
    guided, _ = final_loss(lambda p: SparseAdafactor(p, lr=5e-2))
    assert adamw < start - 1.0  # the case learns at all
    assert guided < adamw + 0.1
