"""Sparsity schedules: which sparsity is applied at each training step.

Pure Python + numpy, no torch: `laws/planning.py` uses `mean_density` to derive
the training-cost multiplier of a schedule without importing torch.

Step convention: steps are 0-based, `total_steps` of them. `sparsity_at(step)` is
the sparsity the weights actually have after step `step` (the pruner recomputes
masks only on update steps, so between updates the value stays where the last
update put it). `target_at(step)` is the continuous formula.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sparsescale.errors import SparsescaleError

# the closed form of a cubic ramp's mean sparsity has one home, below torch (laws.schedule)
from sparsescale.laws.schedule import cubic_mean_sparsity_fraction

SCHEDULE_KINDS = ("cubic", "one-shot", "constant", "dense")


def _check_sparsity(sparsity: float, name: str = "sparsity") -> None:
    if not (isinstance(sparsity, (int, float)) and 0.0 <= float(sparsity) < 1.0):
        raise SparsescaleError(f"{name} must be in [0, 1), got {sparsity!r}")


def _check_total_steps(total_steps: int) -> None:
    if (
        not isinstance(total_steps, (int, np.integer))
        or isinstance(total_steps, bool)
        or total_steps < 1
    ):
        raise SparsescaleError(f"total_steps must be a positive integer, got {total_steps!r}")


@dataclass(frozen=True)
class CubicSchedule:
    """Gradual magnitude pruning schedule of Zhu & Gupta, as used by the paper.

    s(t) = S * (1 - (1 - p)^3), p = clip((t - t0) / (t1 - t0), 0, 1), with
    t0 = round(start * total_steps) and t1 = round(end * total_steps) (t1 capped at
    the last step so the final sparsity is always reached). Masks are recomputed
    on steps t0, t0 + every, t0 + 2*every, ... up to t1, and always at t1; between
    updates the applied sparsity stays at the last update's value.
    """

    sparsity: float
    total_steps: int
    start: float = 0.25
    end: float = 0.75
    every: int = 100

    def __post_init__(self) -> None:
        _check_sparsity(self.sparsity)
        _check_total_steps(self.total_steps)
        if not (0.0 <= self.start < 1.0):
            raise SparsescaleError(
                f"start must be a fraction of training in [0, 1), got {self.start!r}"
            )
        if not (0.0 < self.end <= 1.0):
            raise SparsescaleError(
                f"end must be a fraction of training in (0, 1], got {self.end!r}"
            )
        if self.start >= self.end:
            raise SparsescaleError(f"start ({self.start}) must be before end ({self.end})")
        if (
            not isinstance(self.every, (int, np.integer))
            or isinstance(self.every, bool)
            or self.every < 1
        ):
            raise SparsescaleError(
                f"every must be a positive integer number of steps, got {self.every!r}"
            )

    @property
    def start_step(self) -> int:
        return min(int(round(self.start * self.total_steps)), self.end_step)

    @property
    def end_step(self) -> int:
        return min(int(round(self.end * self.total_steps)), self.total_steps - 1)

    def target_at(self, step: int) -> float:
        """The continuous cubic formula at `step` (not rounded to update steps)."""
        t0, t1 = self.start_step, self.end_step
        if step >= t1:
            return float(self.sparsity)
        if step <= t0:
            return 0.0
        progress = (step - t0) / (t1 - t0)
        return float(self.sparsity * (1.0 - (1.0 - progress) ** 3))

    def is_update_step(self, step: int) -> bool:
        """True where the pruner recomputes masks from the current weights."""
        t0, t1 = self.start_step, self.end_step
        return step == t1 or (t0 <= step < t1 and (step - t0) % self.every == 0)

    def last_update_step(self, step: int) -> int | None:
        """The most recent update step <= `step`, or None before the first one."""
        t0, t1 = self.start_step, self.end_step
        if step < t0:
            return None
        if step >= t1:
            return t1
        return t0 + (step - t0) // self.every * self.every

    def sparsity_at(self, step: int) -> float:
        """Sparsity applied after training step `step` (piecewise constant)."""
        last = self.last_update_step(step)
        return 0.0 if last is None else self.target_at(last)

    def mean_density(self) -> float:
        """Mean over all training steps of 1 - s(t), as actually applied."""
        return _mean_density(self)


@dataclass(frozen=True)
class OneShotSchedule:
    """Dense until `at_step`, then the final sparsity at once (masks fixed after)."""

    sparsity: float
    total_steps: int
    at_step: int = 0

    def __post_init__(self) -> None:
        _check_sparsity(self.sparsity)
        _check_total_steps(self.total_steps)
        if not (0 <= self.at_step < self.total_steps):
            raise SparsescaleError(
                f"at_step must be in [0, total_steps={self.total_steps}), got {self.at_step!r}"
            )

    def target_at(self, step: int) -> float:
        return float(self.sparsity) if step >= self.at_step else 0.0

    def is_update_step(self, step: int) -> bool:
        return step == self.at_step

    def sparsity_at(self, step: int) -> float:
        return self.target_at(step)

    def mean_density(self) -> float:
        return _mean_density(self)


@dataclass(frozen=True)
class ConstantSchedule:
    """Static mask: the final sparsity from step 0 on, mask chosen once at step 0."""

    sparsity: float
    total_steps: int

    def __post_init__(self) -> None:
        _check_sparsity(self.sparsity)
        _check_total_steps(self.total_steps)

    def target_at(self, step: int) -> float:
        return float(self.sparsity)

    def is_update_step(self, step: int) -> bool:
        return step == 0

    def sparsity_at(self, step: int) -> float:
        return float(self.sparsity)

    def mean_density(self) -> float:
        return 1.0 - float(self.sparsity)


@dataclass(frozen=True)
class DenseSchedule:
    """No pruning at all: the dense baseline."""

    total_steps: int
    sparsity: float = 0.0

    def __post_init__(self) -> None:
        _check_total_steps(self.total_steps)
        if self.sparsity != 0.0:
            raise SparsescaleError(f"the dense schedule has sparsity 0, got {self.sparsity!r}")

    def target_at(self, step: int) -> float:
        return 0.0

    def is_update_step(self, step: int) -> bool:
        return False

    def sparsity_at(self, step: int) -> float:
        return 0.0

    def mean_density(self) -> float:
        return 1.0


Schedule = CubicSchedule | OneShotSchedule | ConstantSchedule | DenseSchedule


def _mean_density(schedule: Schedule) -> float:
    # Piecewise constant between update steps, so summing one value per step is
    # exact; vectorised because total_steps can be in the millions.
    steps = np.arange(schedule.total_steps)
    if isinstance(schedule, CubicSchedule):
        t0, t1, every = schedule.start_step, schedule.end_step, schedule.every
        last = np.where(steps >= t1, t1, t0 + (steps - t0) // every * every)
        if t1 > t0:
            progress = np.clip((last - t0) / (t1 - t0), 0.0, 1.0)
        else:
            progress = (last >= t1).astype(float)
        sparsity = schedule.sparsity * (1.0 - (1.0 - progress) ** 3)
        sparsity = np.where(steps < t0, 0.0, sparsity)
    else:
        sparsity = np.array([schedule.sparsity_at(int(t)) for t in steps])
    return float(1.0 - sparsity.mean())


def make_schedule(
    kind: str,
    sparsity: float,
    total_steps: int,
    *,
    start: float = 0.25,
    end: float = 0.75,
    every: int = 100,
    at_step: int = 0,
) -> Schedule:
    """Build a schedule by name: "cubic" (default recipe), "one-shot" (all at
    `at_step`), "constant" (static mask from step 0) or "dense" (no pruning)."""
    if kind == "cubic":
        return CubicSchedule(sparsity, total_steps, start=start, end=end, every=every)
    if kind == "one-shot":
        return OneShotSchedule(sparsity, total_steps, at_step=at_step)
    if kind == "constant":
        return ConstantSchedule(sparsity, total_steps)
    if kind == "dense":
        return DenseSchedule(total_steps)
    raise SparsescaleError(
        f"unknown schedule {kind!r}; expected one of {', '.join(SCHEDULE_KINDS)}"
    )


def mean_density(
    kind: str,
    sparsity: float,
    total_steps: int,
    *,
    start: float = 0.25,
    end: float = 0.75,
    every: int = 100,
    at_step: int = 0,
) -> float:
    """Mean of 1 - s(t) over training for a schedule given by name (see make_schedule)."""
    return make_schedule(
        kind, sparsity, total_steps, start=start, end=end, every=every, at_step=at_step
    ).mean_density()


__all__ = [
    "SCHEDULE_KINDS",
    "CubicSchedule",
    "OneShotSchedule",
    "ConstantSchedule",
    "DenseSchedule",
    "Schedule",
    "make_schedule",
    "mean_density",
    "cubic_mean_sparsity_fraction",
]
