import pytest
import torch


@pytest.fixture(autouse=True)
def one_torch_thread():
    """These tests use tiny tensors: extra threads only add synchronisation (and stall on a busy machine)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
