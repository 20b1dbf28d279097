"""Cost of one mask recompute: GradualPruner vs torch.ao's WeightNormSparsifier.

The model is a LlamaForCausalLM built from a config (hidden 128, grouped-query
attention, random init, nothing downloaded). Both sides prune the same block
weights (every Linear inside `model.layers`): unstructured to 75%, and 2:4
(n=2 weights KEPT in every group of 4 along the input dimension). Each timed
call recomputes every mask from the current weights; for ours that is the
pruner's update (`_update_masks`: ranking with the previous masks as `alive`,
install), for torch.ao `sparsifier.step()`. The two sides alternate, `--repeats`
times each, and the median is printed with the ratio from this same run.

Run:  .venv/bin/python benchmarks/mask_recompute_bench.py [--repeats 30] [--threads 1]
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

import torch


def build_llama(layers: int) -> torch.nn.Module:
    import transformers

    cfg = transformers.LlamaConfig(
        vocab_size=1000,
        hidden_size=128,
        intermediate_size=352,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=128,
    )
    torch.manual_seed(0)
    return transformers.LlamaForCausalLM(cfg)


def ours(model: torch.nn.Module, pattern: str | None):
    from sparsescale.sparsity import GradualPruner

    pruner = GradualPruner(model, 0.75 if pattern is None else None, pattern, total_steps=100)
    targets = {k: pruner.final_sparsity[k] for k in pruner.params}
    pruner.prune_now()  # later recomputes rank with alive masks, as mid-training
    return lambda: pruner._update_masks(targets), pruner


def torch_ao(model: torch.nn.Module, pattern: str | None, names: list[str]):
    from torch.ao.pruning import WeightNormSparsifier

    if pattern is None:
        sparsifier = WeightNormSparsifier(
            sparsity_level=0.75, sparse_block_shape=(1, 1), zeros_per_block=1
        )
    else:  # every 1x4 block keeps 2: 2:4 along the input (last) dimension
        sparsifier = WeightNormSparsifier(
            sparsity_level=1.0, sparse_block_shape=(1, 4), zeros_per_block=2
        )
    sparsifier.prepare(model, config=[{"tensor_fqn": n} for n in names])
    sparsifier.step()
    return sparsifier.step, sparsifier


def timed(fn, repeats: int, out: list[float]) -> None:
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)


def check_same_masks(pruner, sparsifier, pattern: str | None) -> str:
    """The figures only count if both compute the intended mask: same counts."""
    ao = {}
    for group in sparsifier.groups:
        ao[group["tensor_fqn"]] = group["module"].parametrizations["weight"][0].mask.bool()
    agree = 0
    for name, mask in pruner.masks.items():
        other = ao[name.replace(".parametrizations.weight.original", "")]
        assert int(mask.sum()) == int(other.sum()), name
        if pattern is not None:
            assert bool((mask.reshape(-1, 4).sum(1) == 2).all()) and bool(
                (other.reshape(-1, 4).sum(1) == 2).all()
            )
        agree += int((mask == other).sum())
    total = sum(m.numel() for m in pruner.masks.values())
    return f"masks agree on {agree / total:.4%} of entries"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    print(
        f"LlamaForCausalLM hidden 128, {args.layers} layers, GQA 4/2 heads; {args.threads} "
        "thread(s); "
        f"median of {args.repeats} recomputes each, alternating"
    )
    print(f"{'pattern':<14}{'ours ms':>10}{'torch.ao ms':>13}{'ours/ao':>9}  check")
    for pattern in (None, "2:4"):
        model_ours, model_ao = build_llama(args.layers), build_llama(args.layers)
        run_ours, pruner = ours(model_ours, pattern)
        run_ao, sparsifier = torch_ao(model_ao, pattern, list(pruner.prunable))
        t_ours: list[float] = []
        t_ao: list[float] = []
        for _ in range(3):  # alternate in chunks so machine drift hits both alike
            timed(run_ours, args.repeats // 3, t_ours)
            timed(run_ao, args.repeats // 3, t_ao)
        note = check_same_masks(pruner, sparsifier, pattern)
        ms_ours, ms_ao = 1e3 * statistics.median(t_ours), 1e3 * statistics.median(t_ao)
        n = sum(p.numel() for p in pruner.prunable.values())
        print(
            f"{pattern or 'unstructured':<14}{ms_ours:>10.2f}{ms_ao:>13.2f}"
            f"{ms_ours / ms_ao:>9.2f}  "
            f"{len(pruner.prunable)} tensors, {n:,} weights; {note}"
        )


if __name__ == "__main__":
    main()
