"""Shared fixtures: the paper's published sweep data from ../shared/paper-data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PAPER_DATA = Path(os.environ.get("SPARSESCALE_PAPER_DATA", REPO.parent / "shared" / "paper-data"))
T5_BLOCK_PARAMS = 24 * 12 * 768**2
VIT_BLOCK_PARAMS = 12 * 12 * 768**2


def _need(name: str) -> Path:
    path = PAPER_DATA / name
    if not path.exists():
        pytest.skip(f"the paper's sweep data {path} is absent (place jaxpruner/projects/bigsparse data in ../shared/paper-data)")
    return path


@pytest.fixture(scope="session")
def t5_file() -> Path:
    return _need("t5-data.csv")


@pytest.fixture(scope="session")
def vit_file() -> Path:
    return _need("vit-data.json")


@pytest.fixture(scope="session")
def t5_points(t5_file):
    import pandas as pd

    df = pd.read_csv(t5_file)
    S = df["sparsity"].to_numpy(float)
    return S, T5_BLOCK_PARAMS * df["scale"].to_numpy(float) * (1 - S), df["steps"].to_numpy(float), df["val-loss"].to_numpy(float)


@pytest.fixture(scope="session")
def vit_points(vit_file):
    import pandas as pd

    df = pd.read_json(vit_file)
    S = df["sparsity"].to_numpy(float)
    return S, VIT_BLOCK_PARAMS * df["scale"].to_numpy(float) * (1 - S), df["total_examples"].to_numpy(float), df["val-loss"].to_numpy(float)


@pytest.fixture(scope="session")
def t5_fit(t5_points):
    from sparsescale.laws.fit import fit_law

    return fit_law(*t5_points, space="log", delta=1e-3, seed=0)
