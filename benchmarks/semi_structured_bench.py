"""2:4 semi-structured kernels against dense, in one run, side by side (CUDA).

Prints, all measured in this one process on one GPU:
  1. parity: a 2:4-swapped FFN against the masked dense FFN in bf16 (max error
     of output and gradients relative to their scale);
  2. FFN linears, forward + backward, at GPT-2 (768 -> 3072 -> 768) and ViT-L
     (1024 -> 4096 -> 1024) MLP shapes, 8192 tokens: dense, plain 2:4 masks
     (2:4 along the input dim: forward sparse, dx and dW dense), and 2:4T
     masks from the pruner's exact solver (2:4 along both dims: forward and dx
     sparse, dW dense). Target: >= 1.2x with 2:4T; anchor: torchao 1.24x /
     1.27x on A100.
  3. a whole training step (forward, backward, AdamW, mask re-apply) of a 2:4
     GPT (12 x 768, context 1024): masked dense against swapped linears with
     2:4 and with 2:4T masks. Target: >= 1.06x; anchor: torchao's 6% end to
     end on ViT-L.

Without a CUDA GPU of compute capability >= 8.0 it prints why and exits 0
(writing {"skipped": reason} to --json).
Usage: python benchmarks/semi_structured_bench.py [--steps 20] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from sparsescale.sparsity import semi_structured as semi
from sparsescale.sparsity.masks import transposable_priority

FIGURES: dict = {}  # everything printed, for --json


def nm_mask(rows: int, cols: int, gen: torch.Generator) -> torch.Tensor:
    """2 kept in every 4 along the input (last) dim, at random."""
    scores = torch.rand(rows, cols // 4, 4, generator=gen)
    keep = torch.zeros_like(scores, dtype=torch.bool).scatter_(-1, scores.topk(2, -1).indices, True)
    return keep.reshape(rows, cols)


def transposable_mask(rows: int, cols: int, gen: torch.Generator) -> torch.Tensor:
    """2:4 along both dims: the exact 2:4T solver's mask of a random weight."""
    return transposable_priority(torch.randn(rows, cols, generator=gen), 2, 4)


def timed(fn, steps: int) -> float:
    """Median ms of fn() over `steps` calls after 3 warm-ups (CUDA synchronised)."""
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    samples = []
    for _ in range(steps):
        t0 = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        samples.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(samples)


def ffn_section(steps: int, gen: torch.Generator) -> None:
    print("== 2:4 FFN linears, forward + backward, bf16, 8192 tokens (median ms)")
    for label, width, hidden in (("GPT-2 MLP", 768, 3072), ("ViT-L MLP", 1024, 4096)):
        x = torch.randn(8192, width, device="cuda", dtype=torch.bfloat16, requires_grad=True)
        variants = {}
        for kind in ("dense", "2:4", "2:4T"):
            fc1, fc2 = (
                nn.Linear(width, hidden, device="cuda"),
                nn.Linear(hidden, width, device="cuda"),
            )
            if kind != "dense":
                make = nm_mask if kind == "2:4" else transposable_mask
                fc1 = semi.SemiStructuredLinear(fc1, make(hidden, width, gen).cuda())
                fc2 = semi.SemiStructuredLinear(fc2, make(width, hidden, gen).cuda())
            variants[kind] = (fc1, fc2)
        grad = torch.randn(8192, width, device="cuda", dtype=torch.bfloat16)

        def step(fc1, fc2):
            with torch.autocast("cuda", dtype=torch.bfloat16):
                y = fc2(F.gelu(fc1(x)))
            y.backward(grad)
            x.grad = None
            for m in (fc1, fc2):
                m.weight.grad = m.bias.grad = None

        times = {k: timed(lambda v=v: step(*v), steps) for k, v in variants.items()}
        line = ", ".join(f"{k} {t:.3f}" for k, t in times.items())
        speedups = {k: times["dense"] / times[k] for k in ("2:4", "2:4T")}
        FIGURES.setdefault("ffn", {})[label] = {"ms": times, "speedup": speedups}
        print(
            f"{label} ({width}->{hidden}->{width}): {line}; speedup 2:4 {speedups['2:4']:.3f}x, "
            f"2:4T {speedups['2:4T']:.3f}x (target >= 1.2x with 2:4T)"
        )


def parity_section(gen: torch.Generator) -> None:
    for kind, make in (("2:4", nm_mask), ("2:4T", transposable_mask)):
        parity_one(kind, make, gen)


