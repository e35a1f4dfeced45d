"""Timing primitives shared by the pytest-benchmark suites and the report.

Rules (STYLE.md, benchmarks): warm up first; every timed region ends with a device sync; report
the median. On CUDA each repetition is bracketed by CUDA events, and the L2 cache is flushed
before it (a 256 MB write, outside the events) so small shapes are not timed out of cache. On CPU
each repetition is ``perf_counter`` around the call (CPU ops are synchronous; the sync is kept so
the same code is correct for any device).
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field
from typing import Callable, Optional

import torch

_L2_FLUSH_BYTES = 256 << 20
_flush_buffers: dict[torch.device, torch.Tensor] = {}


def sync(device: torch.device | str) -> None:
    """Wait for all queued work on ``device`` (a no-op on CPU)."""
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _flush_l2(device: torch.device) -> None:
    buf = _flush_buffers.get(device)
    if buf is None:
        buf = _flush_buffers[device] = torch.empty(_L2_FLUSH_BYTES // 4, dtype=torch.int32, device=device)
    buf.zero_()


@dataclass
class Timing:
    """Per-repetition wall times in seconds; ``median`` is what tables show."""

    times: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.times)

    @property
    def spread(self) -> float:
        """(max - min) / median: a quick noise indicator for the table's notes."""
        return (max(self.times) - min(self.times)) / self.median if self.median > 0 else 0.0


def time_fn(
    fn: Callable[[], object],
    device: torch.device | str,
    *,
    warmup: int = 1,
    min_reps: int = 3,
    max_reps: int = 50,
    budget_s: float = 1.0,
) -> Timing:
    """Time ``fn()`` on ``device``: ``warmup`` untimed calls, then between ``min_reps`` and
    ``max_reps`` timed calls, stopping once ``budget_s`` of timed work has accumulated.

    The first warm-up call also pays one-time costs (Triton JIT, autotuning, ``torch.compile``),
    which is why it is never timed.
    """
    device = torch.device(device)
    for _ in range(warmup):
        fn()
    sync(device)
    result = Timing()
    total = 0.0
    while len(result.times) < max_reps and (len(result.times) < min_reps or total < budget_s):
        if device.type == "cuda":
            _flush_l2(device)
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            end.synchronize()
            elapsed = start.elapsed_time(end) / 1e3
        else:
            t0 = time.perf_counter()
            fn()
            sync(device)
            elapsed = time.perf_counter() - t0
        result.times.append(elapsed)
        total += elapsed
    return result


def copy_bandwidth(device: torch.device | str, nbytes: Optional[int] = None, reps: int = 10) -> float:
    """Measured device copy bandwidth in bytes/s: ``dst.copy_(src)`` of a large buffer, counting
    the read and the write (``2 * nbytes`` per copy), median of ``reps`` after a warm-up.

    This is the practical roofline the kernels are compared with (``% copy`` in the tables).
    Defaults: 1 GiB on CUDA (far beyond L2), 256 MiB on CPU (beyond the last-level cache).
    """
    device = torch.device(device)
    if nbytes is None:
        nbytes = (1 << 30) if device.type == "cuda" else (256 << 20)
    src = torch.ones(nbytes // 4, dtype=torch.float32, device=device)
    dst = torch.empty_like(src)
    timing = time_fn(lambda: dst.copy_(src), device, warmup=2, min_reps=reps, max_reps=reps)
    return 2 * nbytes / timing.median


def count_cuda_kernels(fn: Callable[[], object]) -> Optional[int]:
    """Number of GPU kernels one call of ``fn`` launches (torch profiler), None without CUDA.

    Used in the targets section: a latency-bound op is usually one with many launches.
    """
    if not torch.cuda.is_available():
        return None
    from torch.profiler import ProfilerActivity, profile

    fn()
    torch.cuda.synchronize()
    try:
        with profile(activities=[ProfilerActivity.CUDA]) as prof:
            fn()
            torch.cuda.synchronize()
        kernels = [e for e in prof.events() if e.device_type == torch.autograd.DeviceType.CUDA]
    except Exception:  # the count is a diagnostic: never let the profiler break a report
        return None
    # Memcpy/memset entries are not kernels launched by the op's code; keep them anyway when they
    # are the only work (a pure copy), otherwise count compute kernels.
    compute = [e for e in kernels if not e.name.lower().startswith(("memcpy", "memset"))]
    return len(compute) if compute else len(kernels)


__all__ = ["sync", "Timing", "time_fn", "copy_bandwidth", "count_cuda_kernels"]
