"""A Hugging Face `transformers` Llama-style causal LM as a sparsescale family.

The model is built from a `LlamaConfig` (random init, nothing downloaded), sized
by N like the built-in families: the pruned set is the block linears
(q/k/v/o projections and the gated MLP's gate/up/down), found by
`select_prunable` because they live under the numbered `layers` ModuleList, so
dense block parameters are 4 d^2 + 3 d h per layer at width d, MLP hidden h.
Data, batches and budget are the GPT family's (next-token prediction on the
same corpus), so the two are directly comparable.

Needs the optional extra: pip install 'sparsescale[hf]'.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from sparsescale.errors import SparsescaleError


@dataclass
class LlamaLMConfig:
    vocab_size: int = 256
    seq_len: int = 64
    depth: int = 2
    head_dim: int = 16
    width: int = 64
    n_heads: int = 4
    mlp_hidden: int = 176
    rope_theta: float = 10000.0


def _transformers():
    try:
        import transformers
    except ImportError:
        raise SparsescaleError(
            "family 'hf-llama' needs the transformers package: pip install 'sparsescale[hf]'"
        ) from None
    return transformers


class LlamaLM(nn.Module):
    """LlamaForCausalLM with sparsescale's model contract: forward(idx, targets)
    -> (logits, loss)."""

    def __init__(self, cfg: LlamaLMConfig):
        super().__init__()
        tf = _transformers()
        hf_config = tf.LlamaConfig(
            vocab_size=cfg.vocab_size,
            hidden_size=cfg.width,
            intermediate_size=cfg.mlp_hidden,
            num_hidden_layers=cfg.depth,
            num_attention_heads=cfg.n_heads,
            num_key_value_heads=cfg.n_heads,
            head_dim=cfg.head_dim,
            max_position_embeddings=cfg.seq_len,
            rope_theta=cfg.rope_theta,
            tie_word_embeddings=False,
            attention_bias=False,
            mlp_bias=False,
            use_cache=False,
        )
        hf_config._attn_implementation = "sdpa"
        self.lm = tf.LlamaForCausalLM(hf_config)

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None):
        logits = self.lm(input_ids=idx, use_cache=False).logits
        loss = (
            None
            if targets is None
            else F.cross_entropy(logits.flatten(0, 1).float(), targets.flatten())
        )
        return logits, loss
