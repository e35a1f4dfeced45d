"""Benchmarks: pytest-benchmark suites and the ``samic-fast bench`` report, as ``samic_fast.bench``."""
