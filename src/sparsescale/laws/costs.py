"""Training cost from measured kernel speedups: c_mul(S) for the hardware at hand.

The planner prices a run as C = 6 N D c_mul(S) (N = non-zeros; see planning.py).
The "sparse" and "dense" accountings are idealisations. Here c_mul comes from a
speedups file written by `sparsescale bench-kernels`, where

    speedup(pattern, S) = time(dense step) / time(sparse step)

and a step is the forward + backward + optimizer update of the pruned linear
layers at the benchmarked shapes (summed over shapes), the dense step being the
same layers with full dense weights and the sparse step the pattern's sparse
kernels at sparsity S. The file records the machine and torch version.

Model. Let r(s) = 1 / speedup(s) be the relative step time at sparsity s,
interpolated linearly in s between measured points, r(0) = 1 (at s = 0 the
sparse step is the dense step), held at its last measured value beyond the
largest measured sparsity (no speedup is extrapolated). Over a run pruned by the
cubic schedule s(t) = S (1 - (1 - p)^3), the mean step time relative to dense is
R(S) = mean_t r(s(t)), and the dense step multiplies N / (1 - S) weights, so

    c_mul(S) = R(S) / (1 - S).

r(s) = 1 gives the dense accounting 1 / (1 - S); r(s) = 1 - s gives the sparse
accounting (1 - f S) / (1 - S), exactly, because r is linear there and the mean
of a cubic-schedule density is 1 - f S. Linear interpolation keeps that
exactness for any set of measured points on r = 1 - s.

n:m patterns (n weights KEPT in every group of m consecutive weights along the
input dimension; 2:4 keeps 2 of 4) can use their kernel only once the mask is
exactly n:m, i.e. after the ramp ends: R(S) = end + (1 - end) r(S), with r
interpolated over the pattern's measured points (S >= 1 - n/m).

The file (JSON; `bench-kernels` also stores its settings and raw timings):

    {"format": "sparsescale-speedups/1",
     "machine": {"device": "cuda", "device_name": "...", "torch": "..."},
     "speedups": {"unstructured": {"0.9": 1.6, "0.95": 2.1}, "2:4": {"0.5": 1.1}}}

so published speedups can be written by hand as well.

Where a kernel is slower than dense (speedup < 1, e.g. CSR at moderate
sparsity on a CPU), the trainer is assumed to keep the dense masked step:
r(s) = min(r_measured(s), 1) (`dense_fallback`, on by default; the file keeps
the raw measurements either way).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sparsescale.errors import SparsescaleError
from sparsescale.units import parse_pattern, pattern_name
from sparsescale.userfile import read_json

FORMAT = "sparsescale-speedups/1"
SPEEDUP_DEFINITION = (
    "speedup = time(dense step) / time(sparse step); a step is forward + backward + optimizer "
    "update "
    "of the pruned linear layers at the listed shapes, summed over shapes; the dense step uses "
    "full "
    "dense weights, the sparse step the pattern's sparse kernels at the given sparsity"
)
UNSTRUCTURED = "unstructured"

# Two-point Gauss-Legendre nodes and weights on [0, 1]: exact for cubics, and
# r(s(p)) is a cubic in p on every segment between knots.
_GL_NODES = np.array([0.5 - 0.5 / math.sqrt(3.0), 0.5 + 0.5 / math.sqrt(3.0)])
_GL_WEIGHTS = np.array([0.5, 0.5])


def is_speedups_file(path) -> bool:
    """Whether an existing file is a speedups document `bench-kernels` wrote
    (which it may replace; any other file it refuses to write over)."""
    from sparsescale.atomic import json_with_keys

    return json_with_keys("speedups", format=FORMAT)(path)


def canonical_pattern(pattern: str | None, what: str = "pattern") -> str:
    """'unstructured', 'n:m' or 'n:mT' (normalised spelling)."""
    return pattern_name(pattern, what) or UNSTRUCTURED


def _check_schedule(start: float, end: float) -> None:
    if not (0.0 <= start < end <= 1.0):
        raise SparsescaleError(
            f"schedule fractions need 0 <= start < end <= 1, got start={start}, end={end}"
        )


@dataclass(frozen=True)
class CostModel:
    """c_mul(S) from a relative step time r(s), piecewise linear through
    (knots, step_time). `final_only` marks an n:m kernel, used only once the
    mask is final (after `end`). Compatible with planning's c_mul/dlog_c_mul."""

    name: str
    knots: tuple[float, ...]
    step_time: tuple[float, ...]
    final_only: bool = False
    start: float = 0.25
    end: float = 0.75

    def __post_init__(self) -> None:
        _check_schedule(self.start, self.end)
        k = np.asarray(self.knots, dtype=float)
        r = np.asarray(self.step_time, dtype=float)
        if k.ndim != 1 or k.size == 0 or k.shape != r.shape or np.any(np.diff(k) <= 0):
            raise SparsescaleError("knots must be strictly increasing, one relative step time each")
        if not (np.all(np.isfinite(r)) and np.all(r >= 0)):
            raise SparsescaleError("relative step times must be finite and >= 0")

    def __str__(self) -> str:  # figure labels and records name the accounting, not the knots
        return self.name

    def relative_step_time(self, sparsity):
        """r(s) = time(sparse step at s) / time(dense step)."""
        return np.interp(np.asarray(sparsity, dtype=float), self.knots, self.step_time)

    def mean_step_time(self, sparsity):
        """R(S): r averaged over training under the cubic schedule to final S."""
        S = np.asarray(sparsity, dtype=float)
        # n:m: the mask is exactly n:m only once the ramp ends, so the kernel runs for
        # the last (1 - end) of training and every earlier step is dense, r(0).
        # Otherwise three phases by fraction of training: dense before `start`, the
        # cubic ramp from start to end, the final S after `end`.
        if self.final_only:
            return self.end * self.relative_step_time(0.0) + (
                1.0 - self.end
            ) * self.relative_step_time(S)
        before = self.relative_step_time(0.0)  # dense until the ramp starts
        ramp = self._ramp_mean(S)
        return (
            self.start * before
            + (self.end - self.start) * ramp
            + (1.0 - self.end) * self.relative_step_time(S)
        )

    # Why Gauss-Legendre is exact here: on the ramp s(p) = S (1 - (1 - p)^3)
    # is a cubic in p, and r is linear in s between knots, so r(s(p)) is a
    # cubic in p on each piece between the p where s(p) crosses a knot
    # (p = 1 - (1 - knot / S)^(1/3)). Two-point Gauss-Legendre integrates
    # cubics exactly, so the ramp mean is exact, not a quadrature estimate.
    def _ramp_mean(self, S):
        """Integral over p in [0, 1] of r(S (1 - (1 - p)^3)), exact for
        piecewise-linear r: split p where s(p) crosses a knot, Gauss-Legendre
        on each piece."""
        knots = np.asarray(self.knots, dtype=float)
        Sx = S[..., None]
        with np.errstate(divide="ignore", invalid="ignore"):
            # the p where s(p) reaches a knot solves (1 - p)^3 = 1 - knot / S; knots at
            # or above S clip to p = 1 (never reached), and at S = 0 all breaks sit at 1
            frac = np.where(Sx > 0, np.clip(knots / np.where(Sx > 0, Sx, 1.0), 0.0, 1.0), 1.0)
        breaks = np.sort(1.0 - np.cbrt(1.0 - frac), axis=-1)
        zeros, ones = np.zeros(S.shape + (1,)), np.ones(S.shape + (1,))
        edges = np.concatenate([zeros, breaks, ones], axis=-1)
        lo, width = edges[..., :-1], np.diff(edges, axis=-1)
        # shapes: K knots give K + 1 pieces per S, so p and s are (..., K + 1, 2),
        # two Gauss-Legendre nodes per piece
        p = lo[..., None] + width[..., None] * _GL_NODES
        s = S[..., None, None] * (1.0 - (1.0 - p) ** 3)
        return np.sum(width[..., None] * _GL_WEIGHTS * self.relative_step_time(s), axis=(-2, -1))

    # c_mul = R(S) / (1 - S): R is the step time relative to a dense step of
    # the SAME layer width, which multiplies N / (1 - S) weights; dividing by
    # the non-zeros N gives the dense-equivalent cost per non-zero.
    def c_mul(self, sparsity):
        """FLOP multiplier in C = 6 N D c_mul(S): dense-equivalent cost per non-zero."""
        S = np.asarray(sparsity, dtype=float)
        return self.mean_step_time(S) / (1.0 - S)

    # r has kinks at the knots, so no closed form holds everywhere; a central
    # difference of width 2e-6 is exact to O(h^2) between knots.
    def dlog_c_mul(self, sparsity, h: float = 1e-6):
        """d log c_mul / dS by central differences (r has kinks at the knots)."""
        S = np.asarray(sparsity, dtype=float)
        # clipped to [0, 1): c_mul has a pole at S = 1; dividing by the clipped width
        # keeps a one-sided difference at the ends a true slope
        lo, hi = np.maximum(S - h, 0.0), np.minimum(S + h, 1.0 - 1e-9)
        return (np.log(self.c_mul(hi)) - np.log(self.c_mul(lo))) / (hi - lo)


