"""The CSR linear equals the masked dense linear, forward and backward."""

import pytest
import torch
import torch.nn.functional as F

from sparsescale.kernels.csr import CsrLayout, csr_linear


def _case(out_f=48, in_f=40, tokens=30, sparsity=0.8, seed=0):
    g = torch.Generator().manual_seed(seed)
    mask = torch.rand(out_f, in_f, generator=g) > sparsity
    weight = torch.randn(out_f, in_f, generator=g, dtype=torch.float64) * mask
    x = torch.randn(tokens, in_f, generator=g, dtype=torch.float64)
    return mask, weight, x


@pytest.mark.parametrize("sparsity", [0.0, 0.5, 0.9, 0.99])
def test_forward_and_gradients_equal_masked_dense(sparsity):
    mask, weight, x = _case(sparsity=sparsity)
    layout = CsrLayout.from_mask(mask)
    assert layout.nnz == int(mask.sum())
    values = layout.gather_values(weight).requires_grad_(True)
    xs = x.clone().requires_grad_(True)
    y = csr_linear(xs, values, layout)
    upstream = torch.randn_like(y)
    y.backward(upstream)

    wd = weight.clone().requires_grad_(True)
    xd = x.clone().requires_grad_(True)
    yd = F.linear(xd, wd)
    yd.backward(upstream)
    torch.testing.assert_close(y, yd, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(xs.grad, xd.grad, rtol=1e-12, atol=1e-12)
    # the values' gradient is the dense gradient at the kept entries
    torch.testing.assert_close(values.grad, layout.gather_values(wd.grad), rtol=1e-12, atol=1e-12)


def test_gradcheck_and_batched_input():
    mask, weight, x = _case(out_f=12, in_f=8, tokens=6)
    layout = CsrLayout.from_mask(mask)
    values = layout.gather_values(weight).requires_grad_(True)
    assert torch.autograd.gradcheck(
        lambda a, v: csr_linear(a, v, layout), (x.clone().requires_grad_(True), values)
    )
    y3 = csr_linear(x.reshape(2, 3, 8), values, layout)
    torch.testing.assert_close(y3.reshape(6, 12), F.linear(x, weight))


def test_transposed_matrix_is_the_transpose():
    mask, weight, _ = _case()
    layout = CsrLayout.from_mask(mask)
    values = layout.gather_values(weight)
    torch.testing.assert_close(layout.matrix(values).to_dense(), weight)
    torch.testing.assert_close(layout.matrix_t(values).to_dense(), weight.t())
