"""Hand-written Triton kernels for SASS, installed as ``samic_fast.kernels``.

The four public functions have exactly the signatures of their references in
:mod:`samic_fast.ref` (``*_ref``) and are what :mod:`samic_fast.ops` calls for
``backend="triton"``. Each is registered as a ``torch.library`` custom op
(``torch.ops.samic_fast.<name>``) with a fake implementation, so ``torch.compile`` treats it as
one opaque node; the scans also carry a FLOP formula and a (reference-recompute) backward.

Importing this package imports triton: :mod:`samic_fast.ops` imports it lazily.
"""

from .cluster_assign import cluster_assign, cluster_assign_fwd
from .sass_scan import sass_scan, sass_scan_fwd, scan_flops, selective_scan
from .scan_order import scan_order, scan_order_fwd

__all__ = [
    "cluster_assign",
    "scan_order",
    "selective_scan",
    "sass_scan",
    "cluster_assign_fwd",
    "scan_order_fwd",
    "sass_scan_fwd",
    "scan_flops",
]