def dense_cost(start: float = 0.25, end: float = 0.75) -> CostModel:
    """No speedup from sparsity: c_mul = 1 / (1 - S)."""
    return CostModel("dense", (0.0, 1.0), (1.0, 1.0), start=start, end=end)


def sparse_cost(start: float = 0.25, end: float = 0.75) -> CostModel:
    """Step time proportional to density: c_mul = (1 - f S) / (1 - S)."""
    return CostModel("sparse", (0.0, 1.0), (1.0, 0.0), start=start, end=end)


@dataclass
class Speedups:
    """A validated speedups file: per pattern, sparsity -> speedup."""

    table: dict[str, dict[float, float]]
    machine: dict[str, Any] = field(default_factory=dict)
    source: str = "speedups"

    # The measured points become knots of r(s) = 1 / speedup, with r(0) = 1 (at
    # S = 0 the sparse step is the dense step); between knots r is linear, so
    # the schedule average in _ramp_mean stays exact.
    def cost_model(
        self,
        pattern: str = UNSTRUCTURED,
        start: float = 0.25,
        end: float = 0.75,
        dense_fallback: bool = True,
    ) -> CostModel:
        """c_mul for `pattern` under the cubic schedule (start, end).

        dense_fallback: where the sparse kernel is slower than dense (speedup
        < 1), the step runs dense, since a trainer keeps the masked-dense path
        wherever it is faster: r(s) = min(r_measured(s), 1). False prices the
        sparse kernel at every sparsity, as measured."""
        key = canonical_pattern(pattern)
        if key not in self.table:
            have = ", ".join(sorted(self.table)) or "none"
            raise SparsescaleError(
                f"{self.source}: no speedups measured for pattern {key!r} (has: {have})"
            )
        points = sorted(self.table[key].items())
        knots = [0.0] + [s for s, _ in points]
        times = [1.0] + [1.0 / v for _, v in points]
        nm = parse_pattern(key)
        if nm is not None:  # below the pattern's own sparsity the step is a masked-dense one
            # the extra knot 1e-12 below the first measured S makes r jump there
            # instead of interpolating linearly from r(0) = 1
            knots, times = [0.0, points[0][0] - 1e-12] + knots[1:], [1.0, 1.0] + times[1:]
        if dense_fallback:
            knots, times = _capped_at_dense(knots, times)
        name = f"measured:{key}" + ("" if dense_fallback else ":no-dense-fallback")
        return CostModel(
            name, tuple(knots), tuple(times), final_only=nm is not None, start=start, end=end
        )

    def c_mul(self, sparsity, pattern: str = UNSTRUCTURED, start: float = 0.25, end: float = 0.75):
        return self.cost_model(pattern, start, end).c_mul(sparsity)


