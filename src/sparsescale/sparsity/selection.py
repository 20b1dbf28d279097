"""Which tensors of a model are "the Transformer block weights", and how each is
laid out for the math.

Models nobody here wrote hold their block weights in three kinds of modules:

- `nn.Linear`: weight stored (out, in), y = x W^T;
- GPT-2-style `Conv1D` (transformers): weight stored (in, out), y = x W;
- `nn.MultiheadAttention`: packed `in_proj_weight` (3E, E) or separate
  `q/k/v_proj_weight`, all (out, in), plus its `out_proj` (a Linear).

Blocks are found by numbering (`h.3`, `layers.0`), by membership of a
ModuleList/Sequential/ModuleDict (torchvision's `encoder_layer_N`), or as
repeated sibling modules of one class. n:m groups always run along the INPUT
dimension of the math (`input_dim`), whatever the storage layout.
"""

from __future__ import annotations

import fnmatch
import warnings
from dataclasses import dataclass
from typing import Iterable

from torch import nn

from sparsescale.errors import SparsescaleError

_NORM_TYPES: tuple[type, ...] = (
    nn.LayerNorm,
    nn.GroupNorm,
    nn.BatchNorm1d,
    nn.BatchNorm2d,
    nn.BatchNorm3d,
    nn.InstanceNorm1d,
    nn.InstanceNorm2d,
    nn.LocalResponseNorm,
) + ((nn.RMSNorm,) if hasattr(nn, "RMSNorm") else ())

_MHA_WEIGHTS = ("in_proj_weight", "q_proj_weight", "k_proj_weight", "v_proj_weight")
_CONTAINERS = (nn.ModuleList, nn.Sequential, nn.ModuleDict)
# Names of embeddings that are not the token embedding (positions, segment
# types, relative-position buckets); used only when the model does not say.
_NOT_TOKEN_EMBEDDING = ("pos", "position", "wpe", "type", "relative", "rel_", "segment")

# Below this fraction of the model's 2-D block weights, the pruner warns that
# its sparsity is not the model's.
COVERAGE_WARNING = 0.9


class SelectionWarning(UserWarning):
    """The pruned set misses a clear part of the model's block weights."""


@dataclass(frozen=True)
class MatmulWeight:
    """A 2-D weight used as a matrix product: `input_dim` is the storage axis
    that runs along the input features (1 for (out, in), 0 for Conv1D's (in, out))."""

    name: str
    input_dim: int


def is_conv1d(module: nn.Module) -> bool:
    """GPT-2's Conv1D (transformers.pytorch_utils.Conv1D): a Linear stored (in, out)."""
    weight = getattr(module, "weight", None)
    return (
        type(module).__name__ == "Conv1D"
        and weight is not None
        and weight.ndim == 2
        and weight.shape[1] == getattr(module, "nf", -1)
    )


def _module_matmuls(module: nn.Module) -> list[tuple[str, int]]:
    """(parameter name, input_dim) of the matrix-product weights a module owns directly."""
    if isinstance(module, nn.Linear):
        return [("weight", 1)]
    if is_conv1d(module):
        return [("weight", 0)]
    if isinstance(module, nn.MultiheadAttention):
        return [(n, 1) for n in _MHA_WEIGHTS if getattr(module, n, None) is not None]
    return []


def _is_leaf(module: nn.Module) -> bool:
    return next(module.children(), None) is None


def block_paths(model: nn.Module) -> set[str]:
    """Module paths of the model's blocks (see module docstring)."""
    blocks: set[str] = set()
    for path, parent in model.named_modules():
        children = list(parent.named_children())
        prefix = f"{path}." if path else ""
        counts: dict[type, int] = {}
        for _, child in children:
            if not _is_leaf(child):
                counts[type(child)] = counts.get(type(child), 0) + 1
        for name, child in children:
            numbered = name.isdigit() and isinstance(parent, (nn.ModuleList, nn.Sequential))
            held = isinstance(parent, _CONTAINERS) and not _is_leaf(child)
            repeated = not _is_leaf(child) and counts.get(type(child), 0) >= 2
            if numbered or held or repeated:
                blocks.add(prefix + name)
    return blocks


def _in_block(path: str, blocks: set[str]) -> bool:
    parts = path.split(".") if path else []
    return any(".".join(parts[: i + 1]) in blocks for i in range(len(parts)))


