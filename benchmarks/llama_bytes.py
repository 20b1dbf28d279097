"""A small Llama pruned while it learns real text as bytes.

The shared setup of adafactor_init_bench.py and of tests/sparsity (which put
this folder on sys.path): the same text, the same model and the same pruning
loop, so the benchmark and the test check one thing. It is not a benchmark
itself: run as a script (as `make bench` does) it does nothing.
"""

from __future__ import annotations

import pathlib
import sysconfig
from typing import Callable

import torch

from sparsescale.sparsity import GradualPruner

LINUX_DOC = pathlib.Path("/usr/share/doc/linux-doc-6.1/html/_sources")


def text_bytes(limit: int) -> tuple[torch.Tensor, str]:
    """Up to `limit` bytes of real text and where they came from: the kernel
    docs' reST sources, else the stdlib's Python (always installed)."""
    if LINUX_DOC.is_dir():
        files, source = sorted(LINUX_DOC.rglob("*.txt")), "linux-doc-6.1 reST sources"
    else:
        files, source = (
            sorted(pathlib.Path(sysconfig.get_paths()["stdlib"]).glob("*.py")),
            "python stdlib sources",
        )
    data = bytearray()
    for path in files:
        data += path.read_bytes()
        if len(data) >= limit:
            break
    return torch.tensor(list(data[:limit]), dtype=torch.long), source


def build_llama(hidden: int, layers: int, context: int) -> torch.nn.Module:
    """A LlamaForCausalLM from its config (HF's random 0.02-std init, seed 0),
    byte vocabulary, MLP width 2 x hidden, 4 heads sharing 2 key/value heads."""
    import transformers

    cfg = transformers.LlamaConfig(
        vocab_size=256,
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=context,
    )
    torch.manual_seed(0)
    return transformers.LlamaForCausalLM(cfg)


def pruned_losses(
    model: torch.nn.Module,
    make_optimizer: Callable,
    data: torch.Tensor,
    steps: int,
    batch: int,
    length: int,
) -> list[float]:
    """The loss of every step of training `model` while a GradualPruner takes it
    to 75% sparsity (cubic ramp, masks every 5 steps). Step t's batch is
    `batch` windows of `length` bytes drawn with seed t, so every optimizer
    sees the same batches."""
    opt = make_optimizer(model.parameters())
    pruner = GradualPruner(model, 0.75, total_steps=steps, every=5, optimizer=opt)
    losses = []
    for step in range(steps):
        gen = torch.Generator().manual_seed(step)
        starts = torch.randint(0, len(data) - length - 1, (batch,), generator=gen).tolist()
        ids = torch.stack([data[s : s + length] for s in starts])
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
        pruner.step()  # after the optimizer step, as the pruner expects
        losses.append(loss.item())
    return losses
