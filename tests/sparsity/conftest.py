import pytest


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread):
    """Every sparsity test on one torch thread (the fixture is in tests/conftest.py)."""
