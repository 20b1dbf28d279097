"""A Vision Transformer classifier, readable top to bottom.

Images are cut into non-overlapping patches, each flattened and projected to
the width (`patch_embed`), plus learned positions and an optional [CLS]
token. Pre-norm (RMSNorm) bidirectional blocks with a GeLU MLP; the class
logits come from the [CLS] output or the mean over patches.

Pruned set (block linears): blocks.<i>.{attn.qkv, attn.proj, mlp.fc_in,
mlp.fc_out}; patch_embed, pos_emb, cls_token and head are not.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from sparsescale.models.gpt import RMSNorm


@dataclass
class ViTConfig:
    image_size: int = 28
    channels: int = 1
    patch: int = 7
    n_classes: int = 10
    depth: int = 4
    width: int = 64
    head_dim: int = 16
    n_heads: int = 4
    mlp_hidden: int = 256
    pool: str = "cls"  # "cls" | "mean"

    @property
    def n_patches(self) -> int:
        return (self.image_size // self.patch) ** 2


class Attention(nn.Module):
    def __init__(self, cfg: ViTConfig):
        super().__init__()
        self.n_heads, self.head_dim = cfg.n_heads, cfg.head_dim
        inner = cfg.n_heads * cfg.head_dim
        self.qkv = nn.Linear(cfg.width, 3 * inner, bias=False)
        self.proj = nn.Linear(inner, cfg.width, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, _ = x.shape
        q, k, v = self.qkv(x).view(B, T, 3, self.n_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        y = F.scaled_dot_product_attention(q, k, v)
        return self.proj(y.transpose(1, 2).reshape(B, T, -1))


class MLP(nn.Module):
    def __init__(self, cfg: ViTConfig):
        super().__init__()
        self.fc_in = nn.Linear(cfg.width, cfg.mlp_hidden, bias=False)
        self.fc_out = nn.Linear(cfg.mlp_hidden, cfg.width, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc_out(F.gelu(self.fc_in(x), approximate="tanh"))


class Block(nn.Module):
    def __init__(self, cfg: ViTConfig):
        super().__init__()
        self.norm1, self.attn = RMSNorm(cfg.width), Attention(cfg)
        self.norm2, self.mlp = RMSNorm(cfg.width), MLP(cfg)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class ViT(nn.Module):
    def __init__(self, cfg: ViTConfig):
        super().__init__()
        if cfg.image_size % cfg.patch:
            raise ValueError(f"patch {cfg.patch} does not divide image size {cfg.image_size}")
        if cfg.pool not in ("cls", "mean"):
            raise ValueError(f"pool must be 'cls' or 'mean', not {cfg.pool!r}")
        self.cfg = cfg
        self.patch_embed = nn.Linear(cfg.channels * cfg.patch * cfg.patch, cfg.width, bias=False)
        n_tokens = cfg.n_patches + (1 if cfg.pool == "cls" else 0)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, cfg.width)) if cfg.pool == "cls" else None
        self.pos_emb = nn.Parameter(torch.zeros(1, n_tokens, cfg.width))
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.depth))
        self.norm_f = RMSNorm(cfg.width)
        self.head = nn.Linear(cfg.width, cfg.n_classes, bias=False)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # Nothing starts at exactly zero: AdaFactor scales each update by the
        # parameter's RMS (floored at 1e-3), so a zero tensor would barely move.
        for name, p in self.named_parameters():
            if p.dim() >= 2:
                std = (
                    0.02 / math.sqrt(2 * self.cfg.depth)
                    if name.endswith(("proj.weight", "fc_out.weight"))
                    else 0.02
                )
                nn.init.normal_(p, mean=0.0, std=std)

    def patchify(self, images: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, n_patches, C*p*p), patches in row-major order."""
        B, C, H, W = images.shape
        p = self.cfg.patch
        x = images.reshape(B, C, H // p, p, W // p, p).permute(0, 2, 4, 1, 3, 5)
        return x.reshape(B, (H // p) * (W // p), C * p * p)

    def forward(self, images: torch.Tensor, labels: torch.Tensor | None = None):
        """images: (B, C, H, W) floats; labels: (B,) ints. Returns (logits, mean CE or None)."""
        x = self.patch_embed(self.patchify(images))
        if self.cls_token is not None:
            x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1)
        x = x + self.pos_emb
        for block in self.blocks:
            x = block(x)
        x = self.norm_f(x)
        pooled = x[:, 0] if self.cfg.pool == "cls" else x.mean(dim=1)
        logits = self.head(pooled)
        loss = F.cross_entropy(logits.float(), labels) if labels is not None else None
        return logits, loss
