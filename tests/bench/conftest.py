"""Shared helpers for the pytest-benchmark suite.

Run timed: ``pytest tests/bench --benchmark-only --benchmark-group-by=param``.
In the normal test run (``--benchmark-disable``) each case runs once, so the
benchmarks are exercised (and their results checked) but not timed.
"""
import numpy as np
import pytest


@pytest.fixture
def rng():
    return np.random.default_rng(12345)
