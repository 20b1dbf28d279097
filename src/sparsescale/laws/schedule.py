"""The pruning schedule as the laws see it: its mean sparsity over training.

The one definition of the schedule's mean sparsity fraction f (mean of s(t) / S
over training). The cost model uses it (sparse FLOPs scale with the mean
density 1 - f S), the average-parameter law uses it (N_avg = N / (1-S) (1 - f S))
and the torch-side schedules re-export it (sparsity/schedules.py).

Derivation for the paper's cubic ramp (Zhu and Gupta 2017). With t the fraction
of training and p = (t - start) / (end - start) clipped to [0, 1], the sparsity
is s(t) = S (1 - (1 - p)^3). Over the ramp,

    integral_0^1 (1 - (1 - p)^3) dp = 1 - 1/4 = 3/4,

so the ramp contributes 3/4 S times its length (end - start); before `start`
the model is dense (0) and after `end` the full S holds (1 - end). Hence

    f = 3/4 (end - start) + (1 - end),

and for the default start = 0.25, end = 0.75: f = 3/4 * 0.5 + 0.25 = 0.625.
This is the limit of many steps; a finite schedule that updates every k steps
holds each level a little longer (sparsity/schedules.py computes it exactly).
"""

from __future__ import annotations

from sparsescale.errors import SparsescaleError

CUBIC_FRACTION = 0.625  # f of the paper's cubic 25%-75% ramp (see the module docstring)


def cubic_mean_sparsity_fraction(start: float = 0.25, end: float = 0.75) -> float:
    """f = 3/4 (end - start) + (1 - end) of a cubic ramp from `start` to `end`
    (fractions of training), in the limit of many steps."""
    if not (0.0 <= start < end <= 1.0):
        raise SparsescaleError(f"need 0 <= start < end <= 1, got start={start}, end={end}")
    return 0.75 * (end - start) + (1.0 - end)


def schedule_mean_sparsity_fraction(
    kind: str = "cubic", start: float = 0.25, end: float = 0.75, at: float = 0.0
) -> float:
    """Mean sparsity over training as a fraction of the final S, in the limit
    of many steps: cubic ramp from `start` to `end` (fractions of training):
    3/4 of the ramp plus everything after it; one-shot at fraction `at`: 1 - at
    (dense before, S after); constant (a static mask from step 0): 1; dense: 0."""
    if kind == "cubic":
        if not (0.0 <= start < end <= 1.0):
            raise SparsescaleError(
                f"cubic needs 0 <= start < end <= 1, got start={start}, end={end}",
                param="schedule",
            )
        return cubic_mean_sparsity_fraction(start, end)
    if kind == "one-shot":
        if not 0.0 <= at < 1.0:
            raise SparsescaleError(f"one-shot needs 0 <= at < 1, got {at}", param="schedule")
        return 1.0 - at
    if kind == "constant":
        return 1.0
    if kind == "dense":
        return 0.0
    raise SparsescaleError(
        f"unknown kind {kind!r}; expected cubic, one-shot, constant or dense", param="schedule"
    )


# f is a fraction of the final S: 0 is a dense run until the end (N_avg = N / (1-S),
# the full dense size), 1 a mask fixed from the first step (N_avg = N).
def check_mean_sparsity_fraction(f, what: str = "mean_sparsity_fraction") -> float:
    """f as a float (None: the cubic default), or SparsescaleError unless it is in [0, 1]."""
    f = CUBIC_FRACTION if f is None else f
    if isinstance(f, bool) or not isinstance(f, (int, float)) or not 0.0 <= f <= 1.0:
        raise SparsescaleError(f"{what} must be in [0, 1], got {f!r}")
    return float(f)


# N_avg per point: the time average of the non-zeros, dense size x mean density.
def n_avg(sparsity, n_nonzero, f):
    """The mean number of non-zeros over training: the dense size N / (1 - S)
    times the mean density 1 - f S."""
    return n_nonzero * (1.0 - f * sparsity) / (1.0 - sparsity)
