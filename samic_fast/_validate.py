"""Input checks shared by the public ops: every bad input becomes a typed, readable error."""

from __future__ import annotations

from typing import Iterable, Optional, Sequence

import torch

from samic_fast.errors import DeviceError, DTypeError, LayoutError, ShapeError

FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
PARAM_DTYPES = (torch.float32, torch.float64)
INDEX_DTYPES = (torch.int32, torch.int64)
MAX_CLUSTERS = 64
MAX_STATE = 64


def check_tensor(
    name: str,
    t,
    ndim: int,
    dtypes: Sequence[torch.dtype],
    shape: Optional[Sequence[Optional[int]]] = None,
    contiguous: bool = True,
) -> torch.Tensor:
    """Check type, rank, dtype, shape (``None`` entries are free), emptiness and (unless
    ``contiguous=False``, for kernels that take strides) contiguity."""
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if t.dim() != ndim:
        raise ShapeError(f"{name} must have {ndim} dimensions, got shape {tuple(t.shape)}")
    if t.dtype not in dtypes:
        names = ", ".join(str(d).replace("torch.", "") for d in dtypes)
        raise DTypeError(f"{name} has dtype {str(t.dtype).replace('torch.', '')}; expected one of {names}")
    if shape is not None:
        for axis, (got, want) in enumerate(zip(t.shape, shape)):
            if want is not None and got != want:
                raise ShapeError(
                    f"{name} has shape {tuple(t.shape)}; dimension {axis} must be {want}"
                )
    if t.numel() == 0:
        raise ShapeError(f"{name} is empty (shape {tuple(t.shape)})")
    if contiguous and not t.is_contiguous():
        # A hidden .contiguous() would copy whole activations on the hot path: make it explicit.
        raise LayoutError(f"{name} is not contiguous (strides {t.stride()}); call .contiguous() first")
    return t


def check_same_device(named: Iterable[tuple[str, Optional[torch.Tensor]]]) -> torch.device:
    """All given tensors (``None`` skipped) must share one device; returns it."""
    device = None
    first = None
    for name, t in named:
        if t is None:
            continue
        if device is None:
            device, first = t.device, name
        elif t.device != device:
            raise DeviceError(f"{name} is on {t.device} but {first} is on {device}")
    assert device is not None
    return device


def check_tau(tau) -> None:
    if isinstance(tau, torch.Tensor):
        if tau.numel() != 1:
            raise ShapeError(f"tau must be a scalar, got shape {tuple(tau.shape)}")
        if torch.compiler.is_compiling() or tau.device.type != "cpu":
            # Reading a GPU value would sync the stream on every call, and under torch.compile it
            # is a data-dependent graph break; the modules keep tau positive by construction.
            return
        value = float(tau.detach())
    else:
        value = float(tau)
    if not value > 0.0 or value != value or value == float("inf"):
        raise ValueError(f"tau must be a finite positive number, got {value}")
