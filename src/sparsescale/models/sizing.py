"""The paper's parameter accounting, and the width that reaches a target N.

N is the number of NON-ZERO weights of the pruned block linear layers (the
tensors `sparsity.pruner.select_prunable` picks), so the pruner and this
accounting always agree. A run that targets N non-zeros at sparsity S needs
about N / (1 - S) dense block parameters: sparse models are wider than dense
ones at the same N. Depth and head_dim stay fixed; the width (a multiple of
head_dim and of m for an n:m pattern) is chosen near the nominal shape, and the
MLP hidden size then fine-tunes the count so that N lands within 1% of the
target where the width grid allows (5% is the hard limit).

n:m means n weights KEPT in every group of m consecutive weights along the
input dimension (2:4 keeps 2 of 4), so m must divide every pruned tensor's
input dimension: the width, the attention inner width and the MLP hidden size.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from sparsescale.errors import SparsescaleError

FAMILIES = ("gpt", "t5", "vit")
N_TOLERANCE = 0.05   # |N reached / N target - 1| must stay below this

# Fixed per-family shape (everything but the width): small defaults chosen for
# CPU throughput (see benchmarks/train_bench.py); all can be overridden.
DEFAULT_ARCH: dict[str, dict[str, Any]] = {
    "gpt": {"depth": 2, "head_dim": 16, "mlp": "gelu", "pos": "learned", "seq_len": 64, "vocab_size": 256},
    "t5": {"enc_depth": 2, "dec_depth": 2, "head_dim": 16, "vocab_size": 256 + 2 + 100},
    "vit": {"depth": 4, "head_dim": 16, "image_size": 28, "channels": 1, "patch": 7, "n_classes": 10, "pool": "cls"},
}


def config_class(family: str):
    """The model config dataclass of a family."""
    if family == "gpt":
        from sparsescale.models.gpt import GPTConfig

        return GPTConfig
    if family == "t5":
        from sparsescale.models.t5 import T5Config

        return T5Config
    if family == "vit":
        from sparsescale.models.vit import ViTConfig

        return ViTConfig
    raise SparsescaleError(f"unknown model {family!r}; expected one of {', '.join(FAMILIES)}")


def build_model(family: str, model_config: Any, device: str = "cpu"):
    """Instantiate the family's model. device="meta" builds it without memory,
    which is how sizing counts parameters of candidate widths."""
    import torch

    config_class(family)  # validates the family name
    with torch.device(device):
        if family == "gpt":
            from sparsescale.models.gpt import GPT

            return GPT(model_config)
        if family == "t5":
            from sparsescale.models.t5 import T5

            return T5(model_config)
        from sparsescale.models.vit import ViT

        return ViT(model_config)


def count_params(model, sparsity: float, pattern: str | None = None) -> dict[str, int]:
    """Parameter counts of a model under the paper's accounting.

    n_block_params: dense size of the pruned set (select_prunable);
    n_nonzero: what the pruner keeps there at `sparsity` (per tensor,
    round(numel * (1 - S))); embedding_params: embeddings and output head
    (select_embeddings); total_params: everything."""
    from sparsescale.sparsity.masks import n_kept
    from sparsescale.sparsity.pruner import select_embeddings, select_prunable

    prunable = select_prunable(model)
    embeddings = {k: v for k, v in select_embeddings(model).items() if k not in prunable}
    return {
        "n_block_params": sum(p.numel() for p in prunable.values()),
        "n_nonzero": sum(n_kept(p.numel(), sparsity) for p in prunable.values()),
        "embedding_params": sum(p.numel() for p in embeddings.values()),
        "total_params": sum(p.numel() for p in model.parameters()),
    }


@dataclass
class SizePlan:
    """The shape chosen for a target N, with the counts it reaches."""

    family: str
    model_config: Any
    target_n_nonzero: int
    sparsity: float
    pattern: str | None
    n_nonzero: int
    n_block_params: int
    embedding_params: int
    total_params: int

    @property
    def width(self) -> int:
        return self.model_config.width

    def as_dict(self) -> dict[str, Any]:
        return {
            "family": self.family,
            "model_config": dataclasses.asdict(self.model_config),
            "target_n_nonzero": self.target_n_nonzero,
            "n_nonzero": self.n_nonzero,
            "n_block_params": self.n_block_params,
            "embedding_params": self.embedding_params,
            "total_params": self.total_params,
            "width": self.width,
        }


def _mlp_ratio_and_coeffs(family: str, arch: dict[str, Any]) -> tuple[float, float, float]:
    """(nominal hidden/width ratio, a, b) with dense block params = a d^2 + b d h
    when the attention inner width equals d. The ratios give the paper's 12 d^2
    per (encoder) layer: 4 d^2 attention + 8 d^2 MLP."""
    if family == "gpt":
        gated = arch["mlp"] == "geglu"
        depth = arch["depth"]
        return (8 / 3 if gated else 4.0), 4.0 * depth, (3.0 if gated else 2.0) * depth
    if family == "t5":
        enc, dec = arch["enc_depth"], arch["dec_depth"]
        return 8 / 3, 4.0 * enc + 8.0 * dec, 3.0 * (enc + dec)
    return 4.0, 4.0 * arch["depth"], 2.0 * arch["depth"]


def _resolve_arch(family: str, arch: dict[str, Any] | None) -> dict[str, Any]:
    config_class(family)
    resolved = dict(DEFAULT_ARCH[family])
    known = {f.name for f in dataclasses.fields(config_class(family))} - {"width", "n_heads", "mlp_hidden"}
    for key, value in (arch or {}).items():
        if value is None:
            continue
        if key not in known:
            raise SparsescaleError(f"model {family!r} has no setting {key!r}; known: {', '.join(sorted(known))}")
        resolved[key] = value
    return resolved


def _pattern_m(pattern: str | None) -> int:
    from sparsescale.sparsity.masks import parse_pattern

    nm = parse_pattern(pattern)
    return 1 if nm is None else nm[1]


def _make_config(family: str, arch: dict[str, Any], width: int, hidden: int):
    cls = config_class(family)
    return cls(**arch, width=width, n_heads=width // arch["head_dim"], mlp_hidden=hidden)


def min_n_nonzero(family: str, sparsity: float, pattern: str | None = None, arch: dict[str, Any] | None = None) -> int:
    """The smallest N the family reaches: one attention head (width = head_dim,
    rounded up to a multiple of m) at the nominal MLP ratio."""
    arch = _resolve_arch(family, arch)
    m = _pattern_m(pattern)
    ratio, a, b = _mlp_ratio_and_coeffs(family, arch)
    d = math.lcm(arch["head_dim"], m)
    h = max(math.lcm(4, m), round(ratio * d / math.lcm(4, m)) * math.lcm(4, m))
    return int((a * d * d + b * d * h) * (1.0 - sparsity))


def plan_size(
    family: str,
    n_nonzero: int,
    sparsity: float,
    pattern: str | None = None,
    arch: dict[str, Any] | None = None,
) -> SizePlan:
    """Pick the width (and MLP hidden size) so that the model has about
    n_nonzero / (1 - sparsity) dense block parameters, i.e. N non-zeros after
    pruning to `sparsity`. `pattern` "n:m" (n kept in every m along the input
    dimension) forces widths divisible by m. `arch` overrides the family's
    fixed shape (depth, head_dim, mlp, pos, seq_len, vocab_size, ...).
    Raises SparsescaleError when no width reaches N within 5%."""
    from sparsescale.sparsity.schedules import _check_sparsity

    _check_sparsity(sparsity)
    arch = _resolve_arch(family, arch)
    n_nonzero = int(n_nonzero)
    floor = min_n_nonzero(family, sparsity, pattern, arch)
    if n_nonzero < floor:
        raise SparsescaleError(
            f"--params {n_nonzero} is below the {family} minimum of {floor} non-zeros at sparsity {sparsity:g} "
            f"(its narrowest shape: width {math.lcm(arch['head_dim'], _pattern_m(pattern))}, depth fixed)"
        )
    m = _pattern_m(pattern)
    width_step = math.lcm(arch["head_dim"], m)
    hidden_step = math.lcm(4, m)
    ratio, a, b = _mlp_ratio_and_coeffs(family, arch)
    dense_target = n_nonzero / (1.0 - sparsity)
    d0 = math.sqrt(dense_target / (a + b * ratio))

    # Candidate widths around the nominal one; the hidden size absorbs the rest.
    k0 = max(1, round(d0 / width_step))
    candidates = []
    for k in range(max(1, k0 - 2), k0 + 3):
        d = k * width_step
        h = round((dense_target - a * d * d) / (b * d) / hidden_step) * hidden_step
        if h < hidden_step:
            continue
        error = abs((a * d * d + b * d * h) / dense_target - 1.0)
        # Within 1% any width will do: prefer the one closest to the nominal shape.
        candidates.append((error > 0.01, abs(math.log(d / d0)), error, d, h))
    if not candidates:
        raise SparsescaleError(
            f"--params {n_nonzero}: no width that is a multiple of {width_step} (head_dim {arch['head_dim']}"
            f"{f' and m={m} of --pattern {pattern}' if m > 1 else ''}) fits; ask for more non-zeros or a smaller m"
        )
    _, _, _, d, h = min(candidates)
    model_config = _make_config(family, arch, d, h)
    counts = count_params(build_model(family, model_config, device="meta"), sparsity, pattern)
    reached = counts["n_nonzero"]
    if abs(reached / n_nonzero - 1.0) > N_TOLERANCE:
        raise SparsescaleError(
            f"--params {n_nonzero}: the closest {family} width allowed (a multiple of {width_step}: head_dim "
            f"{arch['head_dim']}{f' and m={m} of --pattern {pattern}' if m > 1 else ''}) is {d}, which reaches "
            f"{reached} non-zeros, more than 5% off"
        )
    return SizePlan(
        family=family,
        model_config=model_config,
        target_n_nonzero=n_nonzero,
        sparsity=float(sparsity),
        pattern=pattern,
        n_nonzero=reached,
        n_block_params=counts["n_block_params"],
        embedding_params=counts["embedding_params"],
        total_params=counts["total_params"],
    )
