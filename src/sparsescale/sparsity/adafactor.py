"""Sparsity-aware AdaFactor, configured as in the paper.

For each parameter p with gradient g at step t (0-based):

    beta = 1 - (t + 1) ** -decay_exponent          (0 on the first step)
    v    = beta * v + (1 - beta) * (g**2 + eps)     (unfactored; factored optional)
    u    = g / sqrt(v)
    u    = u / max(1, rms_nz(u) / clip_threshold)   (update clipping)
    p   -= lr * max(rms_nz(p), min_scale) * u       (relative step)

rms_nz(x) = sqrt(sum(x**2) / count_nonzero(x)): the RMS over NON-ZERO entries.
With the plain RMS over all entries, a tensor at 87.5% sparsity would have its
parameter scale (and so its step) shrink by sqrt(1/8); over non-zeros the kept
weights move as they would in a dense tensor. `sparse_aware=False` gives the plain
RMS for comparison. No momentum and no weight decay unless asked for.
"""

from __future__ import annotations

import math
from typing import Callable, Iterable

import torch

from sparsescale.errors import SparsescaleError


def rms_nonzero(x: torch.Tensor) -> torch.Tensor:
    """sqrt(sum(x^2) / number of non-zero entries); 0 for an all-zero tensor."""
    nnz = torch.count_nonzero(x).clamp_min(1)
    return torch.sqrt(x.float().square().sum() / nnz)


def rms_dense(x: torch.Tensor) -> torch.Tensor:
    """sqrt(mean(x^2)) over all entries."""
    return torch.sqrt(x.float().square().mean())


class SparseAdafactor(torch.optim.Optimizer):
    """AdaFactor with RMS statistics over non-zero entries (see module docstring).

    Args:
        params: parameters or parameter groups.
        lr: learning rate (the paper's T5 runs: 0.01; use any torch LR scheduler).
            With the relative step a weight moves by about lr * RMS(w) per
            step, so lr depends on the init scale: for the usual 0.02-std
            init (GPT-2, BERT, Llama, ViT) use ~5e-2 (= 1e-3 / 0.02; 1e-2
            barely learns there), or relative_step=False with an AdamW-like
            lr such as 1e-3 (benchmarks/adafactor_init_bench.py).
        eps: added to g^2 before it enters the second moment (1e-30).
        clip_threshold: update clipping at this block RMS (1.0).
        decay_exponent: second-moment decay 1 - (t+1)^-decay_exponent (0.8).
        min_scale: floor of the parameter RMS in the relative step (1e-3).
        relative_step: scale the step by max(rms(p), min_scale) (True).
        factored: factored second moment (row/column means) for >= 2-D tensors.
        beta1: momentum coefficient on the clipped update; None = no momentum.
        weight_decay: decoupled decay, p -= lr * weight_decay * p; 0 = none.
        sparse_aware: RMS over non-zero entries (True) or over all entries.
    """

    def __init__(
        self,
        params: Iterable[torch.Tensor] | Iterable[dict],
        lr: float = 1e-2,
        eps: float = 1e-30,
        clip_threshold: float = 1.0,
        decay_exponent: float = 0.8,
        min_scale: float = 1e-3,
        relative_step: bool = True,
        factored: bool = False,
        beta1: float | None = None,
        weight_decay: float = 0.0,
        sparse_aware: bool = True,
    ) -> None:
        if not lr > 0:
            raise SparsescaleError(f"lr must be > 0, got {lr!r}")
        if not eps >= 0:
            raise SparsescaleError(f"eps must be >= 0, got {eps!r}")
        if not clip_threshold > 0:
            raise SparsescaleError(f"clip_threshold must be > 0, got {clip_threshold!r}")
        if not decay_exponent > 0:
            raise SparsescaleError(f"decay_exponent must be > 0, got {decay_exponent!r}")
        if beta1 is not None and not (0.0 <= beta1 < 1.0):
            raise SparsescaleError(f"beta1 must be None or in [0, 1), got {beta1!r}")
        if not weight_decay >= 0:
            raise SparsescaleError(f"weight_decay must be >= 0, got {weight_decay!r}")
        defaults = dict(
            lr=lr,
            eps=eps,
            clip_threshold=clip_threshold,
            decay_exponent=decay_exponent,
            min_scale=min_scale,
            relative_step=relative_step,
            factored=factored,
            beta1=beta1,
            weight_decay=weight_decay,
            sparse_aware=sparse_aware,
        )
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            rms = rms_nonzero if group["sparse_aware"] else rms_dense
            for p in group["params"]:
                if p.grad is None:
                    continue
                if p.grad.is_sparse:
                    raise SparsescaleError("SparseAdafactor does not take torch sparse gradients")
                state = self.state[p]
                grad = p.grad.float()
                factored = group["factored"] and p.ndim >= 2
                if not state:
                    state["step"] = 0
                    if factored:
                        state["v_row"] = torch.zeros(p.shape[:-1], device=p.device)
                        state["v_col"] = torch.zeros(p.shape[:-2] + p.shape[-1:], device=p.device)
                    else:
                        state["v"] = torch.zeros_like(p, dtype=torch.float32)
                    if group["beta1"] is not None:
                        state["momentum"] = torch.zeros_like(p, dtype=torch.float32)
                step = state["step"]
                beta = 1.0 - math.pow(step + 1, -group["decay_exponent"])
                grad_sq = grad.square().add_(group["eps"])
                if factored:
                    v_row, v_col = state["v_row"], state["v_col"]
                    v_row.mul_(beta).add_(grad_sq.mean(dim=-1), alpha=1.0 - beta)
                    v_col.mul_(beta).add_(grad_sq.mean(dim=-2), alpha=1.0 - beta)
                    # Rank-1 estimate of v: outer(row, col) / mean(row).
                    row_scale = (v_row / v_row.mean(dim=-1, keepdim=True)).rsqrt_()
                    update = grad * row_scale.unsqueeze(-1) * v_col.rsqrt().unsqueeze(-2)
                else:
                    v = state["v"]
                    v.mul_(beta).add_(grad_sq, alpha=1.0 - beta)
                    update = grad * v.rsqrt()
                update.div_((rms(update) / group["clip_threshold"]).clamp_min(1.0))
                if group["beta1"] is not None:
                    momentum = state["momentum"]
                    momentum.mul_(group["beta1"]).add_(update, alpha=1.0 - group["beta1"])
                    update = momentum
                scale = group["lr"]
                if group["relative_step"]:
                    scale = scale * rms(p).clamp_min(group["min_scale"])
                if group["weight_decay"] > 0:
                    p.mul_(1.0 - group["lr"] * group["weight_decay"])
                p.sub_((update * scale).to(p.dtype))
                state["step"] = step + 1
        return loss


__all__ = ["SparseAdafactor", "rms_nonzero", "rms_dense"]
