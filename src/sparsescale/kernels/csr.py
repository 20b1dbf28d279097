"""An unstructured-sparse linear layer on torch.sparse CSR kernels.

The weight W (out, in) is stored as its non-zero values only, in CSR order of
a fixed mask. All three matmuls of a training step are sparse:

- forward   y  = x W^T      as (W x^T)^T          (CSR @ dense)
- backward  dx = g W        as (W^T g^T)^T        (CSR of W^T @ dense)
- backward  dW = g^T x, only at kept entries       (sampled_addmm: SDDMM)

so the optimizer updates nnz values, not out * in. The gradient of the values
equals the masked dense gradient exactly (up to summation order).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class CsrLayout:
    """Index structure of a mask in CSR form, and of its transpose.

    `perm` reorders values from W's CSR order into W^T's CSR order."""

    shape: tuple[int, int]
    crow: torch.Tensor
    col: torch.Tensor
    crow_t: torch.Tensor
    col_t: torch.Tensor
    perm: torch.Tensor

    @classmethod
    def from_mask(cls, mask: torch.Tensor) -> "CsrLayout":
        if mask.dim() != 2:
            raise ValueError(f"mask must be 2-D (out, in), got shape {tuple(mask.shape)}")
        mask = mask.to(torch.bool)
        rows, cols = mask.nonzero(as_tuple=True)  # row-major: CSR order of W
        order = torch.arange(rows.numel(), device=mask.device)
        idx = torch.sparse_coo_tensor(
            torch.stack([cols, rows]), order, (mask.shape[1], mask.shape[0]), check_invariants=False
        ).coalesce()
        with warnings.catch_warnings():
            # torch warns once per process that CSR is "beta"; mm and sampled_addmm
            # are its documented kernels, and the line would land in every CLI run.
            warnings.simplefilter("ignore", UserWarning)
            t_csr = idx.to_sparse_csr()
        crow = torch.zeros(mask.shape[0] + 1, dtype=torch.int64, device=mask.device)
        crow[1:] = torch.cumsum(mask.sum(dim=1), 0)
        return cls(
            (int(mask.shape[0]), int(mask.shape[1])),
            crow,
            cols,
            t_csr.crow_indices(),
            t_csr.col_indices(),
            t_csr.values(),
        )

    @property
    def nnz(self) -> int:
        return int(self.col.numel())

    def gather_values(self, weight: torch.Tensor) -> torch.Tensor:
        """The kept entries of a dense (out, in) weight, in CSR order."""
        rows = torch.repeat_interleave(
            torch.arange(self.shape[0], device=weight.device), self.crow.diff()
        )
        return weight[rows, self.col]

    def matrix(self, values: torch.Tensor) -> torch.Tensor:
        return torch.sparse_csr_tensor(
            self.crow, self.col, values, self.shape, check_invariants=False
        )

    def matrix_t(self, values: torch.Tensor) -> torch.Tensor:
        return torch.sparse_csr_tensor(
            self.crow_t,
            self.col_t,
            values[self.perm],
            (self.shape[1], self.shape[0]),
            check_invariants=False,
        )


class _CsrLinear(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, values: torch.Tensor, layout: CsrLayout) -> torch.Tensor:
        ctx.save_for_backward(x, values)
        ctx.layout = layout
        return torch.sparse.mm(layout.matrix(values), x.t()).t()

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        x, values = ctx.saved_tensors
        layout: CsrLayout = ctx.layout
        grad_x = grad_values = None
        if ctx.needs_input_grad[0]:
            grad_x = torch.sparse.mm(layout.matrix_t(values), grad_out.t()).t()
        if ctx.needs_input_grad[1]:
            # SDDMM: (g^T x) sampled at the kept entries; beta=0 ignores the pattern's values.
            pattern = layout.matrix(torch.zeros_like(values))
            grad_values = torch.sparse.sampled_addmm(
                pattern, grad_out.t().contiguous(), x, beta=0.0
            ).values()
        return grad_x, grad_values, None


def csr_linear(x: torch.Tensor, values: torch.Tensor, layout: CsrLayout) -> torch.Tensor:
    """y = x W^T for W given by (layout, values); x is (..., in)."""
    lead = x.shape[:-1]
    y = _CsrLinear.apply(x.reshape(-1, x.shape[-1]), values, layout)
    return y.reshape(*lead, layout.shape[0])
