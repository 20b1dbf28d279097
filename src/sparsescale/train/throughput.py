"""How fast a run trains: steady-state throughput, model FLOPs per token and MFU.

The derivations sit beside the code that uses them: the model FLOPs per token
(6N plus attention) above `model_flops_per_example`, MFU above `speed_record`,
and what the steady-state rate leaves out above `SteadyClock`.
"""

from __future__ import annotations

import time
from typing import Any

# Dense bf16 tensor-core peaks, FLOP/s, from the vendors' datasheets. Matched
# against torch.cuda.get_device_name() in order: the first key found in the
# name wins, so the more specific names come first.
GPU_PEAK_BF16: tuple[tuple[str, float], ...] = (
    ("H100 PCIe", 756e12),  # H100 PCIe: 756 TFLOPS bf16 dense (1513 with sparsity)
    ("H100 NVL", 835e12),  # H100 NVL, per GPU: 835 TFLOPS dense (1671 with sparsity)
    ("H100", 989.4e12),  # H100 SXM5: 989.4 TFLOPS dense (1979 with sparsity)
    ("H200", 989.4e12),  # H200 SXM: same tensor cores as the H100 SXM
    ("GH200", 989.4e12),
    ("A100", 312e12),  # A100 SXM and PCIe: 312 TFLOPS dense (624 with sparsity)
)
# Steps of each attempt left out of the steady-state rate: the first steps
# allocate memory, fill caches and (with compile) trace and compile the graph.
WARMUP_STEPS = 5
WARMUP_STEPS_COMPILE = 20
_CPU_PEAK: dict[int, float] = {}


def gpu_peak_flops(name: str) -> float | None:
    """Dense bf16 peak of a CUDA device by its name; None when not in the table."""
    for key, peak in GPU_PEAK_BF16:
        if key.lower() in name.lower():
            return peak
    return None


def cpu_peak_flops(size: int = 1024, repeats: int = 3) -> float:
    """The measured fp32 matmul rate of this process's CPU threads, FLOP/s:
    the best of `repeats` size^3 products after one warm-up (about 0.1-1 s once per
    process and thread count)."""
    import torch

    threads = torch.get_num_threads()
    if threads not in _CPU_PEAK:
        a, b = torch.randn(size, size), torch.randn(size, size)
        a @ b
        best = float("inf")
        for _ in range(repeats):
            t0 = time.perf_counter()
            a @ b
            best = min(best, time.perf_counter() - t0)
        _CPU_PEAK[threads] = 2.0 * size**3 / best
    return _CPU_PEAK[threads]


def peak_flops(device) -> tuple[float | None, str]:
    """(peak FLOP/s of one device, where the figure comes from)."""
    import torch

    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        peak = gpu_peak_flops(name)
        return peak, (
            f"{name}: dense bf16 datasheet peak" if peak else f"{name}: not in the peak table"
        )
    return (
        cpu_peak_flops(),
        f"measured: best 1024^3 fp32 matmul on {torch.get_num_threads()} CPU thread(s)",
    )


# Model FLOPs per token
# ---------------------
# The law's compute is C = 6 N D: N counts the non-zero weights of the pruned
# block linears only (the paper's convention, plan.train_flops_*). What a device
# actually multiplies per token is more: the output head, and attention's two
# sequence-length products, which no parameter count sees. For a decoder of L
# blocks, context T, attention inner width d_attn, dense block weights P_block
# and a head of d x V weights (PaLM, appendix B):
#
#     forward MACs/token   = P_block + d V + L * (T d_attn [q k^T] + T d_attn [a v])
#     training FLOPs/token = 3 passes (forward, 2x backward) * 2 FLOPs per MAC * that
#                          = 6 (P_block + d V) + 12 L T d_attn
#
# The backward pass costs two forwards: one product for the gradient of the
# activations, one for the gradient of the weights. Attention is counted over
# the full T x T square, not the causal half, as PaLM and nanoGPT count it, so
# MFUs compare across codebases. The embedding lookup is a gather (no FLOPs);
# norms, activations and the softmax are O(d) per token and left out. The
# figure is dense (masked weights are still multiplied: training here runs
# dense kernels) and does not count the forward recomputed by activation
# checkpointing: model FLOPs, not hardware FLOPs.
#
# Rather than one closed form per family, the count runs one forward and
# backward of the real model on the meta device (shapes only, no memory,
# ~0.1 s) under torch's FlopCounterMode, which counts every matmul, attention
# included; for the GPT it equals the closed form above exactly
# (tests/train/test_scale.py), and a user's family needs nothing new.
def model_flops_per_example(family, model_config, batch: list) -> float | None:
    """Training FLOPs (forward + backward) of one example through the dense
    model, counted on the meta device (see the module docstring); None for a
    model the meta device cannot run (a user's family with a custom op): a
    speed figure is never worth failing a run for."""
    from torch.utils.flop_counter import FlopCounterMode

    try:
        model = family.build(model_config, device="meta")
        example = [t[:1].to("meta") for t in batch]  # one example: FLOPs are linear in the batch
        with FlopCounterMode(display=False) as counter:
            family.loss(model, example).backward()
    except (RuntimeError, NotImplementedError, TypeError, ValueError):
        return None
    return float(counter.get_total_flops())


