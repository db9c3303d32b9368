"""Shared test settings.

The models trained in these tests are tiny; on a busy 2-core CI machine, OpenMP hand-offs between
threads cost more than they save (measured up to 10x slower), so the whole session runs torch on one
thread, and so do the processes the tests start (the README blocks, the CLIs, the notebook's kernel):
OMP_NUM_THREADS=1 is set for them (pytest-xdist already runs one test process per core).

Nothing may pass or fail by chance: property tests run derandomized when the `CI` environment variable
is set (the "ci" Hypothesis profile: the same examples on every run, no example database, no deadline);
locally the "dev" profile keeps drawing new examples (and any `--hypothesis-seed` is honoured). Every
test starts from the same global random state, so a test that draws from torch's, NumPy's or Python's
global generator without its own seed still sees the same numbers on every run and in any order.
"""

from __future__ import annotations

import os
import random

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, settings

os.environ.setdefault("OMP_NUM_THREADS", "1")  # inherited by every subprocess a test starts

settings.register_profile(
    "ci",
    derandomize=True,
    max_examples=50,
    deadline=None,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", max_examples=50, deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else "dev")

GLOBAL_SEED = 0


@pytest.fixture(autouse=True, scope="session")
def one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(autouse=True)
def fixed_global_random_state():
    """Seed torch's, NumPy's and Python's global generators before every test."""
    random.seed(GLOBAL_SEED)
    np.random.seed(GLOBAL_SEED)
    torch.manual_seed(GLOBAL_SEED)
    yield


def pytest_collection_modifyitems(config, items):
    """The longest tests first (`@pytest.mark.slow(seconds=N)`, the measured time of the slowest ones), so
    that the workers of pytest-xdist start on them and finish together instead of one waiting on the other."""

    def seconds(item):
        mark = item.get_closest_marker("slow")
        return mark.kwargs.get("seconds", 0) if mark is not None else 0

    items.sort(key=seconds, reverse=True)  # stable: the rest keep their order
