import pytest
import torch


@pytest.fixture(autouse=True)
def one_thread():
    """Kernel tests share a 2-core CI machine with the rest of the suite."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
