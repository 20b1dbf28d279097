"""The paper's two published sweeps, shipped in the package (laws/paperdata).

`paper:t5` and `paper:vit` name them wherever a data file is expected; each
comes with the column expressions and the fit settings the paper used, so a
fresh install can refit, check and calibrate the law without any download.
Read with the standard library only: no pandas, no torch.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from importlib import resources

import numpy as np

from sparsescale.errors import SparsescaleError

# N of the paper's sweeps: the pruned layers are the Transformer blocks'
# linear weights. A block of width d has 4 d^2 attention weights (q, k, v, o)
# and 8 d^2 MLP weights (d -> 4d -> d): 12 d^2. T5-base has 12 encoder and 12
# decoder layers at d = 768 (the decoder's cross-attention is not counted, as
# in the paper); the data files give `scale`, the width multiplier squared, and
# N = blocks x 12 d^2 x scale x (1 - S) non-zeros.
T5_BLOCK_PARAMS = 24 * 12 * 768**2  # T5-base: 12 + 12 layers of 12 d^2 block-linear weights
VIT_BLOCK_PARAMS = 12 * 12 * 768**2  # ViT-B/16: 12 layers


@dataclass(frozen=True)
class PaperSweep:
    name: str
    file: str
    sparsity: str
    params: str  # expression over the file's columns for N (non-zeros)
    data: str
    loss: str
    # the paper's fit settings: log residuals with Huber delta 1e-3 for T5
    # (language), linear residuals with delta 1e-2 for ViT (vision)
    space: str
    delta: float
    tokens_per_unit: float
    units: dict
    preset: str  # the Table 1 law fitted on this sweep
    # the sweep-spec axis its D is counted in (steps | examples | tokens)
    budget_axis: str = "steps"


PAPER_SWEEPS = {
    "t5": PaperSweep(
        "t5",
        "t5-data.csv",
        "sparsity",
        "24*12*768**2*scale*(1-sparsity)",
        "steps",
        "val-loss",
        "log",
        1e-3,
        65536.0,
        {
            "N": "non-zero parameters",
            "D": "training steps (batch 128 x 512 tokens)",
            "loss": "validation cross-entropy (C4)",
        },
        "t5-c4",
    ),
    "vit": PaperSweep(
        "vit",
        "vit-data.json",
        "sparsity",
        "12*12*768**2*scale*(1-sparsity)",
        "total_examples",
        "val-loss",
        "linear",
        1e-2,
        197.0,
        {
            "N": "non-zero parameters",
            "D": "images seen",
            "loss": "validation cross-entropy (JFT-4B)",
        },
        "vit-jft",
        budget_axis="examples",
    ),
}


def paper_sweep(spec: str) -> PaperSweep:
    """'paper:t5' or 't5' -> its PaperSweep."""
    key = spec.split(":", 1)[1] if spec.startswith("paper:") else spec
    if key not in PAPER_SWEEPS:
        raise SparsescaleError(f"unknown paper data set {spec!r}; expected paper:t5 or paper:vit")
    return PAPER_SWEEPS[key]


def paper_text(spec: str) -> str:
    sweep = paper_sweep(spec)
    return (
        resources.files("sparsescale.laws.paperdata")
        .joinpath(sweep.file)
        .read_text(encoding="utf-8")
    )


def paper_columns(spec: str) -> dict[str, np.ndarray]:
    """Every column of a shipped sweep as float arrays, in the file's row order
    (the CSV's unnamed index column is called 'Unnamed: 0', as pandas calls it)."""
    text = paper_text(spec)
    if paper_sweep(spec).file.endswith(".csv"):
        rows = list(csv.DictReader(io.StringIO(text)))
        return {(k or "Unnamed: 0"): np.array([float(r[k]) for r in rows]) for k in rows[0]}
    obj = json.loads(text)
    # the JSON is column -> {row index: value} (pandas' default to_json layout)
    # with the indices as strings: sorted as integers to keep the row order
    return {c: np.array([float(v[i]) for i in sorted(v, key=int)]) for c, v in obj.items()}


def paper_points(spec: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(sparsity, n_nonzero, data, loss) of a shipped sweep, in the file's row order."""
    sweep = paper_sweep(spec)
    text = paper_text(spec)
    if sweep.file.endswith(".csv"):
        rows = list(csv.DictReader(io.StringIO(text)))
        cols = {
            k: np.array([float(r[k]) for r in rows])
            for k in ("sparsity", "scale", "steps", "val-loss")
        }
        block, data = T5_BLOCK_PARAMS, cols["steps"]
    else:
        obj = json.loads(text)
        keys = sorted(obj["val-loss"], key=int)
        cols = {
            k: np.array([float(obj[k][i]) for i in keys])
            for k in ("sparsity", "scale", "total_examples", "val-loss")
        }
        block, data = VIT_BLOCK_PARAMS, cols["total_examples"]
    # N = block parameters x scale x (1 - S): scale is the width multiplier
    # squared, and 1 - S the kept fraction of the pruned block weights
    S = cols["sparsity"]
    return S, block * cols["scale"] * (1.0 - S), data, cols["val-loss"]
