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
import pathlib
import sysconfig
import time
import warnings

import torch

from sparsescale.sparsity import GradualPruner, SparseAdafactor

LINUX_DOC = pathlib.Path("/usr/share/doc/linux-doc-6.1/html/_sources")


def text_bytes(limit: int = 1_000_000) -> tuple[torch.Tensor, str]:
    if LINUX_DOC.is_dir():
        files, source = sorted(LINUX_DOC.rglob("*.txt")), "linux-doc-6.1 reST sources"
    else:
        files, source = sorted(pathlib.Path(sysconfig.get_paths()["stdlib"]).glob("*.py")), "python stdlib sources"
    data = bytearray()
    for path in files:
        data += path.read_bytes()
        if len(data) >= limit:
            break
    return torch.tensor(list(data[:limit]), dtype=torch.long), source


def build(hidden: int, layers: int) -> torch.nn.Module:
    import transformers

    cfg = transformers.LlamaConfig(
        vocab_size=256, hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=layers,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
    )
    torch.manual_seed(0)
    return transformers.LlamaForCausalLM(cfg)


VARIANTS = {
    "AdamW lr=1e-3": lambda p: torch.optim.AdamW(p, lr=1e-3),
    "SparseAdafactor lr=1e-2 (old README)": lambda p: SparseAdafactor(p, lr=1e-2),
    "SparseAdafactor lr=5e-2 (1e-3 / 0.02)": lambda p: SparseAdafactor(p, lr=5e-2),
    "SparseAdafactor relative_step=False lr=1e-3": lambda p: SparseAdafactor(p, lr=1e-3, relative_step=False),
}


def run(name: str, data: torch.Tensor, args) -> tuple[float, float, float]:
    model = build(args.hidden, args.layers)
    opt = VARIANTS[name](model.parameters())
    pruner = GradualPruner(model, 0.75, total_steps=args.steps, every=5, optimizer=opt)
    losses, start = [], time.perf_counter()
    for step in range(args.steps):
        gen = torch.Generator().manual_seed(step)
        starts = torch.randint(0, len(data) - args.length - 1, (args.batch,), generator=gen).tolist()
        ids = torch.stack([data[s : s + args.length] for s in starts])
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
        pruner.step()
        losses.append(loss.item())
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
    data, source = text_bytes()
    print(f"Llama hidden {args.hidden}, {args.layers} layers, byte vocab, init std 0.02; {source}; "
          f"{args.steps} steps of {args.batch}x{args.length} tokens; GradualPruner 75% cubic on every variant")
    print(f"{'optimizer':<46}{'loss first 5':>13}{'loss last 5':>13}{'seconds':>9}")
    for name in VARIANTS:
        first, last, seconds = run(name, data, args)
        print(f"{name:<46}{first:>13.3f}{last:>13.3f}{seconds:>9.1f}")


if __name__ == "__main__":
    main()
