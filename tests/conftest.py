"""Shared test settings.

The models trained in these tests are tiny; on a busy 2-core CI machine, OpenMP hand-offs between
threads cost more than they save (measured up to 10x slower), so the whole session runs torch on one
thread (the README-block tests run in subprocesses, which keep torch's default).
"""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