def parity_one(kind: str, make, gen: torch.Generator) -> None:
    torch.manual_seed(0)
    width, hidden = 1024, 4096
    dense = nn.Sequential(nn.Linear(width, hidden), nn.GELU(), nn.Linear(hidden, width)).cuda()
    masks = {
        "0.weight": make(hidden, width, gen).cuda(),
        "2.weight": make(width, hidden, gen).cuda(),
    }
    with torch.no_grad():
        for k, m in masks.items():
            dict(dense.named_parameters())[k].mul_(m)
    sparse = nn.Sequential(nn.Linear(width, hidden), nn.GELU(), nn.Linear(hidden, width)).cuda()
    sparse.load_state_dict(dense.state_dict())
    report = semi.swap_to_semi_structured(sparse, masks)
    x = torch.randn(2048, width, device="cuda")
    with torch.autocast("cuda", dtype=torch.bfloat16):
        yd, ys = dense(x), sparse(x)
    g = torch.randn_like(yd)
    yd.backward(g)
    ys.backward(g)
    rel = lambda a, b: ((a.float() - b.float()).abs().max() / b.float().abs().max()).item()  # noqa: E731
    errs = {"output": rel(ys, yd)}
    for name, p in dense.named_parameters():
        errs[f"grad {name}"] = rel(dict(sparse.named_parameters())[name].grad, p.grad)
    backend = type(
        semi._compress(torch.zeros(64, 64, device="cuda", dtype=torch.bfloat16))
    ).__name__
    FIGURES.setdefault("parity", {})[kind] = errs
    transposable = [
        getattr(m, "transposable", None)
        for m in sparse.modules()
        if isinstance(m, semi.SemiStructuredLinear)
    ]
    print(
        f"== parity {kind} (ViT-L FFN, bf16, backend {backend}); swapped {report.swapped}, sparse "
        f"dx {transposable}"
    )
    print(
        "max |sparse - masked dense| / max |masked dense|: "
        + ", ".join(f"{k} {v:.2e}" for k, v in errs.items())
    )


def model_section(steps: int) -> None:
    from sparsescale.models.gpt import GPT, GPTConfig
    from sparsescale.sparsity import GradualPruner

    cfg = GPTConfig(
        vocab_size=256, seq_len=1024, depth=12, width=768, head_dim=64, n_heads=12, mlp_hidden=3072
    )
    x = torch.randint(0, 256, (16, cfg.seq_len), device="cuda")
    times = {}
    for kind in ("masked dense", "2:4 swapped", "2:4T swapped"):
        torch.manual_seed(0)
        model = GPT(cfg).cuda()
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=True)
        pattern = "2:4T" if kind.startswith("2:4T") else "2:4"
        pruner = GradualPruner(
            model, pattern=pattern, total_steps=1000, schedule="one-shot", optimizer=opt
        )
        pruner.prune_now()
        if kind != "masked dense":
            report = semi.swap_to_semi_structured(model, pruner.masks)
            print(f"swapped {len(report.swapped)} linears; skipped {report.skipped or 'none'}")

        def step(model=model, opt=opt, pruner=pruner):
            with torch.autocast("cuda", dtype=torch.bfloat16):
                _, loss = model(x, x)
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
            pruner.apply_masks()

        times[kind] = timed(step, steps)
        del model, opt, pruner
        torch.cuda.empty_cache()
    speedups = {k: times["masked dense"] / times[k] for k in ("2:4 swapped", "2:4T swapped")}
    FIGURES["whole_step"] = {"ms": times, "speedup": speedups}
    print(
        f"== whole training step, 2:4 GPT 12x768, 16 x 1024 tokens, eager bf16: masked dense "
        f"{times['masked dense']:.2f} ms, 2:4 swapped {times['2:4 swapped']:.2f} ms "
        f"({speedups['2:4 swapped']:.3f}x), 2:4T swapped {times['2:4T swapped']:.2f} ms "
        f"({speedups['2:4T swapped']:.3f}x) (target >= 1.06x)"
    )


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--json", help="also write every figure to this JSON file")
    args = ap.parse_args()
    reason = semi.unavailable_reason("cuda")
    try:  # each section's figures are kept even if a later one fails
        if reason is not None:
            print(f"semi_structured_bench: skipped: {reason}")
            FIGURES["skipped"] = reason
            return 0
        print(f"device: {torch.cuda.get_device_name()}, torch {torch.__version__}")
        FIGURES["device"] = torch.cuda.get_device_name()
        gen = torch.Generator().manual_seed(0)
        parity_section(gen)
        ffn_section(args.steps, gen)
        model_section(args.steps)
        return 0
    finally:
        if args.json:
            Path(args.json).write_text(json.dumps(FIGURES, indent=1) + "\n")


if __name__ == "__main__":
    sys.exit(main())
