"""Activation checkpointing for any family: recompute each block in the backward pass.

A Transformer's activation memory grows with depth x batch x context; keeping
only each block's input and recomputing its inside during the backward pass
trades about one more forward pass (~1/3 more compute) for that memory. The
blocks are found as the elements of the model's `nn.ModuleList`s, which is how
every built-in family (and Hugging Face's decoders) holds them, so no family
needs its own code. The recomputation repeats the same arithmetic: losses and
gradients equal those without it (tests/train/test_scale.py).
"""

from __future__ import annotations

import torch
import torch.nn as nn
from torch.utils.checkpoint import checkpoint


def recompute_blocks(model: nn.Module) -> int:
    """Wrap the forward of every element of every nn.ModuleList in `model` in
    torch.utils.checkpoint (non-reentrant: keyword arguments and blocks whose
    inputs need no gradient work). Returns how many blocks were wrapped."""
    blocks = [block for lst in model.modules() if isinstance(lst, nn.ModuleList) for block in lst]
    for block in blocks:
        inner = block.forward

        def forward(*args, _inner=inner, **kwargs):
            if not torch.is_grad_enabled():  # evaluation: nothing to save, nothing to recompute
                return _inner(*args, **kwargs)
            return checkpoint(_inner, *args, use_reentrant=False, **kwargs)

        block.forward = forward
    return len(blocks)