# The dense fallback: a trainer whose sparse kernel is slower than the dense
# masked step keeps the dense step, so the step time is min(r, 1).
def _capped_at_dense(knots: list[float], times: list[float]) -> tuple[list[float], list[float]]:
    """min(r, 1) of a piecewise-linear r, still piecewise linear: a knot is
    added wherever a segment crosses 1, so the schedule average stays exact."""
    out_k, out_t = [knots[0]], [min(times[0], 1.0)]
    for k0, t0, k1, t1 in zip(knots, times, knots[1:], times[1:]):
        # the segment crosses r = 1 strictly inside: the crossing, by linear
        # interpolation, becomes a knot so min(r, 1) keeps its kink on a knot
        if (t0 - 1.0) * (t1 - 1.0) < 0:
            cross = k0 + (1.0 - t0) * (k1 - k0) / (t1 - t0)
            if out_k[-1] < cross < k1:
                out_k.append(cross)
                out_t.append(1.0)
        out_k.append(k1)
        out_t.append(min(t1, 1.0))
    return out_k, out_t


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise SparsescaleError(f"{where}: expected a number, got {value!r}")
    try:
        number = float(value)
    except ValueError:
        raise SparsescaleError(f"{where}: expected a number, got {value!r}") from None
    if not math.isfinite(number):
        raise SparsescaleError(f"{where}: {value!r} is not finite")
    return number


