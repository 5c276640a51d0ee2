"""Suite-wide pytest configuration."""


def pytest_configure(config):
    # pyproject's addopts always add --benchmark-disable (benchmarks in
    # tests/bench run once, untimed, in the normal suite). Asking for
    # --benchmark-only means timing them: let it turn the benchmarks back on,
    # so the README's command works as written (pytest-benchmark refuses the
    # two options together). This runs before pytest-benchmark's own
    # pytest_configure (a trylast hook), which reads the option.
    if getattr(config.option, "benchmark_only", False):
        config.option.benchmark_enable = True
