"""Test-wide settings.

Tests use small tensors, for which one intra-op thread is faster than two and,
on a shared 2-core machine, far less sensitive to other processes (an oracle
call measured 0.5 ms with one thread and 35 ms with two under load).
"""

import pytest
import torch


@pytest.fixture(autouse=True)
def one_torch_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
