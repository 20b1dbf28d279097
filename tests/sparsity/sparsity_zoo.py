"""Seven models nobody here wrote, built tiny from their configs with random init.

Each entry gives the model, a loss on a fixed random batch, and `block_prefix`:
a regex on parameter names that marks "the Transformer block weights" as a
user of that library would point at them, independent of the pruner's rules.

timm's ViT imports torchvision at import time (timm/layers/create_norm.py), and
the torchvision wheels on PyPI are CUDA builds that do not load with the pinned
CPU torch; so both ViTs are hand-built here with the exact module structure of
timm's `VisionTransformer` (`blocks.N.attn.qkv`, `.attn.proj`, `.mlp.fc1/fc2`)
and torchvision's `vit_b_16` (`encoder.layers.encoder_layer_N`, an
`nn.MultiheadAttention` named `self_attention`, an `mlp` Sequential of Linears).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable

import pytest
import torch
from torch import nn

VOCAB = 96
WIDTH = 32


@dataclass
class Case:
    model: nn.Module
    loss: Callable[[nn.Module, int], torch.Tensor]  # (model, step) -> loss
    block_prefix: str


def _tokens(step: int, batch: int = 2, length: int = 12) -> torch.Tensor:
    gen = torch.Generator().manual_seed(100 + step)
    return torch.randint(0, VOCAB, (batch, length), generator=gen)


def _images(step: int) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(200 + step)
    return torch.randn(2, 3, 16, 16, generator=gen), torch.randint(0, 10, (2,), generator=gen)


def _hf_lm_loss(model: nn.Module, step: int) -> torch.Tensor:
    ids = _tokens(step)
    return model(input_ids=ids, labels=ids).loss


def gpt2() -> Case:
    transformers = pytest.importorskip("transformers")
    cfg = transformers.GPT2Config(
        vocab_size=VOCAB,
        n_positions=32,
        n_embd=WIDTH,
        n_layer=2,
        n_head=4,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
    )
    return Case(transformers.GPT2LMHeadModel(cfg), _hf_lm_loss, r"transformer\.h\.\d+\.")


def bert() -> Case:
    transformers = pytest.importorskip("transformers")
    cfg = transformers.BertConfig(
        vocab_size=VOCAB,
        hidden_size=WIDTH,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=32,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    return Case(transformers.BertForMaskedLM(cfg), _hf_lm_loss, r"bert\.encoder\.layer\.\d+\.")


def t5() -> Case:
    transformers = pytest.importorskip("transformers")
    cfg = transformers.T5Config(
        vocab_size=VOCAB,
        d_model=WIDTH,
        d_kv=8,
        d_ff=64,
        num_layers=2,
        num_decoder_layers=2,
        num_heads=4,
        relative_attention_num_buckets=8,
        dropout_rate=0.0,
        decoder_start_token_id=0,
    )

    def loss(model: nn.Module, step: int) -> torch.Tensor:
        ids = _tokens(step)
        return model(input_ids=ids, labels=_tokens(step + 1000, length=6)).loss

    return Case(
        transformers.T5ForConditionalGeneration(cfg), loss, r"(encoder|decoder)\.block\.\d+\."
    )


def llama() -> Case:
    transformers = pytest.importorskip("transformers")
    cfg = transformers.LlamaConfig(
        vocab_size=VOCAB,
        hidden_size=WIDTH,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=32,
    )
    return Case(transformers.LlamaForCausalLM(cfg), _hf_lm_loss, r"model\.layers\.\d+\.")


# ---- timm's VisionTransformer structure --------------------------------------
class TimmAttention(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.q_norm = nn.Identity()
        self.k_norm = nn.Identity()
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        x = nn.functional.scaled_dot_product_attention(self.q_norm(q), self.k_norm(k), v)
        return self.proj(x.transpose(1, 2).reshape(b, n, c))


class TimmMlp(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class TimmBlock(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = TimmAttention(dim, heads)
        self.ls1 = nn.Identity()
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = TimmMlp(dim, 4 * dim)
        self.ls2 = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.ls1(self.attn(self.norm1(x)))
        return x + self.ls2(self.mlp(self.norm2(x)))


class TimmPatchEmbed(nn.Module):
    def __init__(self, dim: int, patch: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(3, dim, patch, patch)
        self.norm = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.proj(x).flatten(2).transpose(1, 2))


class TimmViT(nn.Module):
    def __init__(
        self, dim: int = WIDTH, depth: int = 2, heads: int = 4, patch: int = 4, image: int = 16
    ) -> None:
        super().__init__()
        self.patch_embed = TimmPatchEmbed(dim, patch)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.randn(1, (image // patch) ** 2 + 1, dim) * 0.02)
        self.blocks = nn.Sequential(*[TimmBlock(dim, heads) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.head = nn.Linear(dim, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(x)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], 1) + self.pos_embed
        return self.head(self.norm(self.blocks(x))[:, 0])


# ---- torchvision's VisionTransformer structure --------------------------------
class TvMLPBlock(nn.Sequential):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__(
            nn.Linear(dim, hidden),
            nn.GELU(),
            nn.Dropout(0.0),
            nn.Linear(hidden, dim),
            nn.Dropout(0.0),
        )


class TvEncoderBlock(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(dim, eps=1e-6)
        self.self_attention = nn.MultiheadAttention(dim, heads, dropout=0.0, batch_first=True)
        self.dropout = nn.Dropout(0.0)
        self.ln_2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = TvMLPBlock(dim, 4 * dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.ln_1(x)
        x = x + self.dropout(self.self_attention(h, h, h, need_weights=False)[0])
        return x + self.mlp(self.ln_2(x))


class TvEncoder(nn.Module):
    def __init__(self, length: int, depth: int, dim: int, heads: int) -> None:
        super().__init__()
        self.pos_embedding = nn.Parameter(torch.empty(1, length, dim).normal_(std=0.02))
        self.dropout = nn.Dropout(0.0)
        self.layers = nn.Sequential(
            OrderedDict((f"encoder_layer_{i}", TvEncoderBlock(dim, heads)) for i in range(depth))
        )
        self.ln = nn.LayerNorm(dim, eps=1e-6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.ln(self.layers(self.dropout(x + self.pos_embedding)))


class TvViT(nn.Module):
    def __init__(
        self, dim: int = WIDTH, depth: int = 2, heads: int = 4, patch: int = 4, image: int = 16
    ) -> None:
        super().__init__()
        self.conv_proj = nn.Conv2d(3, dim, patch, patch)
        self.class_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.encoder = TvEncoder((image // patch) ** 2 + 1, depth, dim, heads)
        self.heads = nn.Sequential(OrderedDict(head=nn.Linear(dim, 10)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv_proj(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.class_token.expand(x.shape[0], -1, -1), x], 1)
        return self.heads(self.encoder(x)[:, 0])


def _image_loss(model: nn.Module, step: int) -> torch.Tensor:
    images, labels = _images(step)
    return nn.functional.cross_entropy(model(images), labels)


def timm_vit() -> Case:
    return Case(TimmViT(), _image_loss, r"blocks\.\d+\.")


def torchvision_vit() -> Case:
    return Case(TvViT(), _image_loss, r"encoder\.layers\.encoder_layer_\d+\.")


class EncoderLM(nn.Module):
    """nn.TransformerEncoder between a token embedding and a head."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(VOCAB, WIDTH)
        layer = nn.TransformerEncoderLayer(
            WIDTH, 4, dim_feedforward=64, dropout=0.0, batch_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, num_layers=2, enable_nested_tensor=False)
        self.head = nn.Linear(WIDTH, VOCAB)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(self.embed(ids)))


def transformer_encoder() -> Case:
    def loss(model: nn.Module, step: int) -> torch.Tensor:
        ids = _tokens(step)
        return nn.functional.cross_entropy(model(ids).reshape(-1, VOCAB), ids.flatten())

    return Case(EncoderLM(), loss, r"encoder\.layers\.\d+\.")


ZOO = {
    "gpt2": gpt2,
    "bert": bert,
    "t5": t5,
    "llama": llama,
    "timm_vit": timm_vit,
    "torchvision_vit": torchvision_vit,
    "transformer_encoder": transformer_encoder,
}


def build(name: str, seed: int = 0) -> Case:
    torch.manual_seed(seed)
    return ZOO[name]()
