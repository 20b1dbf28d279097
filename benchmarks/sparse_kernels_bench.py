"""Where do PyTorch's unstructured sparse kernels win or lose? Phase by phase.

One linear layer (tokens x in -> out), random unstructured masks, timed in
this one process (median of interleaved samples), dense against sparse:
  forward   x W^T:   dense mm | CSR mm | COO mm
  backward  g W:     dense mm | CSR mm of W^T
  backward  g^T x:   dense mm | sampled_addmm (SDDMM at the kept entries, CSR)
  optimizer AdamW:   dense weight | the non-zero values only
and the whole step (what `sparsescale bench-kernels` records).

Usage: python benchmarks/sparse_kernels_bench.py [--shape 512x2048x512] [--threads 1] [--device cpu]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import torch
import torch.nn.functional as F

from sparsescale.kernels.bench import BenchSettings, _random_mask, _step, _unstructured, time_steps
from sparsescale.kernels.csr import CsrLayout


def median_ms(fns: dict, device: torch.device, repeats: int = 7, inner: int = 3) -> dict:
    for fn in fns.values():
        fn()
    samples = {k: [] for k in fns}
    for _ in range(repeats):
        for k, fn in fns.items():
            if device.type == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            for _ in range(inner):
                fn()
            if device.type == "cuda":
                torch.cuda.synchronize()
            samples[k].append((time.perf_counter() - t0) * 1e3 / inner)
    return {k: statistics.median(v) for k, v in samples.items()}


def phases(tokens: int, in_f: int, out_f: int, s: float, device: torch.device, gen) -> dict:
    mask = _random_mask(out_f, in_f, s, gen, device)
    w = torch.randn(out_f, in_f, generator=gen).to(device) * mask
    x = torch.randn(tokens, in_f, generator=gen).to(device)
    g = torch.randn(tokens, out_f, generator=gen).to(device)
    layout = CsrLayout.from_mask(mask)
    values = layout.gather_values(w)
    csr, csr_t, coo = layout.matrix(values), layout.matrix_t(values), w.to_sparse()
    pattern = layout.matrix(torch.zeros_like(values))
    gt = g.t().contiguous()
    wd, vd = w.clone().requires_grad_(True), values.clone().requires_grad_(True)
    wd.grad, vd.grad = torch.randn_like(wd), torch.randn_like(vd)
    opt_d, opt_s = torch.optim.AdamW([wd], lr=1e-4), torch.optim.AdamW([vd], lr=1e-4)
    fns = {
        "fwd dense": lambda: x @ w.t(),
        "fwd CSR": lambda: torch.sparse.mm(csr, x.t()),
        "fwd COO": lambda: torch.sparse.mm(coo, x.t()),
        "dx dense": lambda: g @ w,
        "dx CSR": lambda: torch.sparse.mm(csr_t, g.t()),
        "dW dense": lambda: gt @ x,
        "dW SDDMM": lambda: torch.sparse.sampled_addmm(pattern, gt, x, beta=0.0),
        "adamw dense": opt_d.step,
        "adamw nnz": opt_s.step,
    }
    return median_ms(fns, device)


def whole_steps(tokens: int, in_f: int, out_f: int, s: float, settings: BenchSettings, gen) -> dict:
    """Whole-step ms (forward, backward, AdamW) as bench-kernels times them."""
    device = torch.device(settings.device)
    w0 = torch.randn(out_f, in_f, generator=gen).to(device) / in_f**0.5
    x = torch.randn(tokens, in_f, generator=gen).to(device).requires_grad_(True)
    grad = torch.randn(tokens, out_f, generator=gen).to(device)
    w = w0.clone().requires_grad_(True)
    steps = {"dense": _step(w, lambda a: F.linear(a, w), x, grad, settings.lr)}
    steps.update(_unstructured(s, w0, x, grad, settings, gen))
    return time_steps(steps, settings)[0]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--shape", default="512x2048x512", help="TOKENSxINxOUT")
    ap.add_argument("--sparsities", default="0.5,0.75,0.9,0.95,0.99")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    tokens, in_f, out_f = (int(v) for v in args.shape.split("x"))
    device = torch.device(args.device)
    gen = torch.Generator().manual_seed(0)
    print(
        f"torch {torch.__version__}, {device}, {torch.get_num_threads()} thread(s), fp32, "
        f"shape {tokens}x{in_f}x{out_f} (tokens x in x out); median ms, speedup = dense / sparse"
    )
    head = (
        f"{'S':>5} | {'fwd dense':>9} {'CSR':>7} {'COO':>7} | {'dx dense':>8} {'CSR':>7} | "
        f"{'dW dense':>8} {'SDDMM':>7} | {'adamw':>6} {'nnz':>6} | step speedup"
    )
    print(head)
    settings = BenchSettings(shapes=((tokens, in_f, out_f),), device=args.device, repeats=5)
    for s in (float(v) for v in args.sparsities.split(",")):
        t = phases(tokens, in_f, out_f, s, device, gen)
        step_ms = whole_steps(tokens, in_f, out_f, s, settings, gen)
        print(
            f"{s:5.2f} | {t['fwd dense']:9.2f} {t['fwd CSR']:7.2f} {t['fwd COO']:7.2f} | "
            f"{t['dx dense']:8.2f} {t['dx CSR']:7.2f} | {t['dW dense']:8.2f} {t['dW SDDMM']:7.2f} "
            "| "
            f"{t['adamw dense']:6.2f} {t['adamw nnz']:6.2f} | "
            f"{step_ms['dense'] / step_ms[f'unstructured@{s:g}']:.3f}x "
            f"(masked dense {step_ms['dense'] / step_ms[f'masked@{s:g}']:.3f}x)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
