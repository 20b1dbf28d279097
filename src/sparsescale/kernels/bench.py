"""Time dense against sparse training steps of linear layers; write speedups.

One step = forward + backward (input and weight gradients) + AdamW update of
one linear layer at shape (tokens, in, out), weights kept in fp32, matmuls in
the compute dtype (fp32 on CPU, bf16 on CUDA). Per shape, every variant is
timed in the same loop, interleaved, so drift hits all of them alike:

- dense:        F.linear with the full weight (the baseline of every speedup);
- masked:       dense plus weights *= mask after the update (what masked
                training costs; recorded for information);
- unstructured: torch.sparse CSR kernels for all three matmuls, the optimizer
                on the non-zeros only (sparsescale.kernels.csr);
- 2:4:          semi-structured kernels (sparsescale.sparsity.semi_structured),
                CUDA only; elsewhere recorded as skipped with the reason. The
                forward is sparse, the input gradient dense (the mask is 2:4
                along the input dim only), the weight gradient dense;
- 2:4T:         the same with a transposable mask (2:4 along both dims), so
                the input gradient runs on the 2:4 kernel as well.

speedup(pattern, S) = sum over shapes of dense time / sum of sparse time, the
ratio a model made of exactly these layers would see (see laws/costs.py).
"""

from __future__ import annotations

import math
import os
import platform
import statistics
import time
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

from sparsescale.errors import SparsescaleError
from sparsescale.kernels.csr import CsrLayout, csr_linear
from sparsescale.laws.costs import (
    FORMAT,
    SPEEDUP_DEFINITION,
    UNSTRUCTURED,
    canonical_pattern,
    speedups_from_dict,
)

Step = Callable[[], None]
CPU_SHAPES = ((512, 512, 2048), (512, 2048, 512))
CUDA_SHAPES = ((8192, 768, 3072), (8192, 3072, 768), (8192, 1024, 4096), (8192, 4096, 1024))
SPARSITIES = (0.5, 0.75, 0.9, 0.95, 0.99)


