"""Cost of gradual pruning per training step: ours vs dense vs torch.ao.pruning.

A ~1M-parameter byte-level Transformer on CPU (1 thread), pruned to 75% with the
cubic schedule. Every variant trains its own copy of the same initial model on
the same batches with the same optimizer (SparseAdafactor); variants take turns
in short chunks of steps so that drifts in machine speed hit all of them alike.

Figures printed (ratios are measured in this same run):
  - time per step, ours / dense            (target <= 1.03)
  - time per step, torch.ao / dense        (WeightNormSparsifier + CubicSL), as
    documented (sparsifier.step() every step) and with masks recomputed only on
    update steps
  - mask memory in bytes per pruned weight and per masked weight

Run:  .venv/bin/python benchmarks/pruning_bench.py [--steps 400] [--every 100]
"""

from __future__ import annotations

import argparse
import pathlib
import statistics
import time
import warnings

import torch
from torch import nn

from sparsescale.sparsity import GradualPruner, SparseAdafactor
from sparsescale.sparsity.pruner import select_prunable

LINUX_DOC = pathlib.Path("/usr/share/doc/linux-doc-6.1/html/_sources")


class Block(nn.Module):
    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(width)
        self.qkv = nn.Linear(width, 3 * width, bias=False)
        self.o = nn.Linear(width, width, bias=False)
        self.norm2 = nn.LayerNorm(width)
        self.mlp_in = nn.Linear(width, 4 * width, bias=False)
        self.mlp_out = nn.Linear(4 * width, width, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, length, width = x.shape
        q, k, v = (
            self.qkv(self.norm1(x)).view(batch, length, 3, self.heads, -1).permute(2, 0, 3, 1, 4)
        )
        att = nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.o(att.transpose(1, 2).reshape(batch, length, width))
        return x + self.mlp_out(nn.functional.gelu(self.mlp_in(self.norm2(x))))


class GPT(nn.Module):
    def __init__(
        self, width: int = 128, depth: int = 5, heads: int = 4, context: int = 64, vocab: int = 256
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


def load_bytes(limit: int = 2_000_000) -> tuple[torch.Tensor, str]:
    if LINUX_DOC.is_dir():
        data = bytearray()
        for path in sorted(LINUX_DOC.rglob("*.txt")):
            data += path.read_bytes()
            if len(data) >= limit:
                break
        return torch.tensor(list(data[:limit]), dtype=torch.long), "linux-doc-6.1 reST text"
    # Step time does not depend on the token values.
    return torch.randint(
        0, 256, (limit,), generator=torch.Generator().manual_seed(0)
    ), "random bytes"


def batch_for(data: torch.Tensor, step: int, batch: int, length: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(step)
    starts = torch.randint(0, len(data) - length - 1, (batch,), generator=gen).tolist()
    return torch.stack([data[s : s + length + 1] for s in starts])


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class Variant:
    """One training run; `after_step(step)` is the pruning hook after optimizer.step()."""

    def __init__(self, name: str, init_state: dict, args: argparse.Namespace) -> None:
        self.name = name
        self.model = GPT(width=args.width, depth=args.depth, context=args.context)
        self.model.load_state_dict(init_state)
        self.model.to(args.device)
        self.device = torch.device(args.device)
        self.seconds: list[float] = []
        self.hook_seconds: list[float] = []  # time inside the pruning call alone
        self.losses: list[float] = []
        self.after_step = lambda step: None
        t0 = int(round(0.25 * args.steps))
        t1 = int(round(0.75 * args.steps))
        prunable = list(select_prunable(self.model))
        if name == "ours":
            self.pruner = GradualPruner(
                self.model, sparsity=args.sparsity, total_steps=args.steps, every=args.every
            )
            self.after_step = lambda step: self.pruner.step()
        elif name.startswith("torch.ao"):
            from torch.ao.pruning import CubicSL, WeightNormSparsifier

            self.sparsifier = WeightNormSparsifier(
                sparsity_level=args.sparsity, sparse_block_shape=(1, 1), zeros_per_block=1
            )
            self.sparsifier.prepare(self.model, config=[{"tensor_fqn": name} for name in prunable])
            self.scheduler = CubicSL(
                self.sparsifier,
                init_sl=0.0,
                init_t=t0,
                delta_t=args.every,
                total_t=max((t1 - t0) // args.every, 1),
                initially_zero=True,
            )
            every_step = name == "torch.ao"

            def after(step: int) -> None:
                # Documented use: sparsifier.step() then scheduler.step() every
                # step. The tuned variant recomputes masks on update steps only.
                if every_step or (t0 <= step <= t1 and (step - t0) % args.every == 0):
                    self.sparsifier.step()
                self.scheduler.step()

            self.after_step = after
        self.optimizer = SparseAdafactor(self.model.parameters(), lr=1e-2)

    def train_step(self, data: torch.Tensor, step: int, args: argparse.Namespace) -> None:
        tokens = batch_for(data, step, args.batch, args.context).to(self.device)
        sync(self.device)
        start = time.perf_counter()
        logits = self.model(tokens[:, :-1])
        loss = nn.functional.cross_entropy(
            logits.reshape(-1, logits.shape[-1]), tokens[:, 1:].reshape(-1)
        )
        loss.backward()
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        sync(self.device)  # every variant pays it, so the ratios stay fair
        hook_start = time.perf_counter()
        self.after_step(step)
        sync(self.device)
        end = time.perf_counter()
        self.seconds.append(end - start)
        self.hook_seconds.append(end - hook_start)
        self.losses.append(loss.item())


def mask_bytes_ao(variant: Variant) -> tuple[int, int]:
    total = numel = 0
    for group in variant.sparsifier.groups:
        module = group["module"]
        for p in module.parametrizations["weight"]:
            if hasattr(p, "mask"):
                total += p.mask.numel() * p.mask.element_size()
                numel += p.mask.numel()
    return total, numel


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--every", type=int, default=100)
    parser.add_argument("--sparsity", type=float, default=0.75)
    parser.add_argument("--width", type=int, default=128)
    parser.add_argument("--depth", type=int, default=5)
    parser.add_argument("--context", type=int, default=64)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--device", default="cpu", help="cpu (the target figure) or cuda")
    parser.add_argument(
        "--chunk", type=int, default=10, help="steps per turn before the next variant runs"
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore", category=UserWarning)

    data, source = load_bytes()
    torch.manual_seed(0)
    init_state = GPT(width=args.width, depth=args.depth, context=args.context).state_dict()
    variants = [
        Variant(name, init_state, args)
        for name in ("dense", "ours", "torch.ao", "torch.ao (update steps)")
    ]
    model = variants[0].model
    n_params = sum(p.numel() for p in model.parameters())
    n_prunable = sum(p.numel() for p in select_prunable(model).values())
    print(f"model: {n_params:,} parameters, {n_prunable:,} in block linear layers; data: {source}")
    print(
        f"steps {args.steps}, batch {args.batch} x {args.context} tokens, sparsity "
        f"{args.sparsity}, "
        f"cubic 25%-75%, masks every {args.every} steps; device {args.device}, 1 CPU thread"
    )

    for chunk_start in range(0, args.steps, args.chunk):
        order = (
            variants[chunk_start // args.chunk % len(variants) :]
            + variants[: chunk_start // args.chunk % len(variants)]
        )
        for variant in order:
            for step in range(chunk_start, min(chunk_start + args.chunk, args.steps)):
                variant.train_step(data, step, args)

    t1 = int(round(0.75 * args.steps))
    dense = variants[0]
    print(
        f"\n{'variant':<26}{'ms/step (mean)':>15}{'ratio':>8}"
        f"{'ms/step after ramp (median)':>30}{'ratio':>8}{'final loss':>12}"
    )
    for v in variants:
        mean_ms = 1e3 * statistics.fmean(v.seconds)
        tail_ms = 1e3 * statistics.median(v.seconds[t1 + 1 :])
        print(
            f"{v.name:<26}{mean_ms:>15.2f}{mean_ms / (1e3 * statistics.fmean(dense.seconds)):>8.3f}"
            f"{tail_ms:>30.2f}{tail_ms / (1e3 * statistics.median(dense.seconds[t1 + 1 :])):>8.3f}"
            f"{statistics.fmean(v.losses[-20:]):>12.3f}"
        )

    ours = variants[1]
    hook_ms = 1e3 * statistics.fmean(ours.hook_seconds)
    hook_tail_ms = 1e3 * statistics.median(ours.hook_seconds[t1 + 1 :])
    dense_ms = 1e3 * statistics.fmean(dense.seconds)
    print(
        f"\nours, time inside pruner.step(): {hook_ms:.3f} ms/step mean (mask updates included), "
        f"{hook_tail_ms:.3f} ms median after the ramp"
    )
    print(
        f"ours, (dense + pruner.step()) / dense: {(dense_ms + hook_ms) / dense_ms:.4f} "
        f"(low-noise estimate of the ratio above)"
    )
    stats = ours.pruner.stats()
    pruned = stats["n_params_prunable"] - stats["n_nonzero"]
    mask_bytes = ours.pruner.mask_bytes()
    ao_bytes, ao_numel = mask_bytes_ao(variants[2])
    # The figures only count if the pruning is real: check what the pruner promises.
    for name, param in ours.pruner.params.items():
        assert bool((param[~ours.pruner.masks[name]] == 0).all()), (
            f"{name}: pruned weights are not 0"
        )
        assert int((param != 0).sum()) <= int(ours.pruner.masks[name].sum()), name
    print(
        f"final sparsity (ours): {stats['sparsity']:.4f}; ours/dense mean step ratio target <= 1.03"
    )
    print(
        f"mask memory, ours:     {mask_bytes:,} B = {mask_bytes / pruned:.3f} B per pruned weight, "
        f"{mask_bytes / stats['n_params_prunable']:.3f} B per masked weight (bool)"
    )
    print(
        f"mask memory, torch.ao: {ao_bytes:,} B = {ao_bytes / pruned:.3f} B per pruned weight, "
        f"{ao_bytes / max(ao_numel, 1):.3f} B per masked weight"
    )


if __name__ == "__main__":
    main()
