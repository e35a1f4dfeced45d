"""pytest-benchmark suites: one group per op and shape, one benchmark per provider.

Run (benchmarks are disabled by the project's default ``addopts``, so enable them)::

    pytest bench --benchmark-enable --benchmark-only --benchmark-group-by=group \
        --benchmark-columns=median,iqr,rounds --benchmark-autosave

Shapes: docs/design.md §3's ``s1, s2, s3, lat`` and ``tiny``. On CUDA all run. On CPU the default is
``tiny, s3, lat`` (``s1``/``s2`` take long on 2 cores); ``SAMIC_BENCH_SHAPES=s1,s2,...`` chooses
others. The triton provider runs on CPU under the interpreter for ``tiny`` only and is skipped,
at run time and with the reason, for larger shapes. ``extra_info`` carries the ideal bytes moved
and the effective GB/s at the median.
"""

from __future__ import annotations

import os
import time

import pytest
import torch

from samic_fast.bench.envinfo import device_name
from samic_fast.bench.providers import OPS, PROVIDERS, Unavailable, build
from samic_fast.bench.shapes import ALL_SHAPES, bytes_moved, make_inputs
from samic_fast.bench.timing import _flush_l2, sync

SHAPE_NAMES = ("s1", "s2", "s3", "lat", "tiny")
CPU_DEFAULT_SHAPES = ("tiny", "s3", "lat")
#: Seconds of timed work per benchmark (rounds are chosen from one untimed call).
TIME_BUDGET = {"cuda": 0.5, "cpu": 2.0}

_inputs_cache: dict = {}


def _selected_shapes(device: torch.device) -> tuple[str, ...]:
    env = os.environ.get("SAMIC_BENCH_SHAPES")
    if env:
        return tuple(s.strip() for s in env.split(",") if s.strip())
    return SHAPE_NAMES if device.type == "cuda" else CPU_DEFAULT_SHAPES


def _inputs(shape_name: str, device: torch.device) -> dict:
    # Keep one shape's inputs alive at a time: s1 inputs are ~0.2 GB and cases come shape by shape.
    if shape_name not in _inputs_cache:
        _inputs_cache.clear()
        _inputs_cache[shape_name] = make_inputs(ALL_SHAPES[shape_name], device)
    return _inputs_cache[shape_name]


CASES = [
    pytest.param(shape, op, provider, id=f"{op}-{shape}-{provider}")
    for shape in SHAPE_NAMES
    for op in OPS
    for provider in PROVIDERS
]


@pytest.mark.parametrize("shape_name, op, provider", CASES)
def test_bench(benchmark, device: torch.device, shape_name: str, op: str, provider: str) -> None:
    if shape_name not in _selected_shapes(device):
        pytest.skip(f"shape {shape_name} not selected on {device.type} (set SAMIC_BENCH_SHAPES)")
    inputs = _inputs(shape_name, device)
    try:
        built = build(op, provider, inputs)
    except Unavailable as exc:
        pytest.skip(str(exc))
    shape = inputs["shape"]

    def target() -> None:
        built.fn()
        sync(device)  # the timed region ends when the device is done

    # One untimed call (also the warm-up) sizes the number of rounds to the time budget.
    t0 = time.perf_counter()
    target()
    est = max(time.perf_counter() - t0, 1e-6)
    rounds = int(min(100, max(3, TIME_BUDGET[device.type] / est)))
    # On CUDA flush L2 before each round (untimed) so small shapes are not timed out of cache.
    setup = (lambda: _flush_l2(device)) if device.type == "cuda" else None

    nbytes = bytes_moved(op, shape)
    benchmark.group = f"{op} {shape.describe()}"
    benchmark.extra_info.update(
        op=op, shape=shape.name, provider=provider, device=device_name(device),
        bytes=nbytes, setup_s=round(built.setup_s, 3),
    )
    benchmark.pedantic(target, setup=setup, rounds=rounds, warmup_rounds=1, iterations=1)
    stats = getattr(benchmark, "stats", None)
    if stats is not None and nbytes is not None:  # None when benchmarks are disabled
        benchmark.extra_info["GB/s"] = round(nbytes / stats.stats.median / 1e9, 3)
