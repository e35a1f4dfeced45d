"""Hand-written Triton kernels for SASS, installed as ``samic_fast.kernels``.

Self-contained: nothing here imports the rest of ``samic_fast`` (a test checks it). Each module
holds one op's ``@triton.jit`` kernels and its launcher ``<op>_fwd``, which takes tensors (with
their strides), allocates outputs on the inputs' device and launches there. Everything above the
launch (input checks, ``torch.library`` custom ops, the backward, the FLOP formula, the
positional-encoding tables) lives in :mod:`samic_fast.custom_ops` and :mod:`samic_fast.ops`.

Importing this package imports triton.
"""

from .cluster_assign import cluster_assign_fwd
from .sass_scan import sass_scan_fwd
from .scan_order import scan_order_fwd

__all__ = ["cluster_assign_fwd", "scan_order_fwd", "sass_scan_fwd"]
