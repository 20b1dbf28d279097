"""The paper's laws as presets, and loading a law by preset name or file."""

from __future__ import annotations

from pathlib import Path

from sparsescale.errors import SparsescaleError
from sparsescale.laws.law import Law
from sparsescale.laws.uncertainty.intervals import preset_uncertainty
from sparsescale.userfile import read_json

# The units matter for every use of these numbers: the T5 law's D is in
# training steps of 128 x 512 tokens and the ViT law's in images, and N is the
# non-zero parameters of the Transformer blocks' linear layers in both, so a
# budget in FLOPs converts through tokens_per_unit (laws.planning).
# Table 1 of arXiv 2309.08520, in raw units.
# The coefficients are Table 1's as printed (three significant digits), not a
# refit of the shipped sweeps: the refits reproduce them (tests/laws), but a
# preset is what the paper published.
PRESETS: dict[str, Law] = {
    "vit-jft": Law(
        form="sparse",
        name="vit-jft",
        coefficients={
            "aS": 2.94e2,
            "bS": 0.821,
            "cS": 4.68e2,
            "bN": 0.392,
            "aD": 2.37e8,
            "bD": 0.890,
            "c": 4.517,
        },
        units={
            "N": "non-zero parameters",
            "D": "images seen",
            "loss": "validation cross-entropy (JFT-4B)",
        },
        tokens_per_unit=197.0,  # ViT-B/16 at 224 px: 14 x 14 patches + the class token
    ),
    "t5-c4": Law(
        form="sparse",
        name="t5-c4",
        coefficients={
            "aS": 1.68e1,
            "bS": 0.722,
            "cS": 4.50e1,
            "bN": 0.245,
            "aD": 1.05e4,
            "bD": 0.203,
            "c": 0.651,
        },
        units={
            "N": "non-zero parameters",
            "D": "training steps (batch 128 x 512 tokens)",
            "loss": "validation cross-entropy (C4)",
        },
        tokens_per_unit=65536.0,  # 128 sequences x 512 tokens per step
    ),
}


# A preset is copied on every call: a caller may set its name, fit metadata or
# tokens_per_unit without changing what the next caller gets.
def preset(name: str) -> Law:
    """A fresh copy of a preset, with its shipped uncertainty."""
    if name not in PRESETS:
        raise SparsescaleError(
            f"unknown law preset {name!r}; presets are {', '.join(PRESETS)} (or give a LAW.json "
            "path)"
        )
    p = PRESETS[name]
    law = Law(
        form=p.form,
        coefficients=dict(p.coefficients),
        units=dict(p.units),
        name=p.name,
        tokens_per_unit=p.tokens_per_unit,
    )
    law.uncertainty = preset_uncertainty(name)
    return law


def load_law(spec: str | Path) -> Law:
    """A preset name (vit-jft, t5-c4) or the path of a law JSON file."""
    spec = str(spec)
    if spec in PRESETS:
        return preset(spec)
    path = Path(spec)
    # a bare word that is no file and no .json path is most likely a mistyped
    # preset: say so, rather than "file not found" for a file nobody meant
    if not path.exists() and path.suffix.lower() != ".json" and "/" not in spec:
        raise SparsescaleError(
            f"unknown law preset {spec!r}; presets are {', '.join(PRESETS)} (or give a LAW.json "
            "path)"
        )
    return Law.from_dict(read_json(spec, "law file"), source=spec)