@dataclass
class BenchSettings:
    """What to time. shapes: (tokens, in_features, out_features)."""

    shapes: tuple[tuple[int, int, int], ...]
    sparsities: tuple[float, ...] = SPARSITIES
    patterns: tuple[str, ...] = (UNSTRUCTURED, "2:4")
    device: str = "cpu"
    repeats: int = 5
    warmup: int = 1
    min_sample_s: float = 0.02  # each sample runs enough steps to last this long
    seed: int = 0
    lr: float = 1e-3

    def __post_init__(self) -> None:
        if not self.shapes:
            raise SparsescaleError("shapes: give at least one (tokens, in, out)")
        for shape in self.shapes:
            if len(shape) != 3 or any(int(v) < 1 for v in shape):
                raise SparsescaleError(
                    f"shapes: {shape} is not three positive sizes (tokens, in, out)"
                )
        for s in self.sparsities:
            if not 0.0 < s < 1.0:
                raise SparsescaleError(f"sparsities: {s:g} is outside (0, 1)")
        if self.repeats < 1 or self.warmup < 0:
            raise SparsescaleError(
                f"repeats must be >= 1 and warmup >= 0, got {self.repeats} and {self.warmup}"
            )
        self.patterns = tuple(
            dict.fromkeys(canonical_pattern(p, "patterns") for p in self.patterns)
        )

    @property
    def compute_dtype(self) -> torch.dtype:
        return torch.bfloat16 if torch.device(self.device).type == "cuda" else torch.float32


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _nm_mask(out_f: int, in_f: int, n: int, m: int, gen: torch.Generator, device) -> torch.Tensor:
    """n kept in every m consecutive weights along the input dim, chosen at random."""
    if in_f % m:
        raise SparsescaleError(f"in_features {in_f} is not a multiple of m={m}")
    scores = torch.rand(out_f, in_f // m, m, generator=gen)
    keep = torch.zeros_like(scores, dtype=torch.bool).scatter_(
        -1, scores.topk(n, dim=-1).indices, True
    )
    return keep.reshape(out_f, in_f).to(device)


def _random_mask(
    out_f: int, in_f: int, sparsity: float, gen: torch.Generator, device
) -> torch.Tensor:
    kept = max(1, round((1.0 - sparsity) * out_f * in_f))
    idx = torch.randperm(out_f * in_f, generator=gen)[:kept]
    mask = torch.zeros(out_f * in_f, dtype=torch.bool)
    mask[idx] = True
    return mask.reshape(out_f, in_f).to(device)


def _step(
    param: torch.Tensor,
    forward: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    grad: torch.Tensor,
    lr: float,
    after: Callable[[], None] | None = None,
) -> Step:
    opt = torch.optim.AdamW([param], lr=lr)

    def run() -> None:
        forward(x).backward(grad)
        opt.step()
        opt.zero_grad(set_to_none=True)
        x.grad = None
        if after is not None:
            after()

    return run


def _variants(
    shape, settings: BenchSettings, gen: torch.Generator
) -> tuple[dict[str, Step], dict[str, str]]:
    """Named steps for one shape (all share x and the upstream gradient), and
    skip reasons for the variants that cannot run here."""
    tokens, in_f, out_f = shape
    dev, dt = torch.device(settings.device), settings.compute_dtype
    x = torch.randn(tokens, in_f, generator=gen).to(dev, dt).requires_grad_(True)
    grad = torch.randn(tokens, out_f, generator=gen).to(dev, dt)
    w0 = (torch.randn(out_f, in_f, generator=gen) / math.sqrt(in_f)).to(dev)
    steps: dict[str, Step] = {}
    skipped: dict[str, str] = {}
    w = w0.clone().requires_grad_(True)
    steps["dense"] = _step(w, lambda a, w=w: F.linear(a, w.to(dt)), x, grad, settings.lr)
    for pattern in settings.patterns:
        if pattern == UNSTRUCTURED:
            for s in settings.sparsities:
                steps.update(_unstructured(s, w0, x, grad, settings, gen))
        else:
            built, why = _semi_structured(pattern, w0, x, grad, settings, gen)
            steps.update(built)
            if why:
                skipped[pattern] = why
    return steps, skipped


def _unstructured(s: float, w0, x, grad, settings: BenchSettings, gen) -> dict[str, Step]:
    dt = settings.compute_dtype
    mask = _random_mask(*w0.shape, s, gen, w0.device)
    wm = (w0 * mask).requires_grad_(True)
    maskf = mask.to(wm.dtype)
    masked = _step(
        wm,
        lambda a: F.linear(a, wm.to(dt)),
        x,
        grad,
        settings.lr,
        after=lambda: wm.data.mul_(maskf),
    )
    layout = CsrLayout.from_mask(mask)
    values = layout.gather_values(w0).requires_grad_(True)
    sparse = _step(values, lambda a: csr_linear(a, values.to(dt), layout), x, grad, settings.lr)
    return {f"masked@{s:g}": masked, f"{UNSTRUCTURED}@{s:g}": sparse}


def pattern_unavailable(pattern: str, device) -> str | None:
    """Why no sparse kernel for `pattern` runs on `device`, or None."""
    from sparsescale.sparsity import semi_structured as semi

    if pattern == UNSTRUCTURED:
        return None
    if pattern not in ("2:4", "2:4T"):
        return (
            f"only 2:4 and 2:4T have a PyTorch sparse kernel (semi-structured); {pattern} has none"
        )
    return semi.unavailable_reason(device)


def _semi_structured(
    pattern: str, w0, x, grad, settings: BenchSettings, gen
) -> tuple[dict[str, Step], str | None]:
    from torch import nn

    from sparsescale.sparsity import semi_structured as semi

    why = pattern_unavailable(pattern, w0.device)
    if why is not None:
        return {}, why
    from sparsescale.sparsity.masks import parse_pattern, transposable_priority

    n, m = parse_pattern(pattern)
    # 2:4T: the solver's mask of the weight itself (any valid one times the same)
    mask = (
        transposable_priority(w0, n, m)
        if pattern.endswith("T")
        else _nm_mask(*w0.shape, n, m, gen, w0.device)
    )
    linear = nn.Linear(w0.shape[1], w0.shape[0], bias=False, device=w0.device)
    with torch.no_grad():
        linear.weight.copy_(w0 * mask)
    reason = semi.unswappable_reason(linear, mask, settings.compute_dtype)
    if reason is not None:
        return {}, reason
    module = semi.SemiStructuredLinear(linear, mask)
    maskf = mask.to(linear.weight.dtype)
    step = _step(
        module.weight, module, x, grad, settings.lr, after=lambda: module.weight.data.mul_(maskf)
    )
    return {f"{pattern}@{1 - n / m:g}": step}, None


def _calibrate(step: Step, settings: BenchSettings, dev: torch.device) -> int:
    """Warm up, then the number of steps one timed sample needs."""
    for _ in range(settings.warmup):
        step()
    _sync(dev)
    t0 = time.perf_counter()
    step()
    _sync(dev)
    return max(1, math.ceil(settings.min_sample_s / max(time.perf_counter() - t0, 1e-9)))


def time_steps(
    steps: dict[str, Step], settings: BenchSettings
) -> tuple[dict[str, float], dict[str, str]]:
    """Median milliseconds per step of each variant, timed interleaved, and
    the variants whose kernels refused to run here (name -> error)."""
    dev = torch.device(settings.device)
    inner: dict[str, int] = {}
    failed: dict[str, str] = {}
    for name, step in list(steps.items()):
        try:
            inner[name] = _calibrate(step, settings, dev)
        except (
            RuntimeError,
            NotImplementedError,
        ) as exc:  # e.g. a kernel missing for this dtype/device
            if name == "dense":
                raise
            failed[name] = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            del steps[name]
    samples: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(settings.repeats):
        for name, step in steps.items():
            _sync(dev)
            t0 = time.perf_counter()
            for _ in range(inner[name]):
                step()
            _sync(dev)
            samples[name].append((time.perf_counter() - t0) * 1e3 / inner[name])
    return {name: statistics.median(v) for name, v in samples.items()}, failed


def _load() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:  # not on every platform
        return None


def machine_info(device: str) -> dict:
    dev = torch.device(device)
    info = {
        "device": dev.type,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        # other processes skew timings; the load says how busy the machine was
        "load_average_1m_before": _load(),
    }
    if dev.type == "cuda":
        info["device_name"] = torch.cuda.get_device_name(dev)
        info["cuda"] = torch.version.cuda
        info["capability"] = ".".join(map(str, torch.cuda.get_device_capability(dev)))
    return info


def _aggregate(rows: list[dict], settings: BenchSettings) -> dict[str, dict[str, float]]:
    """speedup per (pattern, S) from summed times, only where every shape ran."""
    table: dict[str, dict[str, float]] = {}
    keys = {(r["pattern"], r["sparsity"]) for r in rows if r["pattern"] != "masked"}
    for pattern, s in sorted(keys):
        picked = [r for r in rows if r["pattern"] == pattern and r["sparsity"] == s]
        if len(picked) == len(settings.shapes):
            dense = sum(r["dense_ms"] for r in picked)
            table.setdefault(pattern, {})[f"{s:g}"] = dense / sum(r["step_ms"] for r in picked)
    return table


def memory_floor(settings: BenchSettings) -> tuple[float, tuple[int, int, int]]:
    """(bytes, shape): the least memory the largest shape holds at once, in
    float32 (bf16 halves only the activations; a floor ignores that): x and its
    gradient (2 t i), the upstream gradient and the output (2 t o), the shared
    dense weight, and for the dense step and each unstructured sparsity at least
    a weight, its gradient and AdamW's two moments (4 i o each), plus the
    randperm of i o int64 that draws a mask (2 i o in float32 units)."""
    variants = 1 + (len(settings.sparsities) if UNSTRUCTURED in settings.patterns else 0)

    def need(shape) -> float:
        t, i, o = (float(v) for v in shape)
        return 4.0 * (2 * t * i + 2 * t * o + i * o * (1 + 2 + 4 * variants))

    shape = max(settings.shapes, key=need)
    return need(shape), shape


def run_bench(settings: BenchSettings, progress: Callable[[str], None] | None = None) -> dict:
    """Time every variant at every shape; return the speedups document."""
    reasons = {p: pattern_unavailable(p, settings.device) for p in settings.patterns}
    if all(reasons.values()):  # say so before spending minutes on dense timings
        raise SparsescaleError(
            f"no pattern could be measured on {settings.device} ("
            + "; ".join(f"{k}: {v}" for k, v in reasons.items())
            + ")"
        )
    machine = machine_info(settings.device)
    torch.manual_seed(settings.seed)
    gen = torch.Generator().manual_seed(settings.seed)
    rows: list[dict] = []
    skipped: dict[str, str] = {}
    for shape in settings.shapes:
        if progress is not None:
            progress(f"shape {shape[0]}x{shape[1]}x{shape[2]} (tokens x in x out)")
        steps, why = _variants(shape, settings, gen)
        skipped.update(why)
        times, failed = time_steps(steps, settings)
        skipped.update(
            {f"{name} at {'x'.join(map(str, shape))}": err for name, err in failed.items()}
        )
        for name, ms in times.items():
            if name == "dense":
                continue
            pattern, s = name.split("@")
            rows.append(
                {
                    "shape": list(shape),
                    "pattern": pattern,
                    "sparsity": float(s),
                    "dense_ms": times["dense"],
                    "step_ms": ms,
                    "speedup": times["dense"] / ms,
                }
            )
    doc = {
        "format": FORMAT,
        "definition": SPEEDUP_DEFINITION,
        "machine": machine,
        "settings": {
            "shapes": [list(s) for s in settings.shapes],
            "sparsities": list(settings.sparsities),
            "patterns": list(settings.patterns),
            "compute_dtype": str(settings.compute_dtype).replace("torch.", ""),
            "weights_dtype": "float32",
            "optimizer": "AdamW",
            "repeats": settings.repeats,
            "warmup": settings.warmup,
            "seed": settings.seed,
            "timing": "median ms per step, interleaved",
        },
        "measurements": rows,
        "speedups": _aggregate(rows, settings),
        "skipped": skipped,
    }
    doc["machine"]["load_average_1m_after"] = _load()
    if not doc["speedups"]:
        reasons = "; ".join(f"{k}: {v}" for k, v in skipped.items()) or "nothing requested"
        raise SparsescaleError(f"no pattern could be measured on {settings.device} ({reasons})")
    speedups_from_dict(doc, "bench-kernels output")  # the file we write must load back
    return doc
