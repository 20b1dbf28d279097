"""What a law form is: the `LawForm` record every form module fills in.

A form is everything the rest of `laws/` needs to know about one shape of
scaling law, so that nothing outside the form's own module branches on its
name: the coefficient names, which of them a fit may change, where each has a
meaning, the formula as text, how it predicts (over points and over a matrix
of bootstrap draws), its dense (S = 0) view, and the pieces the
variable-projection fitter works with.

The fitter's view of a form. Every form here is a sum of non-negative linear
amplitudes times power-law bases, plus an offset that holds no free parameter:

    pred(x) = sum_j a_j phi_j(x; e) + offset(x)

with e the exponents. For fixed e the amplitudes a enter linearly, so the fitter
solves them exactly (a non-negative least-squares problem, see fit.py) and
searches only over e: "variable projection". A form therefore supplies

- `basis(design, E)`: phi_j for G exponent vectors at once, (G, n, k);
- `exponent_jacobian(design, terms, out)`: d pred / d e_i for each exponent, from
  the amplitude-weighted terms a_j phi_j (a power law's derivative in its
  exponent is the term times the log of its base, so no new powers are needed);
- `to_coefficients` / `from_coefficients`: the change between the fitter's
  normalised parameters (amplitudes in units of N / n_scale and D / d_scale) and
  the law's raw-unit coefficients. The derivation of each sits in its module.

Forms whose law also depends on the training schedule (avgparam, through the
schedule's mean sparsity fraction f) set `needs_schedule`; forms that refit on a
fixed base law (nm) set `base_forms` and compute their offset in `prepare`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import numpy as np

from sparsescale.errors import SparsescaleError

# The range in which each coefficient has a meaning, (low, high, low end open):
# amplitudes and the loss floor are non-negative (a negative one predicts a loss
# that falls below its own floor, or below 0); decay exponents are positive (bN = 0
# or beta = 0 divides by zero in the planning formulas) and, like bS, at most
# EXPONENT_MAX: beyond it a power law is a step function no sweep could have fitted.
EXPONENT_MAX = 10.0
AMPLITUDE = (0.0, math.inf, False)
DECAY = (0.0, EXPONENT_MAX, True)  # low end exclusive
SHAPE = (0.0, EXPONENT_MAX, False)  # an exponent that may be 0 (bS: flat in S)


@dataclass
class Design:
    """A form's inputs in the fitter's normalised units, computed once per fit.

    logN = log(N / n_scale), logD = log(D / d_scale), log1mS = log(1 - S);
    `fixed` holds coefficients a form keeps from its base law (nm: bN)."""

    log1mS: np.ndarray
    logN: np.ndarray
    logD: np.ndarray
    fixed: dict[str, float] = field(default_factory=dict)

    def subset(self, rows: np.ndarray) -> "Design":
        return Design(self.log1mS[rows], self.logN[rows], self.logD[rows], self.fixed)


@dataclass
class Prepared:
    """What `LawForm.prepare` returns: the inputs the basis sees (avgparam: N
    replaced by N_avg) and the offset (nm: the base law's data term and floor)."""

    sparsity: np.ndarray
    n_nonzero: np.ndarray
    data: np.ndarray
    offset: np.ndarray
    fixed: dict[str, float] = field(default_factory=dict)


def identity_prepare(S, N, D, base, f) -> Prepared:
    """The default: the inputs as given, no offset."""
    return Prepared(S, N, D, np.zeros_like(S))


@dataclass(frozen=True)
class LawForm:
    """One scaling-law form: a plug-in record (see the module docstring).

    predict(k, S, N, D, f): the loss; every value of k may be a float or a (B, 1)
    column of draws, so the same function predicts one law over points (n,) and
    B draws at once (B, n). f is the schedule's mean sparsity fraction (only
    forms with needs_schedule read it)."""

    name: str
    title: str  # how a verdict names it ("the paper's sparse law")
    coefficients: tuple[str, ...]  # all names, in law-file order
    free: tuple[str, ...]  # what a fit changes; the rest come from a base law
    amplitudes: tuple[str, ...]  # the fitter's linear amplitudes, in basis-column order
    exponents: tuple[str, ...]  # the fitter's exponents, in `exponent_jacobian` order
    exponent_bounds: tuple[tuple[float, float], ...]  # the search box of each exponent
    ranges: Mapping[str, tuple[float, float, bool]]  # where each coefficient has a meaning
    formula: str  # written into law files, intervals, CLI and report
    predict: Callable[..., Any]
    dense_view: Callable[[Mapping[str, float]], dict[str, float]]
    basis: Callable[[Design, np.ndarray], np.ndarray]
    exponent_jacobian: Callable[[Design, np.ndarray, np.ndarray], None]
    to_coefficients: Callable[..., dict[str, float]]
    from_coefficients: Callable[..., tuple[list[float], list[float]]]
    # N-term factor relative to S = 0, F(S), and its slope -dF/dS (planning's
    # S_opt and equivalent sizes); None for a form with no sparsity term
    sparsity_factor: Callable[..., Any] | None = None
    sparsity_factor_slope: Callable[..., Any] | None = None
    prepare: Callable[..., Prepared] = identity_prepare
    uses_sparsity: bool = True  # False: the law ignores S (distinct runs are (N, D))
    needs_schedule: bool = False  # the law reads the schedule's mean sparsity fraction
    base_forms: tuple[str, ...] = ()  # non-empty: a fit needs a base law of one of these forms

    @property
    def fixed(self) -> tuple[str, ...]:
        """Coefficients a fit keeps from its base law."""
        return tuple(n for n in self.coefficients if n not in self.free)

    def check_coefficients(self, coefficients: Mapping[str, float]) -> None:
        """Raise naming the first coefficient outside its range."""
        for name, value in coefficients.items():
            if not math.isfinite(value):
                raise SparsescaleError(f"coefficient {name} is {value}, not a finite number")
            low, high, open_low = self.ranges[name]
            if value < low or (open_low and value == low) or value > high:
                bracket = "(" if open_low else "["
                raise SparsescaleError(
                    f"coefficient {name} is {value:g}, outside {bracket}{low:g}, {high:g}]"
                )

    # Draws as columns: k[name] is a (B, 1) column and the inputs (1, n) rows,
    # so numpy broadcasting evaluates every draw at every point in one call of
    # the same `predict` a single law uses. A draw far from the data can
    # overflow (a large exponent on a small N); that is inf, not a warning.
    def predict_draws(
        self, draws: np.ndarray, sparsity, n_nonzero, data, f: float | None = None
    ) -> np.ndarray:
        """Predictions of B coefficient rows (columns in `coefficients` order) at
        n points: (B, n). A wild draw gives inf or nan, never a warning."""
        draws = np.asarray(draws, dtype=float)
        k = {name: draws[:, j : j + 1] for j, name in enumerate(self.coefficients)}
        S, N, D = (np.asarray(a, dtype=float).reshape(1, -1) for a in (sparsity, n_nonzero, data))
        with np.errstate(all="ignore"):
            return np.array(
                np.broadcast_to(self.predict(k, S, N, D, f), (draws.shape[0], S.shape[1]))
            )

    # A refit keeps its base's coefficients, so the base must have them: a
    # dense or avgparam law has no bN, aD, bD, c for an nm refit to keep.
    def check_base(self, base) -> None:
        """A form that refits on a base law needs one of `base_forms`."""
        if not self.base_forms:
            return
        keeps = ", ".join(self.fixed)
        if base is None:
            raise SparsescaleError(
                f"the {self.name} form needs a base law (a fitted {self.base_forms[0]} law "
                f"that fixes {keeps})",
                param="base",
            )
        if base.form not in self.base_forms:
            raise SparsescaleError(
                f"the {self.name} form refits a {self.base_forms[0]}-form base law (it keeps "
                f"{keeps}); got form {base.form!r}",
                param="base",
            )
