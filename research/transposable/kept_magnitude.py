"""How much magnitude a transposable 2:4 mask keeps, against plain 2:4 and
unstructured 50%, on Gaussian weights and on trained ones.

Every mask here keeps exactly half the weights. "Kept |w|" is the fraction of
the tensor's sum |w| the mask keeps, "kept w^2" of its sum w^2 (the squared
Frobenius norm, what the pruned matmul's output error scales with for white
inputs). Plain 2:4 is the exact optimum of its own constraint (the 2 largest of
every 4 along the input dim) and an upper bound for 2:4T, whose constraint
adds the columns; unstructured 50% is the upper bound for both.

Also timed (CPU, one thread, median of 5): the exact 2:4T solver (one matmul
against the 90 block patterns plus an argmax) against plain 2:4's ranking.

Usage (from the repository root):
    python research/transposable/kept_magnitude.py [--checkpoint run/checkpoint.pt ...] \
        --out research/transposable/kept_magnitude.json
A checkpoint is a `sparsescale train` checkpoint of a dense run: its block
weights (every 2-D weight under blocks.*) are measured one by one and summed.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from sparsescale.sparsity.masks import magnitude_mask, nm_priority, transposable_priority

GAUSSIAN_SHAPES = [(768, 768), (3072, 768), (768, 3072), (4096, 1024)]


def kept(weight: torch.Tensor) -> dict[str, dict[str, float]]:
    """Sums of |w| and w^2 kept by each mask (absolute; fractions come later)."""
    w = weight.detach().float()
    masks = {
        "unstructured": magnitude_mask(w, 0.5),
        "2:4": nm_priority(w, 2, 4),
        "2:4T": transposable_priority(w, 2, 4),
    }
    out = {"total": {"abs": float(w.abs().sum()), "sq": float(w.pow(2).sum())}}
    for name, mask in masks.items():
        assert int(mask.sum()) * 2 == w.numel(), name
        out[name] = {"abs": float(w.abs()[mask].sum()), "sq": float(w.pow(2)[mask].sum())}
    return out


def summarise(parts: list[dict[str, dict[str, float]]]) -> dict[str, float]:
    total = {k: sum(p["total"][k] for p in parts) for k in ("abs", "sq")}
    out = {}
    for name in ("unstructured", "2:4", "2:4T"):
        for k in ("abs", "sq"):
            out[f"{name} kept {k}"] = sum(p[name][k] for p in parts) / total[k]
    for k in ("abs", "sq"):
        out[f"2:4T / 2:4 kept {k}"] = out[f"2:4T kept {k}"] / out[f"2:4 kept {k}"]
        # the share of what plain 2:4 gives up (vs unstructured) that 2:4T gives up on top
        out[f"2:4T extra loss over 2:4 as a share of 2:4's loss {k}"] = (
            (out[f"2:4 kept {k}"] - out[f"2:4T kept {k}"]) / (1.0 - out[f"2:4 kept {k}"]))
    return out


def median_ms(fn, repeats: int = 5) -> float:
    fn()
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(samples)


def block_weights(path: Path) -> dict[str, torch.Tensor]:
    state = torch.load(path, map_location="cpu", weights_only=False)["model"]
    return {k: v for k, v in state.items() if k.startswith("blocks.") and v.ndim == 2
            and v.shape[0] % 4 == 0 and v.shape[1] % 4 == 0}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--checkpoint", type=Path, action="append", default=[])
    ap.add_argument("--out", type=Path)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(1)
    gen = torch.Generator().manual_seed(args.seed)
    result: dict = {"gaussian": {}, "trained": {}, "solver_ms": {}}
    for shape in GAUSSIAN_SHAPES:
        w = torch.randn(shape, generator=gen)
        result["gaussian"][f"{shape[0]}x{shape[1]}"] = summarise([kept(w)])
        result["solver_ms"][f"{shape[0]}x{shape[1]}"] = {
            "2:4T exact solver": median_ms(lambda w=w: transposable_priority(w, 2, 4)),
            "2:4 ranking": median_ms(lambda w=w: nm_priority(w, 2, 4)),
        }
    for path in args.checkpoint:
        weights = block_weights(path)
        parts = [kept(w) for w in weights.values()]
        result["trained"][str(path)] = {"tensors": len(weights), "weights": sum(w.numel() for w in weights.values()),
                                        **summarise(parts)}
    text = json.dumps(result, indent=1)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
