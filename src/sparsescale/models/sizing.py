"""The paper's parameter accounting, and the width that reaches a target N.

N is the number of NON-ZERO weights of the pruned block linear layers (the
tensors `sparsity.pruner.select_prunable` picks), so the pruner and this
accounting always agree. A run that targets N non-zeros at sparsity S needs
about N / (1 - S) dense block parameters: sparse models are wider than dense
ones at the same N. Depth and head_dim stay fixed; the width (a multiple of
head_dim and of m for an n:m pattern) is chosen near the nominal shape, and the
MLP hidden size then fine-tunes the count so that N lands within 1% of the
target where the width grid allows (5% is the hard limit).

depth = "auto" grows the depth with the model instead (see auto_depth): the
aspect ratio width / depth is held near ASPECT_RATIO, the ratio of the
Chinchilla and GPT-3 tables, and the width then fills in N as above. The
number of heads always follows from the width: width / head_dim.

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
from sparsescale.models.registry import get_family

N_TOLERANCE = 0.05  # |N reached / N target - 1| must stay below this

# width / depth of depth = "auto". Kaplan et al. 2020 (Fig. 5) find the loss at
# fixed N within a few percent of its best for width / depth from about 20 to
# 200; the models of Hoffmann et al. 2022 (Chinchilla, Table A9) sit at 64 at
# the small end (d_model 512 / 8 layers, 768 / 12, 1024 / 16) and GPT-3's
# Small and Large at 64 (768 / 12, 1536 / 24). 64 is in the middle of
# Kaplan's flat band, so rounding depth to an integer costs nothing measurable.
ASPECT_RATIO = 64
DEPTH_KEYS = ("depth", "enc_depth", "dec_depth")  # the families' depth settings (t5 has two stacks)


def auto_depth(family: str, arch: dict[str, Any], dense_block_params: float) -> int:
    """The depth L whose width d = ASPECT_RATIO * L holds `dense_block_params`.

    With block parameters per unit depth c d^2 (c = a1 + b1 * ratio from the
    family's sizing coefficients at depth 1: 12 for a GPT layer, 4 d^2
    attention + 8 d^2 MLP), P = L c d^2 = c R^2 L^3, so L = (P / (c R^2))^(1/3),
    rounded, at least 1. For a GPT: 1M dense block parameters -> 3 layers of
    width ~170; 10M -> 6 of ~370; 100M -> 13 of ~800 (Chinchilla's 140M model:
    15 layers of 768). Based on the DENSE block size N / (1 - S), the shape of
    the network that is trained, so a sparse model is deeper and wider than a
    dense one at the same non-zero N, as it is wider with a fixed depth."""
    unit = dict(arch, **{k: 1 for k in DEPTH_KEYS if arch.get(k) == "auto"})
    ratio, a, b = get_family(family).sizing_coeffs(unit)
    c = a + b * ratio
    return max(1, round((dense_block_params / (c * ASPECT_RATIO**2)) ** (1 / 3)))


def config_class(family: str):
    """The model config dataclass of a family."""
    return get_family(family).config_class()


def build_model(family: str, model_config: Any, device: str = "cpu"):
    """Instantiate the family's model. device="meta" builds it without memory,
    which is how sizing counts parameters of candidate widths."""
    return get_family(family).build(model_config, device)


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


def _resolve_arch(family: str, arch: dict[str, Any] | None) -> dict[str, Any]:
    resolved = dict(get_family(family).default_arch)
    known = {f.name for f in dataclasses.fields(config_class(family))} - {
        "width",
        "n_heads",
        "mlp_hidden",
    }
    for key, value in (arch or {}).items():
        if value is None:
            continue
        if key not in known:
            raise SparsescaleError(
                f"model {family!r} has no setting {key!r}; known: {', '.join(sorted(known))}"
            )
        resolved[key] = value
    return resolved


def _pattern_m(pattern: str | None) -> int:
    from sparsescale.sparsity.masks import parse_pattern

    nm = parse_pattern(pattern)
    return 1 if nm is None else nm[1]


def _make_config(family: str, arch: dict[str, Any], width: int, hidden: int):
    cls = config_class(family)
    return cls(**arch, width=width, n_heads=width // arch["head_dim"], mlp_hidden=hidden)


def min_n_nonzero(
    family: str, sparsity: float, pattern: str | None = None, arch: dict[str, Any] | None = None
) -> int:
    """The smallest N the family reaches: one attention head (width = head_dim,
    rounded up to a multiple of m) at the nominal MLP ratio."""
    arch = _resolve_arch(family, arch)
    m = _pattern_m(pattern)
    ratio, a, b = get_family(family).sizing_coeffs(arch)
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
    if any(arch.get(k) == "auto" for k in DEPTH_KEYS):
        depth = auto_depth(family, arch, n_nonzero / (1.0 - sparsity))
        arch.update({k: depth for k in DEPTH_KEYS if arch.get(k) == "auto"})
    floor = min_n_nonzero(family, sparsity, pattern, arch)
    if n_nonzero < floor:
        raise SparsescaleError(
            f"--params {n_nonzero} is below the {family} minimum of {floor} non-zeros at sparsity "
            f"{sparsity:g} "
            f"(its narrowest shape: width {math.lcm(arch['head_dim'], _pattern_m(pattern))}, depth "
            f"{next((arch[k] for k in DEPTH_KEYS if k in arch), '?')})"
        )
    m = _pattern_m(pattern)
    width_step = math.lcm(arch["head_dim"], m)
    hidden_step = math.lcm(4, m)
    ratio, a, b = get_family(family).sizing_coeffs(arch)
    dense_target = n_nonzero / (1.0 - sparsity)
    d0 = math.sqrt(dense_target / (a + b * ratio))

    # Candidate widths around the nominal one; the hidden size absorbs the rest.
    k0 = max(1, round(d0 / width_step))
    candidates = _candidates(
        range(max(1, k0 - 2), k0 + 3), width_step, hidden_step, a, b, dense_target, d0
    )
    if m > 1:
        # An n:m run is compared with the unstructured run at the same S and N:
        # keep its width whenever m allows, so that only the mask differs.
        d_u = plan_size(family, n_nonzero, sparsity, None, arch).width
        same = _candidates([d_u // width_step], width_step, hidden_step, a, b, dense_target, d0)
        if d_u % width_step == 0 and same and same[0][2] < N_TOLERANCE:
            candidates = same
    if not candidates:
        raise SparsescaleError(
            f"--params {n_nonzero}: no width that is a multiple of {width_step} (head_dim "
            f"{arch['head_dim']}"
            f"{f' and m={m} of --pattern {pattern}' if m > 1 else ''}) fits; ask for more "
            "non-zeros or a smaller m"
        )
    _, _, _, d, h = min(candidates)
    size = measure(family, _make_config(family, arch, d, h), n_nonzero, sparsity, pattern)
    if abs(size.n_nonzero / n_nonzero - 1.0) > N_TOLERANCE:
        raise SparsescaleError(
            f"--params {n_nonzero}: the closest {family} width allowed (a multiple of "
            f"{width_step}: head_dim "
            f"{arch['head_dim']}{f' and m={m} of --pattern {pattern}' if m > 1 else ''}) is {d}, "
            "which reaches "
            f"{size.n_nonzero} non-zeros, more than 5% off"
        )
    return size


def _candidates(
    ks, width_step: int, hidden_step: int, a: float, b: float, dense_target: float, d0: float
) -> list[tuple]:
    """(over 1% off, distance from the nominal width, error, width, hidden) per width
    k * width_step."""
    out = []
    for k in ks:
        d = k * width_step
        h = round((dense_target - a * d * d) / (b * d) / hidden_step) * hidden_step
        if k < 1 or h < hidden_step:
            continue
        error = abs((a * d * d + b * d * h) / dense_target - 1.0)
        # Within 1% any width will do: prefer the one closest to the nominal shape.
        out.append((error > 0.01, abs(math.log(d / d0)), error, d, h))
    return out


def measure(
    family: str,
    model_config: Any,
    target_n_nonzero: int,
    sparsity: float,
    pattern: str | None = None,
) -> SizePlan:
    """The counts a given shape reaches (a meta model: no memory)."""
    counts = count_params(build_model(family, model_config, device="meta"), sparsity, pattern)
    return SizePlan(
        family=family,
        model_config=model_config,
        target_n_nonzero=int(target_n_nonzero),
        sparsity=float(sparsity),
        pattern=pattern,
        **counts,
    )