# The steady-state rate. An attempt's first steps are slower than the rest:
# the allocator grows its pools, caches fill and, with compile, the graph is
# traced and compiled (tens of seconds). Averaging them in would make a short
# run look slower than the same model trained longer, so each attempt (a
# resumed run has several) starts its clock after its own warm-up, and the
# time spent evaluating is subtracted. On CUDA the clock synchronises before
# reading the time: kernels are queued asynchronously, and without the sync the
# warm-up's queued work would be billed to the steady steps.
class SteadyClock:
    """Training time after each attempt's warm-up steps, evaluation excluded.
    `mark(step)` after every step; `add_eval(s)` for time spent evaluating;
    `flush(state)` adds the steady steps and seconds so far to the RunState
    (called at checkpoints, so a resumed run's figure spans all its attempts)."""

    def __init__(self, step: int, warmup: int, sync):
        self.warm_until, self.sync = step + warmup, sync
        self.t0: float | None = None
        self.step0 = 0
        self.eval = 0.0

    def mark(self, step: int) -> None:
        if self.t0 is None and step >= self.warm_until:
            self.sync()  # the warm-up's queued kernels are not steady time
            self.t0, self.step0, self.eval = time.perf_counter(), step, 0.0

    def add_eval(self, seconds: float) -> None:
        if self.t0 is not None:
            self.eval += seconds

    def flush(self, state, step: int) -> None:
        if self.t0 is None or step <= self.step0:
            return
        self.sync()
        now = time.perf_counter()
        state.steady_steps += step - self.step0
        state.steady_wall_s += now - self.t0 - self.eval
        self.t0, self.step0, self.eval = now, step, 0.0


def device_record(device, world: int) -> dict[str, Any]:
    """Where the run ran: device names (one per rank) and the CUDA_VISIBLE_DEVICES
    the process saw (the result's world_size says how many ranks)."""
    import os
    import platform

    import torch

    if device.type == "cuda":
        names = (
            [torch.cuda.get_device_name(i) for i in range(world)]
            if world > 1
            else [torch.cuda.get_device_name(device)]
        )
    else:
        names = [_cpu_name() or platform.processor() or platform.machine() or "cpu"] * world
    return {"device_names": names, "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES")}


def _cpu_name() -> str | None:
    """The CPU's model name on Linux (platform.processor() says only 'x86_64')."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


# MFU (model FLOPs utilisation)
# ------------------------------
#     MFU = model FLOPs/example * steady examples/s / (world size * peak FLOP/s of one device)
#         = model FLOPs/token * steady tokens/s / (world * peak)      (text: examples * seq_len)
# GPU peaks are the vendors' dense bf16 tensor-core figures (no 2:4 sparsity
# speed-up), whatever precision the run used, so a bf16 run and an fp32 run are
# measured against the same ceiling; a CPU's peak is measured once per process:
# the best of a few 1024^3 fp32 matmuls on the run's threads.
def speed_record(
    state,
    batch: int,
    seq_len: int | None,
    flops_per_example: float | None,
    device,
    world: int,
    compile: bool,
) -> dict[str, Any]:
    """The result's speed fields from a RunState's steady time: the steady-state
    rate (each attempt's first WARMUP_STEPS steps, or WARMUP_STEPS_COMPILE with
    compile, and all evaluation left out), model FLOPs per token, MFU and the
    devices the run used. `seq_len` is None for a family that counts examples."""
    steady_steps, steady_s = state.steady_steps, state.steady_wall_s
    # examples/s of the global batch: every rank trains batch/world of each step's batch
    per_s = steady_steps * batch / steady_s if steady_steps and steady_s > 0 else None
    peak, source = peak_flops(device)
    per_token = flops_per_example / seq_len if seq_len and flops_per_example else None
    # the achieved model FLOP/s of all ranks over their summed peak (see above)
    mfu = (
        flops_per_example * per_s / (world * peak) if per_s and peak and flops_per_example else None
    )
    return {
        "steady_tokens_per_s": per_s * seq_len if per_s and seq_len else None,
        "steady_examples_per_s": per_s,
        "steady_steps": steady_steps,
        "warmup_steps_excluded": WARMUP_STEPS_COMPILE if compile else WARMUP_STEPS,
        "model_flops_per_example": flops_per_example,
        "model_flops_per_token": per_token,
        "peak_flops": peak,
        "peak_flops_source": source,
        "mfu": mfu,
        **device_record(device, world),
    }
