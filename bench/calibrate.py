"""Measure, on the GPU at hand, the constants the static model assumes.

``python -m samic_fast.bench.calibrate [--device cuda]`` prints one markdown table: each
assumption of ``bench/hardware.py`` and ``bench/sass_analysis.py`` that decides a prediction
today, the value the model uses, and the value measured here:

- a global load's latency, from HBM and from L2: one warp chases pointers through a random
  cycle of 128-byte lines (each load's address is the previous load's value), cold in a buffer
  ten times L2, and warm in one that fits it;
- the cost of one more kernel in a stream, plain and as a programmatic dependent launch: a
  CUDA graph of back-to-back empty Triton kernels, so the CPU's launch time is not measured;
- the CPU cost of one eager PyTorch op (the network model's eager launch cost): a loop of tiny
  additions, timed by the wall clock.

Cycles are converted at the model's clock (``H100.clock_hz``), so they compare with the model
even where the chip runs at another clock.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Optional

import torch
import triton
import triton.language as tl

from samic_fast.kernels.sass_scan import gdc_launch_dependents, gdc_wait

from .hardware import EAGER_LAUNCH_US, H100
from .report import md_table
from .sass_analysis import LATENCY

#: int32 entries in one 128-byte line: the chase visits one entry per line.
LINE = 32


@triton.jit
def _chase_kernel(next_ptr, out_ptr, start, steps):
    # Each load's address is the value the previous load returned: a chain of dependent loads.
    i = start
    k = 0
    while k < steps:
        i = tl.load(next_ptr + i)
        k += 1
    tl.store(out_ptr, i)


@triton.jit
def _empty_kernel(out_ptr, USE_PDL: tl.constexpr):
    if USE_PDL:
        gdc_launch_dependents()
        gdc_wait()


def chase_table(lines: int, device, seed: int = 0) -> torch.Tensor:
    """``next`` of a random single cycle through ``lines`` 128-byte lines (Sattolo's
    shuffle): following it from any line visits every line once before returning."""
    g = torch.Generator().manual_seed(seed)
    order = torch.randperm(lines, generator=g)
    nxt = torch.zeros(lines * LINE, dtype=torch.int32)
    nxt[order * LINE] = (order.roll(-1) * LINE).to(torch.int32)
    return nxt.to(device)


def _once_ms(fn) -> float:
    """Milliseconds of one call of ``fn`` on the current stream, by CUDA events. Not
    ``timing.time_fn``: that flushes L2 before each repetition, which the warm chase must not."""
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    fn()
    end.record()
    end.synchronize()
    return start.elapsed_time(end)


def chase_ns(nbytes: int, steps: int, device, warm: bool) -> float:
    """Nanoseconds per dependent load through a ``nbytes`` buffer (one warp, one program). With
    ``warm`` a first pass over the whole cycle leaves the buffer in L2 (when it fits); without,
    the first pass only compiles (one load), so the timed loads miss."""
    lines = max(2, nbytes // (4 * LINE))
    nxt = chase_table(lines, device)
    out = torch.empty(1, dtype=torch.int32, device=device)
    _chase_kernel[(1,)](nxt, out, 0, lines if warm else 1, num_warps=1)
    torch.cuda.synchronize(device)
    return _once_ms(lambda: _chase_kernel[(1,)](nxt, out, 0, steps, num_warps=1)) * 1e6 / steps


def launch_us(device, pdl: bool, count: int = 500) -> float:
    """Microseconds a kernel adds to a stream of back-to-back empty kernels (a CUDA graph of
    ``count`` launches, so that only the GPU's side is timed)."""
    out = torch.empty(1, device=device)
    kw = {"launch_pdl": True} if pdl else {}
    _empty_kernel[(1,)](out, USE_PDL=pdl, **kw)
    torch.cuda.synchronize(device)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        for _ in range(count):
            _empty_kernel[(1,)](out, USE_PDL=pdl, **kw)
    graph.replay()
    torch.cuda.synchronize(device)
    return _once_ms(graph.replay) * 1e3 / count


def eager_op_us(device, count: int = 2000) -> float:
    """Wall-clock microseconds per tiny eager PyTorch op (CPU dispatch and launch)."""
    a = torch.ones(16, device=device)
    for _ in range(10):
        a.add_(1.0)
    torch.cuda.synchronize(device)
    t0 = time.perf_counter()
    for _ in range(count):
        a.add_(1.0)
    torch.cuda.synchronize(device)
    return (time.perf_counter() - t0) * 1e6 / count


def _measured(fn, fmt) -> str:
    try:
        return fmt(fn())
    except Exception as e:  # one failed measurement (e.g. a driver without PDL capture) is a row
        return f"failed: {type(e).__name__}: {str(e).splitlines()[0][:80] if str(e) else ''}"


def calibrate(device) -> list[list[str]]:
    """Rows of (constant, model value, measured, how)."""
    cyc = H100.clock_hz / 1e9  # cycles per ns at the model's clock
    ldg = dict(LATENCY)["LDG"]
    as_cycles = lambda ns: f"{ns * cyc:.0f} cycles ({ns:.0f} ns)"  # noqa: E731
    rows = [
        ["global load, HBM (sass_analysis LATENCY['LDG'])", f"{ldg} cycles",
         _measured(lambda: chase_ns(512 << 20, 4000, device, warm=False), as_cycles), "pointer chase, 512 MiB, cold"],
        ["global load, L2 hit", "(not modelled)",
         _measured(lambda: chase_ns(4 << 20, 20000, device, warm=True), as_cycles), "pointer chase, 4 MiB, warm"],
        ["kernel in a stream (H100.launch_us)", f"{H100.launch_us:g} us",
         _measured(lambda: launch_us(device, False), "{:.2f} us".format), "CUDA graph of empty kernels"],
    ]
    if gdc_wait is not None and torch.cuda.get_device_capability(device)[0] >= 9:
        rows.append(["programmatic dependent launch (H100.pdl_launch_us)", f"{H100.pdl_launch_us:g} us",
                     _measured(lambda: launch_us(device, True), "{:.2f} us".format),
                     "the same, launch_pdl + gdc_wait"])
    rows.append(["eager PyTorch op (EAGER_LAUNCH_US)", f"{EAGER_LAUNCH_US:g} us",
                 _measured(lambda: eager_op_us(device), "{:.2f} us".format), "tiny add_, wall clock"])
    return rows


def main(argv: Optional[list[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m samic_fast.bench.calibrate", description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cuda")
    args = ap.parse_args(argv)
    if not args.device.startswith("cuda") or not torch.cuda.is_available():
        print("calibrate: needs a CUDA GPU (it times the GPU's loads and launches)", file=sys.stderr)
        return 2
    device = torch.device(args.device)
    print(f"### static model constants, measured ({torch.cuda.get_device_name(device)}, "
          f"triton {triton.__version__})\n")
    print(md_table(["constant", "model", "measured", "how"], calibrate(device), "llll"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
