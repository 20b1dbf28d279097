"""A tiny byte-level Transformer built from torch.nn, and real text to train it on."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
from torch import nn

# The real-text reader and the small Llama pruning loop live beside the benchmark that shares them.
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import llama_bytes  # noqa: E402


class Block(nn.Module):
    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(width)
        self.q = nn.Linear(width, width, bias=False)
        self.k = nn.Linear(width, width, bias=False)
        self.v = nn.Linear(width, width, bias=False)
        self.o = nn.Linear(width, width, bias=False)
        self.norm2 = nn.LayerNorm(width)
        self.mlp_in = nn.Linear(width, 4 * width)
        self.mlp_out = nn.Linear(4 * width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, length, width = x.shape
        h = self.norm1(x)

        def split(t: torch.Tensor) -> torch.Tensor:
            return t.view(batch, length, self.heads, width // self.heads).transpose(1, 2)

        att = nn.functional.scaled_dot_product_attention(
            split(self.q(h)), split(self.k(h)), split(self.v(h)), is_causal=True
        )
        x = x + self.o(att.transpose(1, 2).reshape(batch, length, width))
        return x + self.mlp_out(nn.functional.gelu(self.mlp_in(self.norm2(x))))


class TinyTransformer(nn.Module):
    """Byte-level causal LM: embedding, blocks in a ModuleList, norm, untied head."""

    def __init__(
        self, width: int = 32, depth: int = 2, heads: int = 4, context: int = 64, vocab: int = 256
    ):
        super().__init__()
        self.embed = nn.Embedding(vocab, width)
        self.pos = nn.Parameter(torch.randn(context, width) * 0.02)
        self.blocks = nn.ModuleList(Block(width, heads) for _ in range(depth))
        self.norm = nn.LayerNorm(width)
        self.head = nn.Linear(width, vocab, bias=False)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x = self.embed(tokens) + self.pos[: tokens.shape[1]]
        for block in self.blocks:
            x = block(x)
        return self.head(self.norm(x))


def lm_loss(model: nn.Module, tokens: torch.Tensor) -> torch.Tensor:
    logits = model(tokens[:, :-1])
    return nn.functional.cross_entropy(
        logits.reshape(-1, logits.shape[-1]), tokens[:, 1:].reshape(-1)
    )


def text_bytes(limit: int = 400_000) -> tuple[torch.Tensor, str]:
    """Real text as bytes (llama_bytes.text_bytes); the test skips when too little is installed."""
    data, source = llama_bytes.text_bytes(limit)
    if len(data) < 10_000:
        pytest.skip(f"not enough real text found ({source}: {len(data)} bytes)")
    return data, source


def batches(data: torch.Tensor, batch: int, length: int, step: int, seed: int = 0) -> torch.Tensor:
    """Deterministic random windows for `step`, independent of what ran before."""
    gen = torch.Generator().manual_seed(seed * 1_000_003 + step)
    starts = torch.randint(0, len(data) - length - 1, (batch,), generator=gen)
    return torch.stack([data[s : s + length + 1] for s in starts.tolist()])
