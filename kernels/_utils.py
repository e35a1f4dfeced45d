"""Helpers shared by the SASS Triton kernels: interpreter detection, launch sizes, compute dtype.

Nothing here launches a kernel. Configuration follows one rule: under ``TRITON_INTERPRET=1``
every kernel gets a single small configuration (the interpreter cannot autotune and runs each
program in Python, so tiny blocks keep the tests fast and exercise multi-block code paths);
on CUDA each op file's ``_*_config()`` function picks sizes from the shape.

Triton version compatibility
----------------------------
The kernels must compile on CUDA and run under the interpreter with Triton 3.6 through 3.9, and
it is the same code in both modes. Two constructs that are valid Triton are avoided because an
interpreter of one version mishandles them (``scripts/triton_compat.sh`` re-runs the check):

* ``for i in range(lo, hi)`` with a bound known only at run time (a kernel argument or a value
  derived from ``tl.program_id``). Triton 3.6's interpreter turns the bound into an index with
  ``int(handle.data)`` on a one-element 1-D array, which NumPy >= 2.4 refuses ("only
  0-dimensional arrays can be converted to Python scalars"); 3.7 added ``.squeeze()``. Such loops
  are written ``i = lo; while i < hi: ...; i += 1`` (an ``scf.while`` when compiled; these loops
  hold no ``tl.dot``, so Triton would not software-pipeline the ``for`` form either). Loops with
  ``tl.constexpr`` bounds stay ``for`` loops.
* A load/store mask that combines a block with a scalar comparison, e.g.
  ``mask=dn_mask & (pid > 0)``. Triton 3.9's interpreter types a comparison's result with its
  operands' dtype, so splatting the scalar makes int32 data, and its C++ ``load`` then raises
  "mask has unsupported dtype". The condition is compared as a block instead:
  ``tl.full([BLOCK], pid, tl.int32) > 0``.
"""

from __future__ import annotations

import contextlib
import os

import torch
import triton


def is_interpreter() -> bool:
    """True when Triton runs kernels on the CPU in its interpreter (``TRITON_INTERPRET=1``)."""
    return os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


def triton_at_least(major: int, minor: int) -> bool:
    """Whether the installed Triton is ``major.minor`` or newer (for codegen differences between
    the versions the kernels support, not for API differences: the code is the same on all)."""
    parts = triton.__version__.split(".")
    return (int(parts[0]), int("".join(c for c in parts[1] if c.isdigit()) or 0)) >= (major, minor)


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


#: Compile options every launch passes. The kernels are written, counted (``bench --static``) and
#: tested with each multiply-add contracted into one FMA (the state update, the polynomials),
#: Triton's default through 3.9; Triton 3.9 warns that 3.10 turns that default off, so every
#: launch asks for it rather than inherit a default that changes the numbers and the speed.
COMPILE_OPTIONS = {"enable_fp_fusion": True}


#: Set to ``0`` to launch without programmatic dependent launch (for A/B timing; see
#: :func:`use_pdl`).
PDL_ENV = "SAMIC_FAST_PDL"


def use_pdl(device: torch.device) -> bool:
    """Whether a launcher should chain its dependent kernels with programmatic dependent launch
    (PDL, Hopper and newer): the next kernel of the op is launched while the previous one runs,
    does its setup (parameters, ``perm``, its first rows), and waits with ``griddepcontrol.wait``
    only before reading what the previous kernel wrote. Not under the interpreter (the wait is
    inline PTX), not before sm_90 (no ``griddepcontrol``), not with ``SAMIC_FAST_PDL=0``."""
    if is_interpreter() or device.type != "cuda" or os.environ.get(PDL_ENV, "1") == "0":
        return False
    return torch.cuda.get_device_capability(device)[0] >= 9


def on_device(device: torch.device):
    """Context in which to launch kernels on ``device``'s tensors.

    Triton launches on the *current* CUDA device (its driver reads ``torch.cuda.current_device()``
    for the stream and the context), not on the device of the pointers it is given. A tensor on
    ``cuda:1`` while ``cuda:0`` is current would be launched on GPU 0 with GPU 1 addresses: an
    illegal-address fault, or with peer access a silent cross-device read. Entering
    ``torch.cuda.device(device)`` makes the tensors' device current for the launch (and the
    temporaries allocated inside follow ``device`` explicitly anyway). CPU tensors (the
    interpreter) need nothing.
    """
    if device.type == "cuda":
        return torch.cuda.device(device)
    return contextlib.nullcontext()


__all__ = ["is_interpreter", "triton_at_least", "next_pow2", "cdiv", "compute_dtype", "num_sms", "use_pdl",
           "on_device", "PDL_ENV"]
