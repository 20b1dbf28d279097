"""A T5.1.1-style encoder-decoder, readable top to bottom.

RMSNorm pre-norm blocks, a bucketed relative position bias (one table per
stack, shared by its layers, as in T5), GeGLU MLPs, no biases, no dropout and
an untied output head. The encoder and decoder share the input token
embedding. It trains on span corruption (see data/span_corruption.py).

Pruned set (block linears): encoder.blocks.<i>.{attn.qkv, attn.proj,
mlp.fc_in, mlp.fc_out} and decoder.blocks.<i>.{attn.*, cross.q, cross.kv,
cross.proj, mlp.*}; the embedding, the relative-bias tables and the head are not.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from sparsescale.models.gpt import RMSNorm


@dataclass
class T5Config:
    vocab_size: int = 256 + 2 + 100  # bytes + pad/eos + sentinels (data/span_corruption.py)
    enc_depth: int = 2
    dec_depth: int = 2
    width: int = 128
    head_dim: int = 16
    n_heads: int = 8
    mlp_hidden: int = 344  # per GeGLU branch; ~8/3 width keeps 12 d^2 per encoder layer
    rel_buckets: int = 32
    rel_max_distance: int = 128


def relative_bucket(
    rel: torch.Tensor, bidirectional: bool, n_buckets: int, max_distance: int
) -> torch.Tensor:
    """Map key_pos - query_pos to a bucket: exact for small distances, then
    logarithmically wider buckets up to max_distance (T5's scheme)."""
    bucket = torch.zeros_like(rel)
    if bidirectional:
        n_buckets //= 2
        bucket = (rel > 0).long() * n_buckets
        dist = rel.abs()
    else:
        dist = (-rel).clamp(min=0)  # a causal decoder only sees the past
    exact = n_buckets // 2
    log_ratio = torch.log(dist.float().clamp(min=1) / exact) / math.log(max_distance / exact)
    far = (exact + (log_ratio * (n_buckets - exact)).long()).clamp(max=n_buckets - 1)
    return bucket + torch.where(dist < exact, dist, far)


class RelativePositionBias(nn.Module):
    def __init__(self, cfg: T5Config, bidirectional: bool):
        super().__init__()
        self.bidirectional = bidirectional
        self.n_buckets, self.max_distance = cfg.rel_buckets, cfg.rel_max_distance
        self.table = nn.Embedding(cfg.rel_buckets, cfg.n_heads)

    def forward(self, q_len: int, k_len: int) -> torch.Tensor:
        """Additive attention bias of shape (1, heads, q_len, k_len)."""
        device = self.table.weight.device
        rel = (
            torch.arange(k_len, device=device)[None, :]
            - torch.arange(q_len, device=device)[:, None]
        )
        buckets = relative_bucket(rel, self.bidirectional, self.n_buckets, self.max_distance)
        bias = self.table(buckets).permute(2, 0, 1).unsqueeze(0)
        if not self.bidirectional:
            causal = torch.ones(q_len, k_len, dtype=torch.bool, device=device).tril()
            bias = bias.masked_fill(~causal, float("-inf"))
        return bias


class SelfAttention(nn.Module):
    def __init__(self, cfg: T5Config):
        super().__init__()
        self.n_heads, self.head_dim = cfg.n_heads, cfg.head_dim
        inner = cfg.n_heads * cfg.head_dim
        self.qkv = nn.Linear(cfg.width, 3 * inner, bias=False)
        self.proj = nn.Linear(inner, cfg.width, bias=False)

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        B, T, _ = x.shape
        q, k, v = self.qkv(x).view(B, T, 3, self.n_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=bias.to(q.dtype))
        return self.proj(y.transpose(1, 2).reshape(B, T, -1))


class CrossAttention(nn.Module):
    def __init__(self, cfg: T5Config):
        super().__init__()
        self.n_heads, self.head_dim = cfg.n_heads, cfg.head_dim
        inner = cfg.n_heads * cfg.head_dim
        self.q = nn.Linear(cfg.width, inner, bias=False)
        self.kv = nn.Linear(cfg.width, 2 * inner, bias=False)
        self.proj = nn.Linear(inner, cfg.width, bias=False)

    def forward(self, x: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
        B, T, _ = x.shape
        S = memory.shape[1]
        q = self.q(x).view(B, T, self.n_heads, self.head_dim).transpose(1, 2)
        k, v = self.kv(memory).view(B, S, 2, self.n_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        y = F.scaled_dot_product_attention(q, k, v)
        return self.proj(y.transpose(1, 2).reshape(B, T, -1))


class GeGLU(nn.Module):
    def __init__(self, cfg: T5Config):
        super().__init__()
        self.fc_in = nn.Linear(cfg.width, 2 * cfg.mlp_hidden, bias=False)
        self.fc_out = nn.Linear(cfg.mlp_hidden, cfg.width, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        value, gate = self.fc_in(x).chunk(2, dim=-1)
        return self.fc_out(value * F.gelu(gate, approximate="tanh"))


class EncoderBlock(nn.Module):
    def __init__(self, cfg: T5Config):
        super().__init__()
        self.norm1, self.attn = RMSNorm(cfg.width), SelfAttention(cfg)
        self.norm2, self.mlp = RMSNorm(cfg.width), GeGLU(cfg)

    def forward(self, x, bias):
        x = x + self.attn(self.norm1(x), bias)
        return x + self.mlp(self.norm2(x))


class DecoderBlock(nn.Module):
    def __init__(self, cfg: T5Config):
        super().__init__()
        self.norm1, self.attn = RMSNorm(cfg.width), SelfAttention(cfg)
        self.norm2, self.cross = RMSNorm(cfg.width), CrossAttention(cfg)
        self.norm3, self.mlp = RMSNorm(cfg.width), GeGLU(cfg)

    def forward(self, x, bias, memory):
        x = x + self.attn(self.norm1(x), bias)
        x = x + self.cross(self.norm2(x), memory)
        return x + self.mlp(self.norm3(x))


class Encoder(nn.Module):
    def __init__(self, cfg: T5Config):
        super().__init__()
        self.rel_bias = RelativePositionBias(cfg, bidirectional=True)
        self.blocks = nn.ModuleList(EncoderBlock(cfg) for _ in range(cfg.enc_depth))
        self.norm_f = RMSNorm(cfg.width)

    def forward(self, x):
        bias = self.rel_bias(x.shape[1], x.shape[1])
        for block in self.blocks:
            x = block(x, bias)
        return self.norm_f(x)


class Decoder(nn.Module):
    def __init__(self, cfg: T5Config):
        super().__init__()
        self.rel_bias = RelativePositionBias(cfg, bidirectional=False)
        self.blocks = nn.ModuleList(DecoderBlock(cfg) for _ in range(cfg.dec_depth))
        self.norm_f = RMSNorm(cfg.width)

    def forward(self, x, memory):
        bias = self.rel_bias(x.shape[1], x.shape[1])
        for block in self.blocks:
            x = block(x, bias, memory)
        return self.norm_f(x)


class T5(nn.Module):
    def __init__(self, cfg: T5Config):
        super().__init__()
        self.cfg = cfg
        self.tok_emb = nn.Embedding(cfg.vocab_size, cfg.width)
        self.encoder = Encoder(cfg)
        self.decoder = Decoder(cfg)
        self.head = nn.Linear(cfg.width, cfg.vocab_size, bias=False)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        n_layers = self.cfg.enc_depth + self.cfg.dec_depth
        # Nothing starts at exactly zero (AdaFactor's step scales with the parameter RMS).
        for name, p in self.named_parameters():
            if p.dim() >= 2:
                std = (
                    0.02 / math.sqrt(2 * n_layers)
                    if name.endswith("proj.weight") or name.endswith("fc_out.weight")
                    else 0.02
                )
                nn.init.normal_(p, mean=0.0, std=std)

    def forward(
        self, enc_ids: torch.Tensor, dec_ids: torch.Tensor, targets: torch.Tensor | None = None
    ):
        """enc_ids: (B, S) corrupted input; dec_ids: (B, T) targets shifted right
        (first token PAD); targets: (B, T). Returns (logits, mean CE or None)."""
        memory = self.encoder(self.tok_emb(enc_ids))
        logits = self.head(self.decoder(self.tok_emb(dec_ids), memory))
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.view(-1, logits.shape[-1]).float(), targets.reshape(-1))
        return logits, loss
