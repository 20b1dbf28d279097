"""The pruned model after training: a sparse checkpoint and sparse inference layers.

- `save_sparse(model, path)` writes the state dict with every mostly-zero 2-D
  tensor in CSR form (row pointers, column indices, values: about
  (8 + itemsize) bytes per non-zero instead of itemsize per weight);
  `load_sparse(model, path)` fills a model of the same architecture back.
- `sparsify_for_inference(model, names)` turns pruned Linear and GPT-2 Conv1D
  layers into nn.Linear layers whose weight is a sparse tensor: CSR (any
  device), or 2:4 semi-structured (`torch.sparse.to_sparse_semi_structured`,
  CUDA with fp16/bf16 only; n:m here means 2 weights KEPT in every group of 4
  along the input dimension).

Call `GradualPruner.finalize()` first: it drops the masks and keeps the zeros.
"""

from __future__ import annotations

import os
import pickle
from typing import Iterable

import torch
from torch import nn

from sparsescale.atomic import atomic_path
from sparsescale.errors import SparsescaleError
from sparsescale.sparsity.selection import is_conv1d

FORMAT = "sparsescale-sparse-checkpoint-v1"
LAYOUTS = ("csr", "2:4")


def _worth_csr(tensor: torch.Tensor, min_sparsity: float) -> bool:
    if tensor.ndim != 2 or not tensor.is_floating_point() or tensor.numel() == 0:
        return False
    return float((tensor == 0).float().mean()) >= min_sparsity


def save_sparse(
    model: nn.Module, path: str | os.PathLike, min_sparsity: float = 0.5
) -> dict[str, int]:
    """Write the model's state dict with 2-D tensors of at least `min_sparsity`
    zeros in CSR form (atomically). Returns {"csr_tensors", "dense_tensors",
    "nonzeros"} counts."""
    dense, csr = {}, {}
    for name, tensor in model.state_dict().items():
        tensor = tensor.detach().cpu()
        if _worth_csr(tensor, min_sparsity):
            sparse = tensor.to_sparse_csr()
            csr[name] = {
                "shape": list(tensor.shape),
                "crow_indices": sparse.crow_indices(),
                "col_indices": sparse.col_indices(),
                "values": sparse.values(),
            }
        else:
            dense[name] = tensor
    with atomic_path(path) as tmp:
        torch.save({"format": FORMAT, "dense": dense, "csr": csr}, tmp)
    return {
        "csr_tensors": len(csr),
        "dense_tensors": len(dense),
        "nonzeros": sum(int(c["values"].numel()) for c in csr.values()),
    }


def load_sparse_state(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The dense state dict stored by `save_sparse` (pruned entries are 0)."""
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError, ValueError, pickle.UnpicklingError) as exc:
        raise SparsescaleError(
            f"{path}: not a readable sparse checkpoint ({str(exc).splitlines()[0]})"
        ) from None
    if not isinstance(saved, dict) or saved.get("format") != FORMAT:
        raise SparsescaleError(f"{path}: not a sparse checkpoint written by save_sparse")
    state = dict(saved["dense"])
    for name, entry in saved["csr"].items():
        state[name] = torch.sparse_csr_tensor(
            entry["crow_indices"], entry["col_indices"], entry["values"], size=tuple(entry["shape"])
        ).to_dense()
    return state


def load_sparse(model: nn.Module, path: str | os.PathLike) -> nn.Module:
    """Load a `save_sparse` checkpoint into `model` (same architecture)."""
    state = load_sparse_state(path)
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()
        raise SparsescaleError(
            f"{path}: does not fit this model ({first[1].strip() if len(first) > 1 else first[0]})"
        ) from None
    return model


def _as_linear(module: nn.Module, weight: torch.Tensor) -> nn.Linear:
    """An nn.Linear computing what `module` computes, with `weight` (out, in)."""
    linear = nn.Linear(
        weight.shape[1], weight.shape[0], bias=module.bias is not None, device="meta"
    )
    linear.weight = nn.Parameter(weight, requires_grad=False)
    if module.bias is not None:
        linear.bias = nn.Parameter(module.bias.detach().clone(), requires_grad=False)
    return linear


def _sparse_weight(weight: torch.Tensor, layout: str) -> torch.Tensor:
    if layout == "csr":
        return weight.to_sparse_csr()
    if weight.device.type != "cuda" or weight.dtype not in (torch.float16, torch.bfloat16):
        raise SparsescaleError(
            "layout '2:4' (torch.sparse.to_sparse_semi_structured) needs a CUDA device and "
            "fp16/bf16 weights; "
            f"this weight is {weight.dtype} on {weight.device.type}"
        )
    groups = (weight != 0).reshape(-1, 4).sum(1)
    if bool((groups > 2).any()):
        raise SparsescaleError(
            "layout '2:4': the weight is not 2:4 (a group of 4 has more than 2 non-zeros)"
        )
    return torch.sparse.to_sparse_semi_structured(weight)


def sparsify_for_inference(
    model: nn.Module, names: Iterable[str], layout: str = "csr"
) -> dict[str, str]:
    """Replace the Linear / Conv1D layers owning the weights `names` by
    nn.Linear layers with a sparse `layout` weight ("csr" or "2:4"), in place,
    for inference (no gradients). Weights of other modules (e.g.
    nn.MultiheadAttention's packed projection, which its fused kernel reads
    dense) stay as they are. Returns {name: what was done}."""
    if layout not in LAYOUTS:
        raise SparsescaleError(f"layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
    done = {}
    for name in names:
        module_path, _, pname = name.rpartition(".")
        try:
            module = model.get_submodule(module_path)
        except AttributeError:
            raise SparsescaleError(f"names: the model has no tensor {name}") from None
        parent = (
            model.get_submodule(module_path.rpartition(".")[0]) if "." in module_path else model
        )
        if isinstance(parent, nn.MultiheadAttention):
            done[name] = (
                "kept dense (nn.MultiheadAttention reads its out_proj weight in its fused kernel)"
            )
            continue
        if pname != "weight" or not (isinstance(module, nn.Linear) or is_conv1d(module)):
            done[name] = f"kept dense ({type(module).__name__}.{pname} has no sparse kernel here)"
            continue
        weight = module.weight.detach()
        weight = weight.t().contiguous() if is_conv1d(module) else weight  # math layout (out, in)
        replacement = _as_linear(module, _sparse_weight(weight, layout))
        parent_path, _, child = module_path.rpartition(".")
        setattr(model.get_submodule(parent_path) if parent_path else model, child, replacement)
        done[name] = layout
    return done


__all__ = [
    "save_sparse",
    "load_sparse",
    "load_sparse_state",
    "sparsify_for_inference",
    "FORMAT",
    "LAYOUTS",
]
