import pytest
import torch


@pytest.fixture(autouse=True)
def _seed():
    """Every test starts from the same random state, so failures repeat."""
    torch.manual_seed(0)


@pytest.fixture
def float64_default():
    """torch's default dtype float64 for the test, restored after it."""
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)
