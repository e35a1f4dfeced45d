"""Backend selection: which implementation of an op runs.

``"reference"`` is the pure-PyTorch path of :mod:`samic_fast.ref` (any device, autograd, float64).
``"triton"`` is the fused path of :mod:`samic_fast.kernels` (CUDA tensors, or CPU tensors when
``TRITON_INTERPRET=1`` is set before triton is imported). ``"auto"`` picks triton for CUDA tensors
when triton imports, and the reference otherwise. The environment variable ``SAMIC_FAST_BACKEND``
replaces ``"auto"`` when it is set.
"""

from __future__ import annotations

import os
from typing import Literal, Optional

import torch

from samic_fast.errors import BackendError, DeviceError

Backend = Literal["auto", "reference", "triton"]
BACKENDS: tuple[str, ...] = ("auto", "reference", "triton")
ENV_VAR = "SAMIC_FAST_BACKEND"


def triton_interpreter_enabled() -> bool:
    """True when ``TRITON_INTERPRET=1``: kernels then run on CPU tensors, slowly."""
    return os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


_TRITON_IMPORTS: Optional[bool] = None


def triton_available() -> bool:
    """True when triton imports and a driver (a GPU, or the interpreter) can launch kernels."""
    global _TRITON_IMPORTS
    if _TRITON_IMPORTS is None:  # a plain module flag: torch.compile traces it without warnings
        try:
            import triton  # noqa: F401

            _TRITON_IMPORTS = True
        except Exception:
            _TRITON_IMPORTS = False
    return _TRITON_IMPORTS and (triton_interpreter_enabled() or torch.cuda.is_available())


def resolve_backend(backend: str, device: torch.device) -> str:
    """Map ``backend`` ("auto", "reference", "triton") to the path that runs on ``device``.

    Raises :class:`BackendError` for an unknown name or when triton is asked for but cannot run,
    and :class:`DeviceError` when triton is asked for on a CPU tensor without the interpreter.
    """
    if backend == "auto":
        backend = os.environ.get(ENV_VAR, "auto") or "auto"
        if backend not in BACKENDS:
            raise BackendError(f"{ENV_VAR}={backend!r} is not one of {BACKENDS}")
    if backend not in BACKENDS:
        raise BackendError(f"unknown backend {backend!r}; expected one of {BACKENDS}")
    if backend == "auto":
        # The interpreter is a correctness tool, far slower than the reference: never auto-pick it.
        return "triton" if device.type == "cuda" and triton_available() else "reference"
    if backend == "triton":
        if not triton_available():
            raise BackendError(
                "backend='triton' needs the triton package and a CUDA GPU "
                "(or TRITON_INTERPRET=1 for CPU tensors)"
            )
        if device.type == "cpu" and not triton_interpreter_enabled():
            raise DeviceError(
                "backend='triton' got CPU tensors; move them to CUDA, set TRITON_INTERPRET=1 "
                "before importing triton, or use backend='reference'"
            )
        if device.type not in ("cpu", "cuda"):
            raise DeviceError(f"backend='triton' does not run on {device.type} tensors")
    return backend
