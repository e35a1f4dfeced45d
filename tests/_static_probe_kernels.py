"""Probe kernels whose per-step SASS counts are known, for tests/test_bench_static.py.

Imported only in a child process without TRITON_INTERPRET (the static counter needs Triton's
compiler). Each step of each loop evaluates exactly ``EXP_PER_STEP`` ``exp2`` on a 32-element
fp32 block with one warp (one ``MUFU.EX2`` per warp each) and loads one row (one ``LDG``).
"""
import torch
import triton
import triton.language as tl

EXP_PER_STEP = 3
UNROLL = 4


@triton.jit
def probe_while_kernel(x_ptr, a_ptr, y_ptr, n, BLOCK: tl.constexpr):
    offs = tl.arange(0, BLOCK)
    a = tl.load(a_ptr + offs)
    h = tl.zeros([BLOCK], dtype=tl.float32)
    t = 0
    while t < n:  # run-time trip count: one step per iteration
        v = tl.load(x_ptr + t * BLOCK + offs)
        h = tl.exp2(h * a + v)
        h = tl.exp2(h * a)
        h = tl.exp2(h * a)
        t += 1
    tl.store(y_ptr + offs, h)


@triton.jit
def probe_unrolled_kernel(x_ptr, a_ptr, y_ptr, STEPS: tl.constexpr, BLOCK: tl.constexpr,
                          UNROLL: tl.constexpr):
    offs = tl.arange(0, BLOCK)
    a = tl.load(a_ptr + offs)
    h = tl.zeros([BLOCK], dtype=tl.float32)
    for t in tl.range(0, STEPS, loop_unroll_factor=UNROLL):  # constant trip count, unrolled
        v = tl.load(x_ptr + t * BLOCK + offs)
        h = tl.exp2(h * a + v)
        h = tl.exp2(h * a)
        h = tl.exp2(h * a)
    tl.store(y_ptr + offs, h)


def launch(x: torch.Tensor, a: torch.Tensor, steps: int, unrolled: bool) -> torch.Tensor:
    """``x: (steps, 32)``, ``a: (32,)`` fp32; one program of one warp."""
    y = torch.empty_like(a)
    if unrolled:
        probe_unrolled_kernel[(1,)](x, a, y, STEPS=steps, BLOCK=32, UNROLL=UNROLL, num_warps=1)
    else:
        probe_while_kernel[(1,)](x, a, y, steps, BLOCK=32, num_warps=1)
    return y
