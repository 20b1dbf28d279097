"""2:4 semi-structured swap: skipped with a reason without CUDA; on an Ampere+
GPU, exact parity with the masked dense computation up to bf16 rounding."""

import pytest
import torch
from torch import nn

from sparsescale.errors import SparsescaleError
from sparsescale.sparsity import semi_structured as semi

REASON = semi.unavailable_reason("cuda")
needs_kernels = pytest.mark.skipif(
    REASON is not None, reason=f"semi-structured kernels unavailable: {REASON}"
)


def _nm_mask(rows, cols, n=2, m=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    scores = torch.rand(rows, cols // m, m, generator=g)
    keep = torch.zeros_like(scores, dtype=torch.bool).scatter_(-1, scores.topk(n, -1).indices, True)
    return keep.reshape(rows, cols)


def test_cpu_is_refused_with_a_reason():
    reason = semi.unavailable_reason("cpu")
    assert reason is not None and "CUDA" in reason
    model = nn.Sequential(nn.Linear(64, 64))
    with pytest.raises(SparsescaleError, match="CUDA"):
        semi.swap_to_semi_structured(model, {"0.weight": _nm_mask(64, 64)})
    assert isinstance(model[0], nn.Linear)  # nothing was swapped


def test_is_nm():
    mask = _nm_mask(8, 16)
    assert semi.is_nm(mask)
    assert not semi.is_nm(torch.ones(8, 16, dtype=torch.bool))
    assert not semi.is_nm(mask[:, :14])  # not a multiple of 4
    assert semi.is_nm(mask & (torch.rand(8, 16) > 0.5))  # pruned further inside 2:4


class _Block(nn.Module):
    def __init__(self, width=256):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(width, 4 * width), nn.Linear(4 * width, width)

    def forward(self, x):
        return self.fc2(torch.nn.functional.gelu(self.fc1(x)))


def _masked_pair():
    torch.manual_seed(0)
    dense = _Block().cuda()
    masks = {
        "fc1.weight": _nm_mask(1024, 256, seed=1).cuda(),
        "fc2.weight": _nm_mask(256, 1024, seed=2).cuda(),
    }
    with torch.no_grad():
        dense.fc1.weight.mul_(masks["fc1.weight"])
        dense.fc2.weight.mul_(masks["fc2.weight"])
    sparse = _Block().cuda()
    sparse.load_state_dict(dense.state_dict())
    return dense, sparse, masks


@needs_kernels
def test_forward_backward_parity_with_masked_dense_bf16():
    dense, sparse, masks = _masked_pair()
    report = semi.swap_to_semi_structured(sparse, masks)
    assert sorted(report.swapped) == ["fc1", "fc2"] and not report.skipped
    x = torch.randn(4, 128, 256, device="cuda")
    with torch.autocast("cuda", dtype=torch.bfloat16):
        y_d, y_s = dense(x), sparse(x)
    torch.testing.assert_close(y_s.float(), y_d.float(), rtol=2e-2, atol=2e-2)
    g = torch.randn_like(y_d)
    y_d.backward(g)
    y_s.backward(g)
    for name in ("fc1.weight", "fc2.weight", "fc1.bias"):
        gd, gs = (
            dict(dense.named_parameters())[name].grad,
            dict(sparse.named_parameters())[name].grad,
        )
        torch.testing.assert_close(gs, gd, rtol=2e-2, atol=2e-2 * gd.abs().max().item())


@needs_kernels
def test_swap_keeps_the_parameters_and_skips_non_24_masks():
    dense, sparse, masks = _masked_pair()
    weight = sparse.fc1.weight
    masks["fc2.weight"] = torch.ones(256, 1024, dtype=torch.bool, device="cuda")
    report = semi.swap_to_semi_structured(sparse, masks)
    assert report.swapped == ["fc1"] and "not 2:4" in report.skipped["fc2"]
    assert sparse.fc1.weight is weight


def _pruned_block(steps=40):
    from sparsescale.sparsity import GradualPruner

    torch.manual_seed(0)
    model = nn.Module()
    model.blocks = nn.ModuleList([_Block(64)])
    pruner = GradualPruner(model, pattern="2:4", total_steps=steps, every=5)
    return model, pruner


def test_swap_waits_for_the_final_mask_then_refuses_on_cpu():
    model, pruner = _pruned_block()
    final_from = pruner.schedule.end_step + 1  # masks installed at end_step are the last
    for _ in range(final_from):
        assert semi.swap_when_final(model, pruner) is None
        pruner.step()
    assert all(semi.is_nm(m) for m in pruner.masks.values())  # the mask is exactly 2:4 now
    with pytest.raises(SparsescaleError, match="CUDA"):
        semi.swap_when_final(model, pruner)


def test_unstructured_pruner_never_swaps():
    from sparsescale.sparsity import GradualPruner

    model, _ = _pruned_block()
    pruner = GradualPruner(model, sparsity=0.5, total_steps=10, every=1)
    for _ in range(10):
        pruner.step()
    assert semi.swap_when_final(model, pruner) is None


@pytest.mark.parametrize("transposable", [False, True])
def test_autograd_plumbing_on_cpu_with_the_kernel_replaced_by_dense(monkeypatch, transposable):
    """Casts, reshapes, bias and both gradient branches of the swapped linear,
    checked on CPU: only the 2:4 compression (CUDA) is replaced by the dense
    weight it encodes; the CUDA parity test above checks the kernel itself."""
    monkeypatch.setattr(semi, "_compress", lambda w: w)
    torch.manual_seed(0)
    dense = nn.Linear(64, 32)
    mask = _nm_mask(32, 64)
    if transposable:  # 2:4 along both dims: Latin-square tiles
        tile = torch.tensor(
            [[1, 1, 0, 0], [0, 1, 1, 0], [0, 0, 1, 1], [1, 0, 0, 1]], dtype=torch.bool
        )
        mask = tile.repeat(8, 16)
    with torch.no_grad():
        dense.weight.mul_(mask)
    swapped = semi.SemiStructuredLinear(nn.Linear(64, 32), mask)
    swapped.load_state_dict(dense.state_dict())
    assert swapped.transposable == transposable
    x = torch.randn(3, 5, 64)
    xs, xd = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        ys, yd = swapped(xs), dense(xd)
    assert ys.shape == (3, 5, 32) and ys.dtype == yd.dtype == torch.bfloat16
    torch.testing.assert_close(ys, yd)
    g = torch.randn(3, 5, 32)
    ys.float().backward(g)
    yd.float().backward(g)
    assert swapped.weight.grad.dtype == torch.float32 and xs.grad.dtype == torch.float32
    torch.testing.assert_close(xs.grad, xd.grad, rtol=2e-2, atol=2e-2)
    torch.testing.assert_close(swapped.weight.grad, dense.weight.grad, rtol=2e-2, atol=2e-2)
    torch.testing.assert_close(swapped.bias.grad, dense.bias.grad, rtol=2e-2, atol=2e-2)


def test_fp32_activations_are_refused_with_a_reason(monkeypatch):
    monkeypatch.setattr(semi, "_compress", lambda w: w)
    swapped = semi.SemiStructuredLinear(nn.Linear(8, 4), _nm_mask(4, 8))
    with pytest.raises(SparsescaleError, match="need bf16 or fp16 activations"):
        swapped(torch.randn(2, 8))


def test_a_24t_pruner_swaps_with_transposable_masks_and_refuses_on_cpu():
    """Once a 2:4T run's masks are final, every pruned weight and its transpose
    (what the input gradient multiplies by) are 2:4 along their input dim, so
    the swapped linears take the sparse dx branch; on CPU the swap is refused."""
    from sparsescale.sparsity import GradualPruner

    torch.manual_seed(0)
    model = nn.Module()
    model.blocks = nn.ModuleList([_Block(64)])
    pruner = GradualPruner(model, pattern="2:4T", total_steps=40, every=5)
    for _ in range(pruner.schedule.end_step + 1):
        assert semi.swap_when_final(model, pruner) is None
        pruner.step()
    for name, mask in pruner.masks.items():
        assert semi.is_nm(mask) and semi.is_nm(mask.t().contiguous()), name
        assert semi.SemiStructuredLinear(nn.Linear(mask.shape[1], mask.shape[0]), mask).transposable
    with pytest.raises(SparsescaleError, match="CUDA"):
        semi.swap_when_final(model, pruner)


def test_solver_masks_take_the_sparse_input_gradient_branch_on_cpu(monkeypatch):
    """The custom autograd function with a solver-made 2:4T mask: dx goes
    through the compressed transposed weight (the dense weight it encodes on
    CPU) and equals the dense masked matmul's; dW stays the dense gradient."""
    from sparsescale.sparsity.masks import transposable_priority

    compressed = []
    monkeypatch.setattr(semi, "_compress", lambda w: compressed.append(tuple(w.shape)) or w)
    torch.manual_seed(0)
    dense = nn.Linear(64, 32)
    mask = transposable_priority(dense.weight, 2, 4)
    with torch.no_grad():
        dense.weight.mul_(mask)
    swapped = semi.SemiStructuredLinear(nn.Linear(64, 32), mask)
    swapped.load_state_dict(dense.state_dict())
    x = torch.randn(6, 64)
    xs, xd = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        ys, yd = swapped(xs), dense(xd)
    g = torch.randn(6, 32)
    ys.float().backward(g)
    yd.float().backward(g)
    assert compressed == [(32, 64), (64, 32)]  # forward W, then W^T for dx
    torch.testing.assert_close(xs.grad, xd.grad, rtol=2e-2, atol=2e-2)
    torch.testing.assert_close(swapped.weight.grad, dense.weight.grad, rtol=2e-2, atol=2e-2)
