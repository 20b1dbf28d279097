"""Shared fixtures: the paper's published sweep data, shipped in the package,
and one torch thread for the folders of tiny tensors."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# `make test` runs two pytest workers (pytest-xdist), one per core. Each worker
# and every CLI it starts then gets one thread for torch and BLAS: two
# 1-thread processes beat two 2-thread ones fighting over 2 cores.
if os.environ.get("PYTEST_XDIST_WORKER"):
    for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ.setdefault(_var, "1")


def pytest_collection_modifyitems(config, items):
    """The tests of a module that uses Ray all run in one worker (`--dist
    loadgroup`): two Ray clusters at once on 2 cores would starve each other's
    raylets past the tests' timeouts."""
    for item in items:
        module = getattr(item, "module", None)
        if module is not None and "ray" in vars(module):
            item.add_marker(pytest.mark.xdist_group("ray"))


T5_BLOCK_PARAMS = 24 * 12 * 768**2
VIT_BLOCK_PARAMS = 12 * 12 * 768**2


def _packaged(name: str) -> Path:
    """The paper's sweep shipped inside the package (sparsescale/laws/paperdata)."""
    from importlib import resources

    return Path(str(resources.files("sparsescale.laws.paperdata").joinpath(name)))


@pytest.fixture(scope="session")
def t5_file() -> Path:
    return _packaged("t5-data.csv")


@pytest.fixture(scope="session")
def vit_file() -> Path:
    return _packaged("vit-data.json")


@pytest.fixture(scope="session")
def t5_points(t5_file):
    import pandas as pd

    df = pd.read_csv(t5_file)
    S = df["sparsity"].to_numpy(float)
    return (
        S,
        T5_BLOCK_PARAMS * df["scale"].to_numpy(float) * (1 - S),
        df["steps"].to_numpy(float),
        df["val-loss"].to_numpy(float),
    )


@pytest.fixture(scope="session")
def vit_points(vit_file):
    import pandas as pd

    df = pd.read_json(vit_file)
    S = df["sparsity"].to_numpy(float)
    return (
        S,
        VIT_BLOCK_PARAMS * df["scale"].to_numpy(float) * (1 - S),
        df["total_examples"].to_numpy(float),
        df["val-loss"].to_numpy(float),
    )


@pytest.fixture(scope="session")
def t5_fit(t5_points):
    from sparsescale.laws.fit import fit_law
    from sparsescale.laws.points import FitOptions, Points

    return fit_law(Points(*t5_points), FitOptions(space="log", delta=1e-3, seed=0))


@pytest.fixture
def one_torch_thread():
    """Tiny tensors on a busy 2-core machine: extra threads only spin and stall.
    Not autouse here: other folders keep torch's default (and need not import
    torch at all); tests/kernels and tests/sparsity apply it to all their tests."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
