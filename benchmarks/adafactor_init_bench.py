"""SparseAdafactor on a model with the usual 0.02-std init: which lr learns as AdamW does.

AdaFactor's relative step moves each weight by lr * max(RMS(w), min_scale) *
update, so with weights of RMS 0.02 the README's old lr=1e-2 moves them by
about 2e-4 per step, five times less than AdamW at lr 1e-3. The guidance this
script checks: with relative steps, lr ~ (AdamW's lr) / (init std), i.e.
lr=0.05 for 0.02-std inits; or relative_step=False with AdamW's lr.

A LlamaForCausalLM built from a config (random init, HF's 0.02 std), byte-level
on real text, every variant from the same init on the same batches, with the
same GradualPruner (75%, cubic ramp) so the sparse case is what is measured.

Run:  .venv/bin/python benchmarks/adafactor_init_bench.py [--steps 80]
"""

from __future__ import annotations

import argparse
import time
import warnings

import torch
from llama_bytes import (
    build_llama,
    pruned_losses,
    text_bytes,
)  # beside this script; shared with tests/sparsity

from sparsescale.sparsity import SparseAdafactor

VARIANTS = {
    "AdamW lr=1e-3": lambda p: torch.optim.AdamW(p, lr=1e-3),
    "SparseAdafactor lr=1e-2 (old README)": lambda p: SparseAdafactor(p, lr=1e-2),
    "SparseAdafactor lr=5e-2 (1e-3 / 0.02)": lambda p: SparseAdafactor(p, lr=5e-2),
    "SparseAdafactor relative_step=False lr=1e-3": lambda p: SparseAdafactor(
        p, lr=1e-3, relative_step=False
    ),
}


def run(name: str, data: torch.Tensor, args) -> tuple[float, float, float]:
    model = build_llama(args.hidden, args.layers, context=128)
    start = time.perf_counter()
    losses = pruned_losses(model, VARIANTS[name], data, args.steps, args.batch, args.length)
    first = sum(losses[:5]) / 5
    last = sum(losses[-5:]) / 5
    return first, last, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=80)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--length", type=int, default=64)
    args = parser.parse_args()
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore")
    data, source = text_bytes(1_000_000)
    print(
        f"Llama hidden {args.hidden}, {args.layers} layers, byte vocab, init std 0.02; {source}; "
        f"{args.steps} steps of {args.batch}x{args.length} tokens; GradualPruner 75% cubic on "
        "every variant"
    )
    print(f"{'optimizer':<46}{'loss first 5':>13}{'loss last 5':>13}{'seconds':>9}")
    for name in VARIANTS:
        first, last, seconds = run(name, data, args)
        print(f"{name:<46}{first:>13.3f}{last:>13.3f}{seconds:>9.1f}")


if __name__ == "__main__":
    main()
