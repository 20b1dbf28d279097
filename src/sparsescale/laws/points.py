"""The typed values every fit takes: the measured `Points` and the `FitOptions`.

A fit used to take four arrays and half a dozen loose keyword arguments, and
every layer (bootstrap, holdouts, calibration, comparison) passed them along
as **kwargs. These two records travel instead: what was measured, and how to
fit it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from sparsescale.errors import SparsescaleError

COLUMNS = ("sparsity", "n_nonzero", "data", "loss")


def _column(name: str, values, n: int | None) -> np.ndarray:
    """`values` as a flat float array, or SparsescaleError naming the column."""
    try:
        # reshape(-1): an (n, 1) column flattens to n values and a scalar to one;
        # the repr in the message is cut at 60 characters so a bad column stays readable
        arr = np.asarray(values, dtype=float).reshape(-1)
    except (TypeError, ValueError):
        raise SparsescaleError(f"expected numbers, got {values!r:.60}", param=name) from None
    if n is not None and arr.shape[0] != n:
        raise SparsescaleError(
            f"{arr.shape[0]} values, but loss has {n}; the columns must have the same length",
            param=name,
        )
    # NaN and inf are refused here, at the column and row that hold them, rather
    # than surfacing later as a fit that fails without saying where
    bad = np.flatnonzero(~np.isfinite(arr))
    if bad.size:
        raise SparsescaleError(f"row {bad[0] + 1} is {arr[bad[0]]} (not finite)", param=name)
    return arr


@dataclass(frozen=True, eq=False)
class Points:
    """Measured runs, one row each: final sparsity S of the pruned layers, their
    non-zero parameters N, the training data D (in the law's unit), the final
    loss; optionally each run's n:m pattern (n weights KEPT of every m along the
    input dimension; None for unstructured) and its dense prefix D0 (runs pruned
    from a dense model: D is then the total, D0 + the continuation).

    sparsity None means all 0 (a dense sweep). Lengths and finiteness are
    checked here, naming the column; the ranges a form needs (S < 1, N > 0)
    are the fitter's to check."""

    sparsity: Any
    n_nonzero: Any
    data: Any
    loss: Any
    pattern: tuple | None = None
    dense_tokens: Any = None

    # The dataclass is frozen (points travel between fits and must not change
    # under them), so the validated arrays are set with object.__setattr__.
    def __post_init__(self) -> None:
        # loss first: its length n is the one every other column is checked against
        # (the messages say "but loss has n")
        y = _column("loss", self.loss, None)
        n = y.shape[0]
        set_ = object.__setattr__
        set_(self, "loss", y)
        set_(
            self,
            "sparsity",
            np.zeros(n) if self.sparsity is None else _column("sparsity", self.sparsity, n),
        )
        set_(self, "n_nonzero", _column("n_nonzero", self.n_nonzero, n))
        set_(self, "data", _column("data", self.data, n))
        if self.dense_tokens is not None:
            set_(self, "dense_tokens", _column("dense_tokens", self.dense_tokens, n))
        # patterns stay a tuple of names (None per unstructured row), not an array:
        # laws.nm_patterns parses them where it needs n and m
        if self.pattern is not None:
            pattern = tuple(self.pattern)
            if len(pattern) != n:
                raise SparsescaleError(
                    f"{len(pattern)} values, but loss has {n}; the columns must have the same "
                    "length",
                    param="pattern",
                )
            set_(self, "pattern", pattern)

    def __len__(self) -> int:
        return int(self.loss.shape[0])

    @property
    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(sparsity, n_nonzero, data, loss)."""
        return self.sparsity, self.n_nonzero, self.data, self.loss

    def take(self, rows) -> "Points":
        """The points at `rows` (a boolean mask or indices)."""
        idx = (
            # a boolean mask becomes indices, so one path serves both and the pattern
            # tuple, which numpy cannot mask, is indexed row by row
            np.flatnonzero(rows) if np.asarray(rows).dtype == bool else np.asarray(rows, dtype=int)
        )
        return Points(
            self.sparsity[idx],
            self.n_nonzero[idx],
            self.data[idx],
            self.loss[idx],
            None if self.pattern is None else tuple(self.pattern[i] for i in idx),
            None if self.dense_tokens is None else self.dense_tokens[idx],
        )


@dataclass(frozen=True)
class FitOptions:
    """How to fit: the law form and residual space, and the optimiser's settings.

    form: a registered form name or "package.module:attribute" (laws.forms).
    space: "log" residuals log(pred) - log(loss) (language; Huber delta 1e-3 by
    default) or "linear" residuals pred - loss (vision; delta 1e-2).
    base: the law a refitting form keeps coefficients from (nm).
    mean_sparsity_fraction: the schedule's mean sparsity / S, read by forms that
    need the schedule (avgparam; None = 0.625, the cubic 25%-75% ramp).
    seed: shifts the low-discrepancy exponent candidates and seeds resampling.
    n_candidates, n_starts: exponent vectors scored, and the best distinct ones refined.
    units, tokens_per_unit: carried into the fitted law (see laws.law.Law).
    """

    form: str = "sparse"
    space: str = "log"
    # None: the space's default Huber delta (laws.fit.DEFAULT_DELTA)
    delta: float | None = None
    seed: int = 0
    base: Any = None
    mean_sparsity_fraction: float | None = None
    n_candidates: int = 4096
    n_starts: int = 32
    units: dict[str, str] | None = None
    tokens_per_unit: float | None = None

    def replace(self, **changes) -> "FitOptions":
        return dataclasses.replace(self, **changes)