def matmul_weights(model: nn.Module) -> dict[int, MatmulWeight]:
    """Every matrix-product weight of the model, by id: Linear, Conv1D and
    MultiheadAttention projections (first name of a tied weight wins)."""
    names = {id(p): n for n, p in model.named_parameters()}
    found: dict[int, MatmulWeight] = {}
    for module in model.modules():
        for pname, input_dim in _module_matmuls(module):
            param = getattr(module, pname)
            if id(param) in names and id(param) not in found:
                found[id(param)] = MatmulWeight(names[id(param)], input_dim)
    return found


def _never_prunable(model: nn.Module) -> set[int]:
    """ids of parameters that are never pruned: biases, norm parameters, 0-/1-D."""
    ids: set[int] = set()
    for module in model.modules():
        for pname, param in module.named_parameters(recurse=False):
            if param.ndim < 2 or pname.endswith("bias") or isinstance(module, _NORM_TYPES):
                ids.add(id(param))
    return ids


def _block_matmul_ids(model: nn.Module) -> set[int]:
    blocks = block_paths(model)
    ids: set[int] = set()
    for path, module in model.named_modules():
        if _in_block(path, blocks):
            ids.update(id(getattr(module, pname)) for pname, _ in _module_matmuls(module))
    return ids


def _as_patterns(patterns: str | Iterable[str] | None, argument: str) -> list[str]:
    if patterns is None:
        return []
    if isinstance(patterns, str):
        return [patterns]
    patterns = list(patterns)
    if not all(isinstance(p, str) for p in patterns):
        raise SparsescaleError(
            f"{argument} must be a glob pattern or a list of them, got {patterns!r}"
        )
    return patterns


def _filter(model, default_ids, include, exclude) -> dict:
    named = dict(model.named_parameters())  # deduplicates tied weights, first name wins
    include_patterns = _as_patterns(include, "include")
    exclude_patterns = _as_patterns(exclude, "exclude")
    for argument, pattern in [("include", p) for p in include_patterns] + [
        ("exclude", p) for p in exclude_patterns
    ]:
        if not any(fnmatch.fnmatchcase(name, pattern) for name in named):
            raise SparsescaleError(
                f"{argument} pattern {pattern!r} matches no parameter of the model"
            )
    never = _never_prunable(model)
    for pattern in include_patterns:
        if all(id(p) in never for n, p in named.items() if fnmatch.fnmatchcase(n, pattern)):
            raise SparsescaleError(
                f"include pattern {pattern!r} matches only biases, norm or 1-D parameters, which "
                "are never pruned"
            )
    chosen = {}
    for name, param in named.items():
        wanted = id(param) in default_ids or any(
            fnmatch.fnmatchcase(name, p) for p in include_patterns
        )
        if (
            wanted
            and id(param) not in never
            and not any(fnmatch.fnmatchcase(name, p) for p in exclude_patterns)
        ):
            chosen[name] = param
    return chosen


def select_prunable(
    model: nn.Module,
    include: str | Iterable[str] | None = None,
    exclude: str | Iterable[str] | None = None,
) -> dict[str, nn.Parameter]:
    """The parameters the pruner prunes (and whose non-zeros are N), by name.

    Default: every matrix-product weight inside the Transformer blocks: nn.Linear,
    GPT-2's Conv1D and nn.MultiheadAttention's packed or separate input
    projections (its out_proj is a Linear). `include` adds parameters whose name
    matches a glob pattern; `exclude` removes them. Biases, norm parameters and
    tensors with fewer than 2 dims are never selected. A pure function of the
    model; names and order follow `model.named_parameters()`.
    """
    return _filter(model, _block_matmul_ids(model), include, exclude)


def input_dims(model: nn.Module, names: Iterable[str]) -> dict[str, int]:
    """Storage axis of each named 2-D weight that runs along the input features
    (0 for Conv1D, else the last); n:m groups follow it."""
    by_name = {w.name: w.input_dim for w in matmul_weights(model).values()}
    return {name: by_name.get(name, -1) for name in names}


def block_weights_2d(model: nn.Module) -> dict[str, nn.Parameter]:
    """Every 2-D weight inside the blocks (embedding tables and norms aside):
    what "the model's block weights" means when checking coverage."""
    blocks = block_paths(model)
    found: dict[str, nn.Parameter] = {}
    seen: set[int] = set()
    for path, module in model.named_modules():
        if not _in_block(path, blocks) or isinstance(module, (nn.Embedding,) + _NORM_TYPES):
            continue
        for pname, param in module.named_parameters(recurse=False):
            if param.ndim == 2 and not pname.endswith("bias") and id(param) not in seen:
                seen.add(id(param))
                found[f"{path}.{pname}" if path else pname] = param
    return found


