"""Load mamba-ssm's pure-PyTorch ``selective_scan_ref`` without its CUDA extension.

It is the independent reference nobody here wrote: the tests, the verify command and the
benchmarks compare against it. mamba-ssm's package ``__init__`` and ``selective_scan_interface``
import the compiled ``selective_scan_cuda`` unconditionally, so on a CPU install we register a
placeholder for it and a bare package module (skipping ``mamba_ssm/__init__.py``) before loading
the one submodule we need.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from typing import Callable, Optional

import torch


def load_mamba_selective_scan_ref() -> Optional[Callable]:
    """Return mamba-ssm's ``selective_scan_ref`` (layout ``(B, D, L)``), or None if not installed."""
    name = "mamba_ssm.ops.selective_scan_interface"
    if name in sys.modules:
        return getattr(sys.modules[name], "selective_scan_ref", None)
    try:
        spec = importlib.util.find_spec("mamba_ssm")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    if "selective_scan_cuda" not in sys.modules:
        try:
            importlib.import_module("selective_scan_cuda")
        except ImportError:
            sys.modules["selective_scan_cuda"] = types.ModuleType("selective_scan_cuda")
    if "mamba_ssm" not in sys.modules:
        pkg = types.ModuleType("mamba_ssm")
        pkg.__path__ = list(spec.submodule_search_locations)
        pkg.__spec__ = spec
        sys.modules["mamba_ssm"] = pkg
    try:
        module = importlib.import_module(name)
    except Exception:
        return None
    return getattr(module, "selective_scan_ref", None)


def mamba_scan_channel_last(x, dt, A, Bm, Cm, D=None, z=None, dt_bias=None, delta_softplus=True):
    """mamba-ssm's reference with our channel-last signature (``x (B, L, D)`` etc.)."""
    ref = load_mamba_selective_scan_ref()
    if ref is None:
        raise ImportError("mamba-ssm is not installed")
    tr = lambda t: None if t is None else t.transpose(1, 2).contiguous()  # noqa: E731
    y = ref(tr(x), tr(dt), A, tr(Bm), tr(Cm), D=D, z=tr(z), delta_bias=dt_bias,
            delta_softplus=delta_softplus)
    return y.transpose(1, 2)


def mamba_available() -> bool:
    return load_mamba_selective_scan_ref() is not None


__all__ = ["load_mamba_selective_scan_ref", "mamba_scan_channel_last", "mamba_available", "torch"]
