"""A decoder-only language model, small enough to read in one sitting.

Pre-norm blocks (RMSNorm), causal self-attention through
F.scaled_dot_product_attention, a GeLU or GeGLU MLP, learned or rotary
positions and an untied output head. No biases, no dropout (the paper trains
with dropout 0).

Parameter names matter: the pruner selects every 2-D Linear weight inside
`blocks.<i>.`, so the block linears (attn.qkv, attn.proj, mlp.fc_in,
mlp.fc_out) are the pruned set, and tok_emb / pos_emb / head are not.
q, k and v share one Linear because one (3d x d) matmul is much faster on a
CPU than three small ones.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass
class GPTConfig:
    vocab_size: int = 256
    seq_len: int = 128
    depth: int = 2
    width: int = 128  # residual stream d_model
    head_dim: int = 32
    n_heads: int = 4  # attention inner width is n_heads * head_dim
    mlp_hidden: int = 512  # hidden units (per branch for GeGLU)
    mlp: str = "gelu"  # "gelu" | "geglu"
    pos: str = "learned"  # "learned" | "rope"


class RMSNorm(nn.Module):
    def __init__(self, width: int, eps: float = 1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(width))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.rms_norm(x, (x.shape[-1],), self.weight, self.eps)


def rope_tables(
    seq_len: int, head_dim: int, base: float = 10000.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """cos/sin tables of shape (seq_len, head_dim/2) for rotary positions."""
    inv_freq = 1.0 / base ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim)
    angles = torch.outer(torch.arange(seq_len, dtype=torch.float32), inv_freq)
    return angles.cos(), angles.sin()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate pairs (first half, second half) of the last dim; x is (B, H, T, hd)."""
    half = x.shape[-1] // 2
    x1, x2 = x[..., :half], x[..., half:]
    cos, sin = cos[: x.shape[-2]].to(x.dtype), sin[: x.shape[-2]].to(x.dtype)
    return torch.cat((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1)


class CausalSelfAttention(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.n_heads, self.head_dim = cfg.n_heads, cfg.head_dim
        inner = cfg.n_heads * cfg.head_dim
        self.qkv = nn.Linear(cfg.width, 3 * inner, bias=False)
        self.proj = nn.Linear(inner, cfg.width, bias=False)

    def forward(
        self, x: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor] | None
    ) -> torch.Tensor:
        B, T, _ = x.shape
        q, k, v = self.qkv(x).view(B, T, 3, self.n_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        if rope is not None:
            q, k = apply_rope(q, *rope), apply_rope(k, *rope)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.proj(y.transpose(1, 2).reshape(B, T, self.n_heads * self.head_dim))


class MLP(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.gated = cfg.mlp == "geglu"
        # GeGLU's gate and value branches share one Linear (one larger matmul).
        self.fc_in = nn.Linear(cfg.width, (2 if self.gated else 1) * cfg.mlp_hidden, bias=False)
        self.fc_out = nn.Linear(cfg.mlp_hidden, cfg.width, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.fc_in(x)
        if self.gated:
            value, gate = h.chunk(2, dim=-1)
            h = value * F.gelu(gate, approximate="tanh")
        else:
            h = F.gelu(h, approximate="tanh")
        return self.fc_out(h)


class Block(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.norm1 = RMSNorm(cfg.width)
        self.attn = CausalSelfAttention(cfg)
        self.norm2 = RMSNorm(cfg.width)
        self.mlp = MLP(cfg)

    def forward(self, x: torch.Tensor, rope) -> torch.Tensor:
        x = x + self.attn(self.norm1(x), rope)
        return x + self.mlp(self.norm2(x))


class GPT(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        if cfg.mlp not in ("gelu", "geglu"):
            raise ValueError(f"mlp must be 'gelu' or 'geglu', not {cfg.mlp!r}")
        if cfg.pos not in ("learned", "rope"):
            raise ValueError(f"pos must be 'learned' or 'rope', not {cfg.pos!r}")
        self.cfg = cfg
        self.tok_emb = nn.Embedding(cfg.vocab_size, cfg.width)
        self.pos_emb = nn.Embedding(cfg.seq_len, cfg.width) if cfg.pos == "learned" else None
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.depth))
        self.norm_f = RMSNorm(cfg.width)
        self.head = nn.Linear(cfg.width, cfg.vocab_size, bias=False)
        if cfg.pos == "rope":
            cos, sin = rope_tables(cfg.seq_len, cfg.head_dim)
            self.register_buffer("rope_cos", cos, persistent=False)
            self.register_buffer("rope_sin", sin, persistent=False)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """GPT-2 style init; residual output projections are scaled down by
        sqrt(2 * depth) so the residual stream does not grow with depth."""
        for name, p in self.named_parameters():
            if p.dim() < 2:
                continue
            std = 0.02
            if name.endswith("attn.proj.weight") or name.endswith("mlp.fc_out.weight"):
                std = 0.02 / math.sqrt(2 * self.cfg.depth)
            nn.init.normal_(p, mean=0.0, std=std)

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None):
        """idx: (B, T) token ids. Returns (logits, mean cross-entropy or None)."""
        T = idx.shape[1]
        x = self.tok_emb(idx)
        if self.pos_emb is not None:
            x = x + self.pos_emb.weight[:T]
        rope = (self.rope_cos, self.rope_sin) if self.cfg.pos == "rope" else None
        for block in self.blocks:
            x = block(x, rope)
        logits = self.head(self.norm_f(x))
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.view(-1, logits.shape[-1]).float(), targets.reshape(-1))
        return logits, loss