def coverage(model: nn.Module, prunable: dict[str, nn.Parameter]) -> float:
    """Fraction (by numel) of the model's 2-D block weights that are in `prunable`
    (1.0 when the model has none: then the selection is all the user asked for)."""
    block = block_weights_2d(model)
    total = sum(p.numel() for p in block.values())
    chosen = {id(p) for p in prunable.values()}
    covered = sum(p.numel() for p in block.values() if id(p) in chosen)
    return covered / total if total else 1.0


def warn_on_low_coverage(fraction: float) -> None:
    if fraction < COVERAGE_WARNING:
        warnings.warn(
            f"the pruned set covers only {fraction:.1%} of the model's 2-D block weights; the "
            "reported "
            "sparsity is that of the pruned set, not of the model (add the rest with include=)",
            SelectionWarning,
            stacklevel=3,
        )


def select_embeddings(
    model: nn.Module, exclude: str | Iterable[str] | None = None
) -> dict[str, nn.Parameter]:
    """Embedding and head parameters for the paper's parameter accounting: the
    weights of every nn.Embedding and of every matrix-product weight outside the
    blocks (minus `exclude` matches). `select_token_embeddings` is the subset
    that embeddings="on"/"auto" prunes."""
    blocks = block_paths(model)
    default_ids = set()
    for path, module in model.named_modules():
        if isinstance(module, nn.Embedding):
            default_ids.add(id(module.weight))
        elif not _in_block(path, blocks):
            default_ids.update(id(getattr(module, pname)) for pname, _ in _module_matmuls(module))
    return _filter(model, default_ids, None, exclude)


def _token_embedding(model: nn.Module, blocks: set[str], vocab_sizes: set[int]) -> nn.Module | None:
    getter = getattr(model, "get_input_embeddings", None)
    if callable(getter):  # Hugging Face models say which one it is
        try:
            found = getter()
        except (NotImplementedError, AttributeError):
            found = None
        if isinstance(found, nn.Embedding):
            return found
    candidates = [
        (p, m)
        for p, m in model.named_modules()
        if isinstance(m, nn.Embedding) and not _in_block(p, blocks)
    ]
    # The table the output head projects back onto is the token embedding.
    for _, module in candidates:
        if module.num_embeddings in vocab_sizes:
            return module
    named = [
        (p, m)
        for p, m in candidates
        if not any(s in p.rsplit(".", 1)[-1].lower() for s in _NOT_TOKEN_EMBEDDING)
    ]
    return max(named, key=lambda pm: pm[1].num_embeddings)[1] if named else None


def _output_head(model: nn.Module, blocks: set[str]) -> nn.Module | None:
    getter = getattr(model, "get_output_embeddings", None)
    if callable(getter):
        try:
            found = getter()
        except (NotImplementedError, AttributeError):
            found = None
        if found is not None:
            return found
    outside = [
        m for p, m in model.named_modules() if not _in_block(p, blocks) and _module_matmuls(m)
    ]
    return outside[-1] if outside else None


def select_token_embeddings(
    model: nn.Module, exclude: str | Iterable[str] | None = None
) -> dict[str, nn.Parameter]:
    """What embeddings="on"/"auto" prunes: the token embedding and the output head
    (one tensor when they are tied). Position, segment-type and relative-position
    tables, and projections outside the blocks other than the head, stay dense.
    Hugging Face models name both (get_input/output_embeddings); otherwise the
    head is the last matrix-product layer outside the blocks and the token
    embedding the table with as many rows as the head has outputs."""
    blocks = block_paths(model)
    head = _output_head(model, blocks)
    vocab = (
        {head.weight.shape[0] if not is_conv1d(head) else head.weight.shape[1]}
        if head is not None
        else set()
    )
    token = _token_embedding(model, blocks, vocab)
    ids = {
        id(m.weight)
        for m in (token, head)
        if m is not None and isinstance(getattr(m, "weight", None), nn.Parameter)
    }
    return _filter(model, ids, None, exclude)


__all__ = [
    "MatmulWeight",
    "SelectionWarning",
    "COVERAGE_WARNING",
    "block_paths",
    "block_weights_2d",
    "coverage",
    "input_dims",
    "is_conv1d",
    "matmul_weights",
    "select_embeddings",
    "select_prunable",
    "select_token_embeddings",
    "warn_on_low_coverage",
]
