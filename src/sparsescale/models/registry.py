"""The family registry: everything that differs between model families, in one place.

A `Family` is a small dataclass of plain values and functions: the config and
model classes, the unit its data budget is counted in, its data (capacity,
loader, the shape settings the data decides), its loss, the FLOP count of the
pruned layers, its sizing rule and its defaults. The rest of the package asks
`get_family(name)` and never branches on a family's name.

Adding a family is one module that builds a `Family`, plus either an entry in
`FAMILIES` or nothing at all: a run or a sweep spec may name
`"package.module:attribute"`, imported when the run is planned.

Importing this module does not import torch (RunConfig validation uses it);
the built-in entries import their models and loaders lazily.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, Callable

from sparsescale.errors import SparsescaleError
from sparsescale.plugins import load_attribute

DATA_UNITS = ("tokens", "examples")  # what a family counts its data in
BUDGET_AXES = (*DATA_UNITS, "steps")  # a run's data budget: one of these


def default_loss(model, batch) -> Any:
    """The built-in models return (output, mean loss) from forward(*batch)."""
    return model(*batch)[1]


@dataclass(frozen=True)
class Family:
    """One model family. Functions take plain arguments so that a family defined
    outside the package needs nothing but this dataclass."""

    name: str
    data_unit: str  # "tokens" or "examples"
    config_class: Callable[[], type]  # -> the model config dataclass
    model_class: Callable[[], type]  # -> nn.Module taking (config)
    default_arch: dict[str, Any]  # the fixed shape; width is sized
    # (nominal mlp_hidden/width, a, b): dense block params = a d^2 + b d h at width d, hidden h
    sizing_coeffs: Callable[[dict[str, Any]], tuple[float, float, float]]
    # (training examples available, data handle) for a run config
    load_data: Callable[[Any], tuple[int, Any]]
    # the shape settings the data decides (vocabulary, image size ...)
    data_arch: Callable[[Any], dict[str, Any]]
    # loader(data, seq_len, batch, steps, seed, rank, world) with .get(step) and .validation(n,
    # batch)
    make_batches: Callable[..., Any]
    # dense multiply-adds of the pruned linears per example: (prunable tensors by name, config,
    # seq_len)
    block_macs: Callable[[dict[str, Any], Any, int | None], int]
    # the run settings (depth, head_dim ...) as this family's config fields
    arch_from_run: Callable[[Any], dict[str, Any]]
    defaults: dict[str, Any] = field(
        default_factory=dict
    )  # batch, seq_len for unset RunConfig fields
    loss: Callable[[Any, Any], Any] = default_loss

    def __post_init__(self) -> None:
        if self.data_unit not in DATA_UNITS:
            raise SparsescaleError(
                f"family {self.name!r}: data_unit must be one of {', '.join(DATA_UNITS)}, "
                f"got {self.data_unit!r}"
            )

    def tokens_per_example(self, seq_len: int | None) -> int:
        """Budget units one example counts for: its tokens, or 1 for an image."""
        return int(seq_len) if self.data_unit == "tokens" else 1

    def build(self, model_config: Any, device: str = "cpu"):
        """The model on `device` ("meta": shapes only, no memory)."""
        import torch

        with torch.device(device):
            return self.model_class()(model_config)


# ---- built-in families ---------------------------------------------------------
def _text_data(cfg) -> tuple[int, Any]:
    from sparsescale.data.corpus import load_corpus

    return load_corpus(cfg.corpus, cfg.tokenizer, cfg.vocab_size, cfg.text_column)


def _gpt_data(cfg) -> tuple[int, Any]:
    from sparsescale.data.loaders import lm_capacity

    corpus = _text_data(cfg)
    return lm_capacity(corpus, cfg.resolved("seq_len")), corpus


def _t5_data(cfg) -> tuple[int, Any]:
    from sparsescale.data.loaders import t5_capacity

    corpus = _text_data(cfg)
    return t5_capacity(corpus, cfg.resolved("seq_len")), corpus


def _vit_data(cfg) -> tuple[int, Any]:
    from sparsescale.data.images import load_images

    data = load_images(cfg.corpus)
    return len(data.train_labels), data


def _t5_vocab(data) -> dict[str, Any]:
    from sparsescale.data.span_corruption import SpecialIds

    return {"vocab_size": SpecialIds(data.vocab_size).vocab_size}  # + sentinels and specials


def _vit_image(data) -> dict[str, Any]:
    h, w, c = data.image_shape
    if h != w:
        raise SparsescaleError(f"corpus {data.source}: images must be square, got {h}x{w}")
    return {"image_size": h, "channels": c, "n_classes": data.n_classes}


def _lm_batches(data, seq_len, batch, steps, seed, rank, world):
    from sparsescale.data.loaders import LMBatches

    return LMBatches(data, seq_len, batch, steps, seed, rank, world)


def _t5_batches(data, seq_len, batch, steps, seed, rank, world):
    from sparsescale.data.loaders import T5Batches

    return T5Batches(data, seq_len, batch, steps, seed, rank, world)


def _image_batches(data, seq_len, batch, steps, seed, rank, world):
    from sparsescale.data.loaders import ImageBatches

    return ImageBatches(data, batch, steps, seed, rank, world)


def _sum(prunable: dict[str, Any], keep: Callable[[str], bool] = lambda name: True) -> int:
    return sum(p.numel() for name, p in prunable.items() if keep(name))


def _t5_macs(prunable, model_config, seq_len) -> int:
    from sparsescale.data.span_corruption import corrupted_lengths

    enc_len, dec_len = corrupted_lengths(seq_len)
    enc = _sum(prunable, lambda k: k.startswith("encoder."))
    dec = _sum(prunable, lambda k: k.startswith("decoder."))
    # cross-attention keys/values run over the encoder output, not the decoder's
    kv = _sum(prunable, lambda k: k.startswith("decoder.") and ".cross.kv." in k)
    return enc_len * enc + dec_len * (dec - kv) + enc_len * kv


def _vit_macs(prunable, model_config, seq_len) -> int:
    n_tokens = model_config.n_patches + (1 if model_config.pool == "cls" else 0)
    return n_tokens * _sum(prunable)


def _gpt_sizing(arch) -> tuple[float, float, float]:
    # the paper's 12 d^2 per layer: 4 d^2 attention + 8 d^2 MLP (a gated MLP: 3 matrices at 8/3 d)
    gated = arch["mlp"] == "geglu"
    return (8 / 3 if gated else 4.0), 4.0 * arch["depth"], (3.0 if gated else 2.0) * arch["depth"]


def _t5_sizing(arch) -> tuple[float, float, float]:
    enc, dec = arch["enc_depth"], arch["dec_depth"]
    return 8 / 3, 4.0 * enc + 8.0 * dec, 3.0 * (enc + dec)  # decoder layers add cross-attention


def _vit_sizing(arch) -> tuple[float, float, float]:
    return 4.0, 4.0 * arch["depth"], 2.0 * arch["depth"]


def _gpt_arch(cfg) -> dict[str, Any]:
    return {
        "depth": cfg.depth,
        "head_dim": cfg.head_dim,
        "mlp": cfg.mlp,
        "pos": cfg.pos,
        "seq_len": cfg.resolved("seq_len"),
    }


def _t5_arch(cfg) -> dict[str, Any]:
    return {"enc_depth": cfg.depth, "dec_depth": cfg.depth, "head_dim": cfg.head_dim}


def _vit_arch(cfg) -> dict[str, Any]:
    return {"depth": cfg.depth, "head_dim": cfg.head_dim}


def _lazy(module: str, attr: str) -> Callable[[], type]:
    return lambda: getattr(importlib.import_module(module), attr)


FAMILIES: dict[str, Family] = {
    "gpt": Family(
        name="gpt",
        data_unit="tokens",
        config_class=_lazy("sparsescale.models.gpt", "GPTConfig"),
        model_class=_lazy("sparsescale.models.gpt", "GPT"),
        default_arch={
            "depth": 2,
            "head_dim": 16,
            "mlp": "gelu",
            "pos": "learned",
            "seq_len": 64,
            "vocab_size": 256,
        },
        sizing_coeffs=_gpt_sizing,
        load_data=_gpt_data,
        data_arch=lambda data: {"vocab_size": data.vocab_size},
        make_batches=_lm_batches,
        block_macs=lambda prunable, mc, seq_len: seq_len * _sum(prunable),
        arch_from_run=_gpt_arch,
        # 32 x 64: same tokens/s as 64 x 64 on CPU, twice the steps, lower loss per token
        defaults={"batch": 32, "seq_len": 64},
    ),
    "t5": Family(
        name="t5",
        data_unit="tokens",
        config_class=_lazy("sparsescale.models.t5", "T5Config"),
        model_class=_lazy("sparsescale.models.t5", "T5"),
        default_arch={"enc_depth": 2, "dec_depth": 2, "head_dim": 16, "vocab_size": 256 + 2 + 100},
        sizing_coeffs=_t5_sizing,
        load_data=_t5_data,
        data_arch=_t5_vocab,
        make_batches=_t5_batches,
        block_macs=_t5_macs,
        arch_from_run=_t5_arch,
        defaults={"batch": 32, "seq_len": 64},
    ),
    "vit": Family(
        name="vit",
        data_unit="examples",
        config_class=_lazy("sparsescale.models.vit", "ViTConfig"),
        model_class=_lazy("sparsescale.models.vit", "ViT"),
        default_arch={
            "depth": 4,
            "head_dim": 16,
            "image_size": 28,
            "channels": 1,
            "patch": 7,
            "n_classes": 10,
            "pool": "cls",
        },
        sizing_coeffs=_vit_sizing,
        load_data=_vit_data,
        data_arch=_vit_image,
        make_batches=_image_batches,
        block_macs=_vit_macs,
        arch_from_run=_vit_arch,
        defaults={"batch": 128, "seq_len": None},
    ),
    # Proof that the registry is open: a Hugging Face transformers model, on the GPT data.
    # Needs the optional extra `hf`.
    "hf-llama": Family(
        name="hf-llama",
        data_unit="tokens",
        config_class=_lazy("sparsescale.models.hf", "LlamaLMConfig"),
        model_class=_lazy("sparsescale.models.hf", "LlamaLM"),
        default_arch={"depth": 2, "head_dim": 16, "seq_len": 64, "vocab_size": 256},
        sizing_coeffs=lambda arch: (
            8 / 3,
            4.0 * arch["depth"],
            3.0 * arch["depth"],
        ),  # q k v o + gate up down
        load_data=_gpt_data,
        data_arch=lambda data: {"vocab_size": data.vocab_size},
        make_batches=_lm_batches,
        block_macs=lambda prunable, mc, seq_len: seq_len * _sum(prunable),
        arch_from_run=lambda cfg: {
            "depth": cfg.depth,
            "head_dim": cfg.head_dim,
            "seq_len": cfg.resolved("seq_len"),
        },
        defaults={"batch": 32, "seq_len": 64},
    ),
}

_HINT = "name your own as package.module:attribute"


def family_names() -> str:
    return ", ".join(FAMILIES)


def get_family(name: str) -> Family:
    """The family called `name`: a built-in, or "package.module:attribute" naming
    a Family, imported on first use. Raises SparsescaleError naming `name`."""
    if name in FAMILIES:
        return FAMILIES[name]
    if not isinstance(name, str) or ":" not in name:
        raise SparsescaleError(f"unknown family {name!r} (choose {family_names()}, or {_HINT})")
    found = load_attribute(name, "family", Family, f"choose {family_names()}, or {_HINT}")
    FAMILIES[name] = found
    return found
