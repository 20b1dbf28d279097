"""A scaling law: its form, coefficients in raw units, provenance, and JSON.

What a law computes comes from its form (laws.forms); this module holds what
every law has whatever its form: the coefficients checked against the form's
ranges, the units of N and D, what one unit of D costs in tokens, the fit
metadata and the calibrated uncertainty, and the file format.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sparsescale.errors import SparsescaleError
from sparsescale.laws.forms import get_form
from sparsescale.laws.forms.base import LawForm
from sparsescale.laws.schedule import check_mean_sparsity_fraction, n_avg
from sparsescale.laws.uncertainty.intervals import Uncertainty

MAX_COEFFICIENT = 1e100  # the bound on a law file's coefficients (Law.from_dict)
# A unit of D from a character (a quarter of a token) to a whole corpus
# (1e15 tokens) fits well inside; outside it a budget in FLOPs / tokens_per_unit
# underflows or overflows (1e-320 is a denormal: 1 / it is inf).
TOKENS_PER_UNIT_RANGE = (1e-9, 1e18)


def check_tokens_per_unit(t: Any, what: str = "tokens_per_unit") -> float:
    """`t` as a float, or SparsescaleError naming `what` unless it is a number in
    TOKENS_PER_UNIT_RANGE."""
    lo, hi = TOKENS_PER_UNIT_RANGE
    if (
        isinstance(t, bool)
        or not isinstance(t, (int, float))
        or not (math.isfinite(t) and lo <= t <= hi)
    ):
        raise SparsescaleError(
            f"{what}: must be a number of tokens between {lo:g} and {hi:g}, got {t!r}"
        )
    return float(t)


@dataclass
class Law:
    """A scaling law: its form, coefficients in raw units, and provenance."""

    form: str
    coefficients: dict[str, float]
    units: dict[str, str] = field(
        default_factory=lambda: {"N": "non-zero parameters", "D": "tokens"}
    )
    name: str = ""
    fit: dict[str, Any] | None = None  # metadata when the law came from a fit
    # What one unit of D costs: tokens processed per unit (1 for token counts,
    # 65,536 for a T5 step of 128 x 512 tokens, 197 for a ViT-B/16 image).
    # Training FLOPs are 6 N D tokens_per_unit c_mul(S); None = unknown, and
    # then only budgets relative to the dense compute-optimal one make sense.
    tokens_per_unit: float | None = None
    # Calibrated uncertainty (sparsescale.laws.uncertainty.intervals.Uncertainty) or None.
    uncertainty: Any = None
    # Forms that read the schedule (avgparam): its mean sparsity as a fraction of S.
    mean_sparsity_fraction: float | None = None

    def __post_init__(self) -> None:
        spec = get_form(self.form)
        who = f"law {self.name or self.form}"
        missing = [k for k in spec.coefficients if k not in self.coefficients]
        if missing:
            raise SparsescaleError(f"{who}: missing coefficient(s) {', '.join(missing)}")
        self.coefficients = {k: float(self.coefficients[k]) for k in spec.coefficients}
        try:
            spec.check_coefficients(self.coefficients)
        except SparsescaleError as exc:
            raise SparsescaleError(f"{who}: {exc}") from None
        if not isinstance(self.units, dict) or not all(
            isinstance(v, str) for v in self.units.values()
        ):
            raise SparsescaleError(f"{who}: units must be an object of strings, got {self.units!r}")
        if spec.needs_schedule:
            self.mean_sparsity_fraction = check_mean_sparsity_fraction(
                self.mean_sparsity_fraction, f"{who}: mean_sparsity_fraction"
            )
        if self.tokens_per_unit is not None:
            self.tokens_per_unit = check_tokens_per_unit(
                self.tokens_per_unit, f"{who}: tokens_per_unit"
            )

    @property
    def spec(self) -> LawForm:
        """The law's form record (laws.forms)."""
        return get_form(self.form)

    def __getitem__(self, key: str) -> float:
        return self.coefficients[key]

    def with_coefficients(self, coefficients: dict[str, float]) -> "Law":
        """The same law (form, units, costs, schedule) with other coefficients: a bootstrap draw."""
        return Law(
            form=self.form,
            coefficients=dict(coefficients),
            units=self.units,
            tokens_per_unit=self.tokens_per_unit,
            mean_sparsity_fraction=self.mean_sparsity_fraction,
        )

    # -- evaluation -----------------------------------------------------------
    # Everything a law computes comes from its form: the Law holds the numbers
    # and the provenance, the form (self.spec) the formula.
    def predict(self, sparsity, n_nonzero, data) -> np.ndarray:
        """Loss at (S, N, D); broadcasts over arrays. Forms that ignore S (dense)
        still broadcast over it."""
        S, N, D = (np.asarray(a, dtype=float) for a in (sparsity, n_nonzero, data))
        return self.spec.predict(self.coefficients, S, N, D, self.mean_sparsity_fraction)

    def n_avg(self, sparsity, n_nonzero) -> np.ndarray:
        """The mean number of non-zeros over training under the law's schedule,
        N / (1 - S) * (1 - f S) (laws.schedule)."""
        f = check_mean_sparsity_fraction(self.mean_sparsity_fraction)
        return n_avg(np.asarray(sparsity, dtype=float), np.asarray(n_nonzero, dtype=float), f)

    def dense_view(self) -> dict[str, float]:
        """The law at S = 0 in Chinchilla names: A, alpha, aD, beta, E, with the
        data term written (aD / D)^beta."""
        return self.spec.dense_view(self.coefficients)

    def sparsity_factor(self, sparsity) -> np.ndarray:
        """F(S): how much the N-term shrinks at S relative to S = 0 (the sparse
        law: (aS (1-S)^bS + cS) / (aS + cS))."""
        spec = self.spec
        if spec.sparsity_factor is None:
            raise SparsescaleError(f"a {self.form} law has no sparsity term; fit the sparse form")
        return spec.sparsity_factor(
            self.coefficients, np.asarray(sparsity, dtype=float), self.mean_sparsity_fraction
        )

    def sparsity_factor_slope(self, sparsity) -> np.ndarray:
        """-dF/dS (see sparsity_factor)."""
        spec = self.spec
        if spec.sparsity_factor_slope is None:
            raise SparsescaleError(f"a {self.form} law has no sparsity term; fit the sparse form")
        return spec.sparsity_factor_slope(
            self.coefficients, np.asarray(sparsity, dtype=float), self.mean_sparsity_fraction
        )

    # -- persistence ----------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "form": self.form,
            "name": self.name,
            "formula": self.spec.formula,
            "coefficients": dict(self.coefficients),
            "units": dict(self.units),
        }
        if self.tokens_per_unit is not None:
            out["tokens_per_unit"] = self.tokens_per_unit
        if self.spec.needs_schedule:
            out["mean_sparsity_fraction"] = self.mean_sparsity_fraction
        if self.fit is not None:
            out["fit"] = self.fit
        if self.uncertainty is not None:
            out["uncertainty"] = self.uncertainty.to_dict()
        return out

    # Law files written by older versions load unchanged: the keys are the same
    # (form, coefficients, units, tokens_per_unit, mean_sparsity_fraction, fit,
    # uncertainty); "formula" is written for readers and ignored on load.
    @classmethod
    def from_dict(cls, obj: Any, source: str = "law") -> "Law":
        if not isinstance(obj, dict):
            raise SparsescaleError(
                f"{source}: expected a JSON object with 'form' and 'coefficients'"
            )
        form = obj.get("form")
        coefs = obj.get("coefficients")
        if form is None or not isinstance(coefs, dict):
            raise SparsescaleError(f"{source}: needs keys 'form' and 'coefficients' (an object)")
        for key, value in coefs.items():
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                raise SparsescaleError(f"{source}: coefficient {key!r} is not a number")
            # Far beyond any law in raw units (the paper's largest is 2.4e8): a loss
            # computed with it is overflow, not a prediction.
            if not math.isfinite(value) or abs(value) > MAX_COEFFICIENT:
                raise SparsescaleError(
                    f"{source}: coefficient {key!r} = {value:g} is not a finite number of "
                    f"magnitude at most {MAX_COEFFICIENT:g}"
                )
        units = obj.get("units", {})
        if not isinstance(units, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in units.items()
        ):
            raise SparsescaleError(
                f"{source}: 'units' must be an object of strings (N, D, loss), got {units!r:.60}"
            )
        if not isinstance(obj.get("fit") or {}, dict):
            raise SparsescaleError(f"{source}: 'fit' must be an object")
        try:
            law = cls(
                form=str(form),
                coefficients=coefs,
                units=dict(units),
                name=str(obj.get("name") or Path(source).stem),
                fit=obj.get("fit"),
                tokens_per_unit=obj.get("tokens_per_unit"),
                mean_sparsity_fraction=obj.get("mean_sparsity_fraction"),
            )
            if obj.get("uncertainty") is not None:
                law.uncertainty = Uncertainty.from_dict(obj["uncertainty"], law.form)
            return law
        except SparsescaleError as exc:
            raise SparsescaleError(f"{source}: {exc}") from None

    def to_json(self) -> str:
        """Valid JSON always: a non-finite number in the fit metadata is null
        (the CLI warns; see laws.jsonsafe)."""
        from sparsescale.laws.jsonsafe import finite_json

        return json.dumps(finite_json(self.to_dict())[0], indent=2, allow_nan=False) + "\n"

    @staticmethod
    def is_file(path: str | Path) -> bool:
        """Whether an existing file is a law JSON (ours to replace with a new
        fit): an object with the 'form' and 'coefficients' that `save` writes."""
        from sparsescale.atomic import json_with_keys

        return json_with_keys("form", "coefficients", "formula")(Path(path))

    def save(self, path: str | Path) -> None:
        from sparsescale.atomic import write_text

        write_text(path, self.to_json())
