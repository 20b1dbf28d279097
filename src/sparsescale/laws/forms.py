"""Scaling-law families, the paper's presets, and their JSON form.

Four forms share one shape: a sum of non-negative amplitudes times power-law
bases, plus (for the n:m refit) a fixed offset.

- ``sparse``: L(S, N, D) = (aS (1-S)^bS + cS) N^-bN + (aD / D)^bD + c
- ``dense`` (Chinchilla): L(N, D) = A N^-alpha + B D^-beta + E
- ``nm``: the sparse form with a fixed dense base (bN, aD, bD, c taken from a
  base law) and only aS, bS, cS free: for n:m and other sparsity structures.
- ``avgparam`` (Jin et al., ICLR 2025, arXiv 2501.12486): the Chinchilla form
  on the AVERAGE number of non-zero parameters over training,
  L = A N_avg^-alpha + B D^-beta + E, N_avg = N / (1 - S) * (1 - f S): the
  dense size times the schedule's mean density, where f is the schedule's mean
  sparsity as a fraction of its final S (`mean_sparsity_fraction`; 0.625 for
  the cubic 25%-75% ramp, see `schedule_mean_sparsity_fraction`).

S is the final sparsity of the pruned layers, N the number of NON-ZERO
parameters of those layers, D the training data (steps, tokens or examples,
as recorded in ``units``).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sparsescale.errors import SparsescaleError
from sparsescale.userfile import read_json

COEFFICIENT_NAMES: dict[str, tuple[str, ...]] = {
    "sparse": ("aS", "bS", "cS", "bN", "aD", "bD", "c"),
    "dense": ("A", "alpha", "B", "beta", "E"),
    "nm": ("aS", "bS", "cS", "bN", "aD", "bD", "c"),
    "avgparam": ("A", "alpha", "B", "beta", "E"),
}
# The coefficients a fit of each form may change; the rest come from `base`.
FREE_COEFFICIENTS: dict[str, tuple[str, ...]] = {
    "sparse": COEFFICIENT_NAMES["sparse"],
    "dense": COEFFICIENT_NAMES["dense"],
    "nm": ("aS", "bS", "cS"),
    "avgparam": COEFFICIENT_NAMES["avgparam"],
}
FORMS = tuple(COEFFICIENT_NAMES)

# The range in which each coefficient has a meaning (inclusive low unless noted):
# amplitudes and the loss floor are non-negative (a negative one predicts a loss
# that falls below its own floor, or below 0); decay exponents are positive (bN = 0
# or beta = 0 divides by zero in the planning formulas) and, like bS, at most
# EXPONENT_MAX: beyond it a power law is a step function no sweep could have fitted.
EXPONENT_MAX = 10.0
_AMPLITUDE = (0.0, math.inf, False)
_DECAY = (0.0, EXPONENT_MAX, True)  # low end exclusive
COEFFICIENT_RANGES: dict[str, tuple[float, float, bool]] = {
    "aS": _AMPLITUDE, "bS": (0.0, EXPONENT_MAX, False), "cS": _AMPLITUDE, "bN": _DECAY, "aD": _AMPLITUDE,
    "bD": _DECAY, "c": _AMPLITUDE, "A": _AMPLITUDE, "alpha": _DECAY, "B": _AMPLITUDE, "beta": _DECAY, "E": _AMPLITUDE,
}


def check_coefficients(coefficients: dict[str, float]) -> None:
    """Raise naming the first coefficient outside COEFFICIENT_RANGES."""
    for name, value in coefficients.items():
        if not math.isfinite(value):
            raise SparsescaleError(f"coefficient {name} is {value}, not a finite number")
        low, high, open_low = COEFFICIENT_RANGES[name]
        if value < low or (open_low and value == low) or value > high:
            bracket = "(" if open_low else "["
            raise SparsescaleError(f"coefficient {name} is {value:g}, outside {bracket}{low:g}, {high:g}]")
CUBIC_FRACTION = 0.625  # mean sparsity / S of the paper's cubic 25%-75% ramp


def schedule_mean_sparsity_fraction(kind: str = "cubic", start: float = 0.25, end: float = 0.75, at: float = 0.0) -> float:
    """Mean sparsity over training as a fraction of the final S, in the limit
    of many steps: cubic ramp from `start` to `end` (fractions of training):
    3/4 of the ramp plus everything after it; one-shot at fraction `at`: 1 - at;
    constant (a static mask from step 0): 1; dense: 0."""
    if kind == "cubic":
        if not (0.0 <= start < end <= 1.0):
            raise SparsescaleError(f"cubic needs 0 <= start < end <= 1, got start={start}, end={end}", param="schedule")
        return 0.75 * (end - start) + (1.0 - end)
    if kind == "one-shot":
        if not 0.0 <= at < 1.0:
            raise SparsescaleError(f"one-shot needs 0 <= at < 1, got {at}", param="schedule")
        return 1.0 - at
    if kind == "constant":
        return 1.0
    if kind == "dense":
        return 0.0
    raise SparsescaleError(f"unknown kind {kind!r}; expected cubic, one-shot, constant or dense", param="schedule")


@dataclass
class Law:
    """A scaling law: its form, coefficients in raw units, and provenance."""

    form: str
    coefficients: dict[str, float]
    units: dict[str, str] = field(default_factory=lambda: {"N": "non-zero parameters", "D": "tokens"})
    name: str = ""
    fit: dict[str, Any] | None = None  # metadata when the law came from a fit
    # What one unit of D costs: tokens processed per unit (1 for token counts,
    # 65,536 for a T5 step of 128 x 512 tokens, 197 for a ViT-B/16 image).
    # Training FLOPs are 6 N D tokens_per_unit c_mul(S); None = unknown, and
    # then only budgets relative to the dense compute-optimal one make sense.
    tokens_per_unit: float | None = None
    # Calibrated uncertainty (sparsescale.laws.intervals.Uncertainty) or None.
    uncertainty: Any = None
    # avgparam only: the schedule's mean sparsity as a fraction of S (N_avg).
    mean_sparsity_fraction: float | None = None

    def __post_init__(self) -> None:
        if self.form not in COEFFICIENT_NAMES:
            raise SparsescaleError(f"unknown law form {self.form!r}; expected one of {', '.join(FORMS)}")
        expected = COEFFICIENT_NAMES[self.form]
        missing = [k for k in expected if k not in self.coefficients]
        if missing:
            raise SparsescaleError(f"law {self.name or self.form}: missing coefficient(s) {', '.join(missing)}")
        self.coefficients = {k: float(self.coefficients[k]) for k in expected}
        try:
            check_coefficients(self.coefficients)
        except SparsescaleError as exc:
            raise SparsescaleError(f"law {self.name or self.form}: {exc}") from None
        if not isinstance(self.units, dict) or not all(isinstance(v, str) for v in self.units.values()):
            raise SparsescaleError(f"law {self.name or self.form}: units must be an object of strings, got {self.units!r}")
        if self.form == "avgparam":
            f = CUBIC_FRACTION if self.mean_sparsity_fraction is None else self.mean_sparsity_fraction
            if isinstance(f, bool) or not isinstance(f, (int, float)) or not 0.0 <= f <= 1.0:
                raise SparsescaleError(f"law {self.name or self.form}: mean_sparsity_fraction must be in [0, 1], got {f!r}")
            self.mean_sparsity_fraction = float(f)
        if self.tokens_per_unit is not None:
            self.tokens_per_unit = check_tokens_per_unit(self.tokens_per_unit, f"law {self.name or self.form}: tokens_per_unit")

    def __getitem__(self, key: str) -> float:
        return self.coefficients[key]

    # -- evaluation -----------------------------------------------------------
    def predict(self, sparsity, n_nonzero, data) -> np.ndarray:
        """Loss at (S, N, D); broadcasts over arrays. `sparsity` is ignored by
        the dense form."""
        S = np.asarray(sparsity, dtype=float)
        N = np.asarray(n_nonzero, dtype=float)
        D = np.asarray(data, dtype=float)
        k = self.coefficients
        if self.form == "dense":
            return k["A"] * N ** -k["alpha"] + k["B"] * D ** -k["beta"] + k["E"] + 0.0 * S
        if self.form == "avgparam":
            return k["A"] * self.n_avg(S, N) ** -k["alpha"] + k["B"] * D ** -k["beta"] + k["E"]
        return (k["aS"] * (1.0 - S) ** k["bS"] + k["cS"]) * N ** -k["bN"] + (k["aD"] / D) ** k["bD"] + k["c"]

    def n_avg(self, sparsity, n_nonzero) -> np.ndarray:
        """avgparam: the mean number of non-zeros over training, N / (1 - S) * (1 - f S)."""
        S = np.asarray(sparsity, dtype=float)
        return np.asarray(n_nonzero, dtype=float) * (1.0 - self.mean_sparsity_fraction * S) / (1.0 - S)

    def dense_view(self) -> dict[str, float]:
        """The law at S = 0 in Chinchilla names: A, alpha (= bN), aD, beta (= bD), E.

        For the dense form aD is B^(1/beta), so (aD/D)^beta = B D^-beta."""
        k = self.coefficients
        if self.form in ("dense", "avgparam"):
            return {"A": k["A"], "alpha": k["alpha"], "aD": k["B"] ** (1.0 / k["beta"]), "beta": k["beta"], "E": k["E"]}
        return {"A": k["aS"] + k["cS"], "alpha": k["bN"], "aD": k["aD"], "beta": k["bD"], "E": k["c"]}

    def sparsity_factor(self, sparsity) -> np.ndarray:
        """(aS (1-S)^bS + cS) / (aS + cS): how much the N-term shrinks at S
        (avgparam: (N_avg / N)^-alpha)."""
        if self.form == "dense":
            raise SparsescaleError("a dense law has no sparsity term; fit the sparse form")
        k = self.coefficients
        S = np.asarray(sparsity, dtype=float)
        if self.form == "avgparam":
            return self.n_avg(S, 1.0) ** -k["alpha"]
        return (k["aS"] * (1.0 - S) ** k["bS"] + k["cS"]) / (k["aS"] + k["cS"])

    # -- persistence ----------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "form": self.form,
            "name": self.name,
            "formula": FORMULAS[self.form],
            "coefficients": dict(self.coefficients),
            "units": dict(self.units),
        }
        if self.tokens_per_unit is not None:
            out["tokens_per_unit"] = self.tokens_per_unit
        if self.form == "avgparam":
            out["mean_sparsity_fraction"] = self.mean_sparsity_fraction
        if self.fit is not None:
            out["fit"] = self.fit
        if self.uncertainty is not None:
            out["uncertainty"] = self.uncertainty.to_dict()
        return out

    @classmethod
    def from_dict(cls, obj: Any, source: str = "law") -> "Law":
        if not isinstance(obj, dict):
            raise SparsescaleError(f"{source}: expected a JSON object with 'form' and 'coefficients'")
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
                raise SparsescaleError(f"{source}: coefficient {key!r} = {value:g} is not a finite number of "
                                       f"magnitude at most {MAX_COEFFICIENT:g}")
        units = obj.get("units", {})
        if not isinstance(units, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in units.items()):
            raise SparsescaleError(f"{source}: 'units' must be an object of strings (N, D, loss), got {units!r:.60}")
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
                from sparsescale.laws.intervals import Uncertainty

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


MAX_COEFFICIENT = 1e100   # the bound on a law file's coefficients (Law.from_dict)
# A unit of D from a character (a quarter of a token) to a whole corpus
# (1e15 tokens) fits well inside; outside it a budget in FLOPs / tokens_per_unit
# underflows or overflows (1e-320 is a denormal: 1 / it is inf).
TOKENS_PER_UNIT_RANGE = (1e-9, 1e18)


def check_tokens_per_unit(t: Any, what: str = "tokens_per_unit") -> float:
    """`t` as a float, or SparsescaleError naming `what` unless it is a number in TOKENS_PER_UNIT_RANGE."""
    lo, hi = TOKENS_PER_UNIT_RANGE
    if isinstance(t, bool) or not isinstance(t, (int, float)) or not (math.isfinite(t) and lo <= t <= hi):
        raise SparsescaleError(f"{what}: must be a number of tokens between {lo:g} and {hi:g}, got {t!r}")
    return float(t)


FORMULAS = {
    "sparse": "L = (aS*(1-S)**bS + cS) * N**(-bN) + (aD/D)**bD + c",
    "dense": "L = A*N**(-alpha) + B*D**(-beta) + E",
    "nm": "L = (aS*(1-S)**bS + cS) * N**(-bN) + (aD/D)**bD + c  (bN, aD, bD, c fixed from a dense base)",
    "avgparam": "L = A*N_avg**(-alpha) + B*D**(-beta) + E,  N_avg = N/(1-S)*(1-f*S)  (f: the schedule's mean sparsity / S)",
}

# Table 1 of arXiv 2309.08520, in raw units.
PRESETS: dict[str, Law] = {
    "vit-jft": Law(
        form="sparse",
        name="vit-jft",
        coefficients={"aS": 2.94e2, "bS": 0.821, "cS": 4.68e2, "bN": 0.392, "aD": 2.37e8, "bD": 0.890, "c": 4.517},
        units={"N": "non-zero parameters", "D": "images seen", "loss": "validation cross-entropy (JFT-4B)"},
        tokens_per_unit=197.0,  # ViT-B/16 at 224 px: 14 x 14 patches + the class token
    ),
    "t5-c4": Law(
        form="sparse",
        name="t5-c4",
        coefficients={"aS": 1.68e1, "bS": 0.722, "cS": 4.50e1, "bN": 0.245, "aD": 1.05e4, "bD": 0.203, "c": 0.651},
        units={"N": "non-zero parameters", "D": "training steps (batch 128 x 512 tokens)", "loss": "validation cross-entropy (C4)"},
        tokens_per_unit=65536.0,  # 128 sequences x 512 tokens per step
    ),
}


def preset(name: str) -> Law:
    if name not in PRESETS:
        raise SparsescaleError(f"unknown law preset {name!r}; presets are {', '.join(PRESETS)} (or give a LAW.json path)")
    p = PRESETS[name]
    law = Law(form=p.form, coefficients=dict(p.coefficients), units=dict(p.units), name=p.name,
              tokens_per_unit=p.tokens_per_unit)
    from sparsescale.laws.intervals import preset_uncertainty

    law.uncertainty = preset_uncertainty(name)
    return law


def load_law(spec: str | Path) -> Law:
    """A preset name (vit-jft, t5-c4) or the path of a law JSON file."""
    spec = str(spec)
    if spec in PRESETS:
        return preset(spec)
    path = Path(spec)
    if not path.exists() and path.suffix.lower() != ".json" and "/" not in spec:
        raise SparsescaleError(f"unknown law preset {spec!r}; presets are {', '.join(PRESETS)} (or give a LAW.json path)")
    return Law.from_dict(read_json(spec, "law file"), source=spec)
