"""2:4 pruned linears on semi-structured sparse kernels (CUDA, Ampere or newer).

Once a linear's mask is final and 2:4 (2 weights KEPT in every group of 4
consecutive weights along the input dimension; pattern "2:4T" makes it 2:4
along the output dimension as well), its matmuls can run on
PyTorch's semi-structured kernels (`torch.sparse.to_sparse_semi_structured`,
CUTLASS or cuSPARSELt backend) instead of dense ones. The swap keeps the very
same weight Parameter, so the optimizer, its state and the pruner see no
change; only the module's forward differs.

Which matmuls go sparse, and why not all three:
- forward  y = x W^T: W is 2:4 along its rows (the input dim): sparse kernel.
- backward dx = g W = g (W^T)^T: needs W^T compressed, i.e. a mask that is also
  2:4 along the output dim ("transposable"). A "2:4T" pruner's masks are, in
  every layer; plain "2:4" masks are 2:4 along the input dim only, so there
  dx is sparse only where a mask happens to be transposable (checked per
  layer at swap time), otherwise dense on the masked weight, which is exact.
- backward dW = g^T x: the training recipe updates with the dense gradient (the
  sparsity-aware AdaFactor's factored statistics use it), so it stays dense.

Parity: the sparse kernels multiply the same bf16/fp16 operands as the masked
dense matmul, so results agree up to the accumulation order of bf16 products.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from sparsescale.errors import SparsescaleError

HALF_DTYPES = (torch.float16, torch.bfloat16)


def unavailable_reason(device: torch.device | str | None = None) -> str | None:
    """Why semi-structured kernels cannot run here, or None if they can."""
    dev = torch.device(device) if device is not None else torch.device("cuda")
    if dev.type != "cuda":
        return (
            f"semi-structured 2:4 kernels need a CUDA device (got {dev.type}); "
            "PyTorch has no CPU implementation"
        )
    if not torch.cuda.is_available():
        return "semi-structured 2:4 kernels need CUDA, and torch.cuda.is_available() is False"
    major, minor = torch.cuda.get_device_capability(dev)
    if major < 8:
        return (
            "semi-structured 2:4 kernels need compute capability >= 8.0 (Ampere); "
            f"this GPU has {major}.{minor}"
        )
    try:
        from torch.sparse import to_sparse_semi_structured  # noqa: F401
    except ImportError as exc:  # pragma: no cover - very old torch
        return f"this torch has no torch.sparse.to_sparse_semi_structured ({exc})"
    return None


def is_nm(mask: torch.Tensor, n: int = 2, m: int = 4) -> bool:
    """At most n of every m consecutive entries along the last dim are kept."""
    if mask.shape[-1] % m:
        return False
    return bool((mask.reshape(*mask.shape[:-1], -1, m).sum(-1) <= n).all())


def _compress(weight: torch.Tensor):
    from torch.sparse import to_sparse_semi_structured

    return to_sparse_semi_structured(weight)


def _compute_dtype(x: torch.Tensor) -> torch.dtype:
    if torch.is_autocast_enabled(x.device.type):
        return torch.get_autocast_dtype(x.device.type)
    return x.dtype


class _SemiSparseLinear(torch.autograd.Function):
    """y = x (W*mask)^T + b with the forward (and, for transposable masks, dx)
    on 2:4 kernels; the bias rides in the same kernel, as in a dense linear."""

    @staticmethod
    def forward(ctx, x, weight, bias, mask, transposable: bool):
        dtype = _compute_dtype(x)
        if dtype not in HALF_DTYPES:
            raise SparsescaleError(
                f"semi-structured kernels need bf16 or fp16 activations, got {dtype}"
            )
        ctx.dtypes = (x.dtype, weight.dtype, None if bias is None else bias.dtype)
        ctx.transposable = transposable
        # autocast off inside: the operands are cast here, and autocast must not touch the sparse
        # subclass
        with torch.autocast(x.device.type, enabled=False):
            w = (weight * mask).to(dtype)
            x = x.to(dtype).contiguous()  # the sparse kernels take row-major dense operands
            ctx.save_for_backward(x, w)
            return F.linear(x, _compress(w), None if bias is None else bias.to(dtype))

    @staticmethod
    def backward(ctx, grad_out):
        x, w = ctx.saved_tensors
        x_dtype, w_dtype, b_dtype = ctx.dtypes
        grad_x = grad_w = grad_b = None
        with torch.autocast(x.device.type, enabled=False):
            g = grad_out.to(w.dtype).contiguous()
            if ctx.needs_input_grad[0]:
                grad_x = (
                    F.linear(g, _compress(w.t().contiguous())) if ctx.transposable else g @ w
                ).to(x_dtype)
            if ctx.needs_input_grad[1]:
                grad_w = (g.t() @ x).to(
                    w_dtype
                )  # the dense gradient, as masked-dense training uses
            if ctx.needs_input_grad[2]:
                grad_b = g.sum(0).to(b_dtype)
        return grad_x, grad_w, grad_b, None, None


class SemiStructuredLinear(nn.Module):
    """A 2:4-masked nn.Linear on semi-structured kernels; shares its Parameters."""

    def __init__(self, linear: nn.Linear, mask: torch.Tensor) -> None:
        super().__init__()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.weight = linear.weight
        self.bias = linear.bias
        self.register_buffer(
            "mask",
            mask.to(device=linear.weight.device, dtype=linear.weight.dtype),
            persistent=False,
        )
        self.transposable = is_nm(mask.t())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        lead = x.shape[:-1]
        y = _SemiSparseLinear.apply(
            x.reshape(-1, self.in_features), self.weight, self.bias, self.mask, self.transposable
        )
        return y.reshape(*lead, self.out_features)


@dataclass
class SwapReport:
    swapped: list[str]
    skipped: dict[str, str]  # module name -> reason


def unswappable_reason(module: nn.Module, mask: torch.Tensor, dtype: torch.dtype) -> str | None:
    """Why `module` with `mask` cannot run on the 2:4 kernels, or None."""
    if not isinstance(module, nn.Linear):
        return f"not an nn.Linear ({type(module).__name__})"
    if not is_nm(mask):
        return "mask is not 2:4 along the input dimension (not final yet?)"
    try:  # the kernels' own shape rules (minimum and multiple sizes per dtype)
        _compress(torch.zeros(tuple(mask.shape), dtype=dtype, device=module.weight.device))
    except (RuntimeError, ValueError) as exc:
        return (
            f"shape {tuple(mask.shape)} not supported by the 2:4 kernels: "
            f"{str(exc).splitlines()[0]}"
        )
    return None


def swap_to_semi_structured(
    model: nn.Module, masks: dict[str, torch.Tensor], dtype: torch.dtype = torch.bfloat16
) -> SwapReport:
    """Replace every nn.Linear whose `<name>.weight` has a final 2:4 mask in
    `masks` (the pruner's `masks`) by a SemiStructuredLinear. Raises
    SparsescaleError where the kernels cannot run at all (CPU, old GPU)."""
    any_param = next(iter(model.parameters()), None)
    reason = unavailable_reason(any_param.device if any_param is not None else None)
    if reason is not None:
        raise SparsescaleError(reason)
    report = SwapReport([], {})
    modules = dict(model.named_modules())
    for pname, mask in masks.items():
        if not pname.endswith(".weight") or pname[: -len(".weight")] not in modules:
            continue
        name = pname[: -len(".weight")]
        why = unswappable_reason(modules[name], mask, dtype)
        if why is not None:
            report.skipped[name] = why
            continue
        parent_name, _, child = name.rpartition(".")
        parent = modules[parent_name] if parent_name else model
        setattr(parent, child, SemiStructuredLinear(modules[name], mask))
        report.swapped.append(name)
    return report


@functools.lru_cache(maxsize=64)
def _last_update_step(schedule, total_steps: int) -> int:
    """The last step on which `schedule` recomputes masks (-1 if none); the
    schedules are frozen dataclasses, so this is computed once per schedule."""
    return next((t for t in range(total_steps - 1, -1, -1) if schedule.is_update_step(t)), -1)


def swap_when_final(
    model: nn.Module, pruner, dtype: torch.dtype = torch.bfloat16
) -> SwapReport | None:
    """For a training loop: call after `pruner.step()`; once the pruner's 2:4
    (or 2:4T) masks are final (past the schedule's last update step) swap the
    pruned linears and return the report, else return None. Other patterns
    never swap. The pruner keeps re-applying masks, which is harmless."""
    if getattr(pruner, "nm", None) != (2, 4):
        return None
    if pruner.step_count <= _last_update_step(pruner.schedule, pruner.config["total_steps"]):
        return None
    return swap_to_semi_structured(model, pruner.masks, dtype)
