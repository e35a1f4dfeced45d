"""samic_fast: Triton kernels and a fast SAMIC (semantic-aware Mamba) image codec.

Public entry points: :mod:`samic_fast.ops` (the SASS ops with a ``backend`` switch),
:mod:`samic_fast.ref` (their pure-PyTorch references), :class:`samic_fast.samb.SAMB`,
:mod:`samic_fast.model` (the codec network) and :mod:`samic_fast.codec` (the file format).
Importing the package imports neither triton nor CompressAI; the codec names below load lazily.
"""

from __future__ import annotations

import importlib

from samic_fast import ops
from samic_fast.config import SAMICConfig, SASSConfig
from samic_fast.errors import SamicError

__version__ = "0.1.0"

_LAZY = {
    "SAMIC": "samic_fast.model",
    "default_model": "samic_fast.model",
    "load_checkpoint": "samic_fast.model",
    "encode_image": "samic_fast.codec",
    "decode_image": "samic_fast.codec",
}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'samic_fast' has no attribute {name!r}")


__all__ = ["ops", "SAMICConfig", "SASSConfig", "SamicError", *_LAZY]