def _pattern_table(key: str, entries: Any, where: str) -> dict[float, float]:
    if not isinstance(entries, dict) or not entries:
        raise SparsescaleError(
            f"{where}: expected an object mapping sparsity to speedup, got {entries!r}"
        )
    nm = parse_pattern(key)
    # an n:m mask zeroes at least 1 - n/m of the weights, so no speedup can be
    # measured below that; unstructured masks start anywhere above 0
    least = 0.0 if nm is None else 1.0 - nm[0] / nm[1]
    out: dict[float, float] = {}
    for s_text, value in entries.items():
        s = _number(s_text, f"{where}: sparsity")
        if not (0.0 < s < 1.0):
            raise SparsescaleError(f"{where}: sparsity {s_text!r} is outside (0, 1)")
        if s < least - 1e-9:
            raise SparsescaleError(
                f"{where}: sparsity {s_text!r} is below {least:g}, the least pattern {key} gives"
            )
        speedup = _number(value, f"{where}[{s_text!r}]")
        if speedup <= 0:
            raise SparsescaleError(f"{where}[{s_text!r}]: speedup must be > 0, got {value!r}")
        if s in out:
            raise SparsescaleError(f"{where}: sparsity {s_text!r} given twice")
        out[s] = speedup
    return out


def speedups_from_dict(obj: Any, source: str = "speedups") -> Speedups:
    """Validate a parsed speedups document; errors name `source` and the key."""
    if not isinstance(obj, dict):
        raise SparsescaleError(f"{source}: expected a JSON object, got {type(obj).__name__}")
    if obj.get("format") != FORMAT:
        raise SparsescaleError(f"{source}: 'format' must be {FORMAT!r}, got {obj.get('format')!r}")
    table = obj.get("speedups")
    if not isinstance(table, dict) or not table:
        raise SparsescaleError(
            f"{source}: 'speedups' must be a non-empty object of pattern -> {{sparsity: speedup}}"
        )
    out: dict[str, dict[float, float]] = {}
    for key, entries in table.items():
        canon = canonical_pattern(key, f"{source}: speedups key")
        if canon in out:
            raise SparsescaleError(f"{source}: pattern {canon!r} given twice in 'speedups'")
        out[canon] = _pattern_table(canon, entries, f"{source}: speedups[{key!r}]")
    machine = obj.get("machine", {})
    if not isinstance(machine, dict):
        raise SparsescaleError(f"{source}: 'machine' must be an object")
    return Speedups(out, machine, source)


def load_speedups(path: str | Path) -> Speedups:
    """Read and validate a speedups JSON written by `sparsescale bench-kernels`."""
    p = Path(path)
    return speedups_from_dict(read_json(p, "speedups file"), str(p))
