"""Scaling-law families, the paper's presets, and their JSON form.

Three forms share one shape: a sum of non-negative amplitudes times power-law
bases, plus (for the n:m refit) a fixed offset.

- ``sparse``: L(S, N, D) = (aS (1-S)^bS + cS) N^-bN + (aD / D)^bD + c
- ``dense`` (Chinchilla): L(N, D) = A N^-alpha + B D^-beta + E
- ``nm``: the sparse form with a fixed dense base (bN, aD, bD, c taken from a
  base law) and only aS, bS, cS free: for n:m and other sparsity structures.

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

COEFFICIENT_NAMES: dict[str, tuple[str, ...]] = {
    "sparse": ("aS", "bS", "cS", "bN", "aD", "bD", "c"),
    "dense": ("A", "alpha", "B", "beta", "E"),
    "nm": ("aS", "bS", "cS", "bN", "aD", "bD", "c"),
}
# The coefficients a fit of each form may change; the rest come from `base`.
FREE_COEFFICIENTS: dict[str, tuple[str, ...]] = {
    "sparse": COEFFICIENT_NAMES["sparse"],
    "dense": COEFFICIENT_NAMES["dense"],
    "nm": ("aS", "bS", "cS"),
}
FORMS = tuple(COEFFICIENT_NAMES)


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

    def __post_init__(self) -> None:
        if self.form not in COEFFICIENT_NAMES:
            raise SparsescaleError(f"unknown law form {self.form!r}; expected one of {', '.join(FORMS)}")
        expected = COEFFICIENT_NAMES[self.form]
        missing = [k for k in expected if k not in self.coefficients]
        if missing:
            raise SparsescaleError(f"law {self.name or self.form}: missing coefficient(s) {', '.join(missing)}")
        self.coefficients = {k: float(self.coefficients[k]) for k in expected}
        bad = [k for k, v in self.coefficients.items() if not math.isfinite(v)]
        if bad:
            raise SparsescaleError(f"law {self.name or self.form}: coefficient(s) {', '.join(bad)} not finite")
        if self.tokens_per_unit is not None:
            t = self.tokens_per_unit
            if isinstance(t, bool) or not isinstance(t, (int, float)) or not (math.isfinite(t) and t > 0):
                raise SparsescaleError(f"law {self.name or self.form}: tokens_per_unit must be a positive number, got {t!r}")
            self.tokens_per_unit = float(t)

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
        return (k["aS"] * (1.0 - S) ** k["bS"] + k["cS"]) * N ** -k["bN"] + (k["aD"] / D) ** k["bD"] + k["c"]

    def dense_view(self) -> dict[str, float]:
        """The law at S = 0 in Chinchilla names: A, alpha (= bN), aD, beta (= bD), E.

        For the dense form aD is B^(1/beta), so (aD/D)^beta = B D^-beta."""
        k = self.coefficients
        if self.form == "dense":
            return {"A": k["A"], "alpha": k["alpha"], "aD": k["B"] ** (1.0 / k["beta"]), "beta": k["beta"], "E": k["E"]}
        return {"A": k["aS"] + k["cS"], "alpha": k["bN"], "aD": k["aD"], "beta": k["bD"], "E": k["c"]}

    def sparsity_factor(self, sparsity) -> np.ndarray:
        """(aS (1-S)^bS + cS) / (aS + cS): how much the N-term shrinks at S."""
        if self.form == "dense":
            raise SparsescaleError("a dense law has no sparsity term; fit the sparse form")
        k = self.coefficients
        S = np.asarray(sparsity, dtype=float)
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
        try:
            law = cls(
                form=str(form),
                coefficients=coefs,
                units=dict(obj.get("units") or {}),
                name=str(obj.get("name") or Path(source).stem),
                fit=obj.get("fit"),
                tokens_per_unit=obj.get("tokens_per_unit"),
            )
            if obj.get("uncertainty") is not None:
                from sparsescale.laws.intervals import Uncertainty

                law.uncertainty = Uncertainty.from_dict(obj["uncertainty"], law.form)
            return law
        except SparsescaleError as exc:
            raise SparsescaleError(f"{source}: {exc}") from None

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2) + "\n"

    def save(self, path: str | Path) -> None:
        from sparsescale.atomic import write_text

        write_text(path, self.to_json())


FORMULAS = {
    "sparse": "L = (aS*(1-S)**bS + cS) * N**(-bN) + (aD/D)**bD + c",
    "dense": "L = A*N**(-alpha) + B*D**(-beta) + E",
    "nm": "L = (aS*(1-S)**bS + cS) * N**(-bN) + (aD/D)**bD + c  (bN, aD, bD, c fixed from a dense base)",
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
    if not path.exists():
        if path.suffix.lower() != ".json" and "/" not in spec:
            raise SparsescaleError(f"unknown law preset {spec!r}; presets are {', '.join(PRESETS)} (or give a LAW.json path)")
        raise SparsescaleError(f"{spec}: no such law file")
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise SparsescaleError(f"{spec}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SparsescaleError(f"{spec}: cannot read law file ({exc})") from None
    return Law.from_dict(obj, source=spec)
