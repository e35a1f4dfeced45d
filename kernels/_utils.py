"""Helpers shared by the SASS Triton kernels: interpreter detection, launch sizes, compute dtype.

Nothing here launches a kernel. Configuration follows one rule: under ``TRITON_INTERPRET=1``
every kernel gets a single small configuration (the interpreter cannot autotune and runs each
program in Python, so tiny blocks keep the tests fast and exercise multi-block code paths);
on CUDA each op file's ``_*_config()`` function picks sizes from the shape.
"""

from __future__ import annotations

import os

import torch
import triton


def is_interpreter() -> bool:
    """True when Triton runs kernels on the CPU in its interpreter (``TRITON_INTERPRET=1``)."""
    return os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


def next_pow2(n: int) -> int:
    return triton.next_power_of_2(max(1, int(n)))


def cdiv(a: int, b: int) -> int:
    return -(-int(a) // int(b))


def compute_dtype(x: torch.Tensor) -> torch.dtype:
    """The arithmetic dtype of a fused op, as the reference's: float64 for float64 ``x``, float32
    otherwise (the state is never kept in fp16/bf16, and other operands are converted)."""
    return torch.float64 if x.dtype == torch.float64 else torch.float32


def num_sms(device: torch.device) -> int:
    """Streaming multiprocessors of a CUDA device (used to size grids so batch 1 fills it)."""
    if device.type != "cuda":
        return 1
    return torch.cuda.get_device_properties(device).multi_processor_count


__all__ = ["is_interpreter", "next_pow2", "cdiv", "compute_dtype", "num_sms"]
