"""2:4 semi-structured kernels against dense, in one run, side by side (CUDA).

Prints, all measured in this one process on one GPU:
  1. parity: a 2:4-swapped FFN against the masked dense FFN in bf16 (max error
     of output and gradients relative to their scale);
  2. FFN linears, forward + backward, at GPT-2 (768 -> 3072 -> 768) and ViT-L
     (1024 -> 4096 -> 1024) MLP shapes, 8192 tokens: dense, 2:4 with the
     pruner's masks (2:4 along the input dim: forward sparse, dx and dW dense),
     and 2:4 with transposable masks (2:4 along both dims: forward and dx
     sparse). Target (issue 14): >= 1.2x; anchor: torchao 1.24x / 1.27x on A100.
  3. a whole training step (forward, backward, AdamW, mask re-apply) of a 2:4
     GPT (12 x 768, context 1024): masked dense against swapped linears.
     Target: >= 1.06x; anchor: torchao's 6% end to end on ViT-L.

Without a CUDA GPU of compute capability >= 8.0 it prints why and exits 0.
Usage: python benchmarks/semi_structured_bench.py [--steps 20]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import torch
import torch.nn.functional as F
from torch import nn

from sparsescale.sparsity import semi_structured as semi


def nm_mask(rows: int, cols: int, gen: torch.Generator) -> torch.Tensor:
    """2 kept in every 4 along the input (last) dim, at random."""
    scores = torch.rand(rows, cols // 4, 4, generator=gen)
    keep = torch.zeros_like(scores, dtype=torch.bool).scatter_(-1, scores.topk(2, -1).indices, True)
    return keep.reshape(rows, cols)


def transposable_mask(rows: int, cols: int, gen: torch.Generator) -> torch.Tensor:
    """2:4 along both dims: in each 4x4 tile keep a Latin square's two symbols."""
    p = torch.stack([torch.randperm(4, generator=gen) for _ in range(rows // 4 * (cols // 4))])
    q = torch.stack([torch.randperm(4, generator=gen) for _ in range(rows // 4 * (cols // 4))])
    latin = (p[:, :, None] + q[:, None, :]) % 4  # (tiles, 4, 4), each row and column a permutation
    tiles = (latin < 2).reshape(rows // 4, cols // 4, 4, 4)
    return tiles.permute(0, 2, 1, 3).reshape(rows, cols)


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
        for kind in ("dense", "2:4", "2:4 transposable"):
            fc1, fc2 = nn.Linear(width, hidden, device="cuda"), nn.Linear(hidden, width, device="cuda")
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
        print(f"{label} ({width}->{hidden}->{width}): {line}; speedup 2:4 {times['dense'] / times['2:4']:.3f}x, "
              f"transposable {times['dense'] / times['2:4 transposable']:.3f}x (target >= 1.2x)")


def parity_section(gen: torch.Generator) -> None:
    torch.manual_seed(0)
    width, hidden = 1024, 4096
    dense = nn.Sequential(nn.Linear(width, hidden), nn.GELU(), nn.Linear(hidden, width)).cuda()
    masks = {"0.weight": nm_mask(hidden, width, gen).cuda(), "2.weight": nm_mask(width, hidden, gen).cuda()}
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
    backend = type(semi._compress(torch.zeros(64, 64, device="cuda", dtype=torch.bfloat16))).__name__
    print(f"== parity (ViT-L FFN, bf16, backend {backend}); swapped {report.swapped}")
    print("max |sparse - masked dense| / max |masked dense|: " + ", ".join(f"{k} {v:.2e}" for k, v in errs.items()))


def model_section(steps: int) -> None:
    from sparsescale.models.gpt import GPT, GPTConfig
    from sparsescale.sparsity import GradualPruner

    cfg = GPTConfig(vocab_size=256, seq_len=1024, depth=12, width=768, head_dim=64, n_heads=12, mlp_hidden=3072)
    x = torch.randint(0, 256, (16, cfg.seq_len), device="cuda")
    times = {}
    for kind in ("masked dense", "2:4 swapped"):
        torch.manual_seed(0)
        model = GPT(cfg).cuda()
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=True)
        pruner = GradualPruner(model, pattern="2:4", total_steps=1000, schedule="one-shot", optimizer=opt)
        pruner.prune_now()
        if kind == "2:4 swapped":
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
    print(f"== whole training step, 2:4 GPT 12x768, 16 x 1024 tokens, eager bf16: masked dense "
          f"{times['masked dense']:.2f} ms, swapped {times['2:4 swapped']:.2f} ms, speedup "
          f"{times['masked dense'] / times['2:4 swapped']:.3f}x (target >= 1.06x)")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=20)
    args = ap.parse_args()
    reason = semi.unavailable_reason("cuda")
    if reason is not None:
        print(f"semi_structured_bench: skipped: {reason}")
        return 0
    print(f"device: {torch.cuda.get_device_name()}, torch {torch.__version__}")
    gen = torch.Generator().manual_seed(0)
    parity_section(gen)
    ffn_section(args.steps, gen)
    model_section(args.steps)
    return 0


if __name__ == "__main__":
    sys.exit(main())
