"""The README's pytest-benchmark command works as written (on one tiny case).

pyproject's addopts add --benchmark-disable for the normal suite; the
README asks for --benchmark-only, which pytest-benchmark refuses together
with it unless tests/conftest.py turns the benchmarks back on.
"""
import pathlib
import subprocess
import sys

import pytest

pytest.importorskip("pytest_benchmark")
TESTS = pathlib.Path(__file__).resolve().parent


def test_readme_benchmark_command_runs_one_case():
    cmd = [sys.executable, "-m", "pytest", "tests/bench", "--benchmark-only", "--benchmark-group-by=group",
           "-k", "test_direct_vs_peers and float32-3-1-fastcorr-direct",
           "--benchmark-max-time=0.01", "--benchmark-min-rounds=1", "-p", "no:cacheprovider"]
    run = subprocess.run(cmd, cwd=TESTS.parent, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "1 passed" in run.stdout
    assert "benchmark" in run.stdout and "Mean" in run.stdout  # the timing table was printed
