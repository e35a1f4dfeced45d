"""Public functional API of the SASS ops (paper §3.2, docs/design.md §1).

Each op checks its inputs, picks a backend (see :mod:`samic_fast.backend`) and calls either the
pure-PyTorch reference in :mod:`samic_fast.ref` or the fused Triton op in :mod:`samic_fast.kernels`,
which have identical signatures. Shapes (``L = H * W``, raster order ``i = r * W + c``):

=============  =====================  ==========================================
op             inputs                 outputs
=============  =====================  ==========================================
cluster_assign feat (B, C, H, W),     cluster (B, L) int32, count/rowsum/colsum
               centers (K, C), tau    (B, K) int64
scan_order     cluster, sums, H, W    perm, inv (B, L) int32
selective_scan x, dt, z (B, L, D),    y (B, L, D) in x's dtype
               A (D, N), Bm/Cm (B,L,N)
sass_scan      as above + perm (B, L) y (B, L, D), raster order
=============  =====================  ==========================================
"""

from __future__ import annotations

from typing import Optional

import torch

from samic_fast import ref
from samic_fast._validate import (
    FLOAT_DTYPES,
    INDEX_DTYPES,
    MAX_CLUSTERS,
    MAX_STATE,
    PARAM_DTYPES,
    check_same_device,
    check_tau,
    check_tensor,
)
from samic_fast.backend import resolve_backend
from samic_fast.errors import ShapeError


def _kernels():
    # Imported lazily: CPU users of the reference never need triton installed.
    import samic_fast.kernels as kernels

    return kernels


def cluster_assign(feat: torch.Tensor, centers: torch.Tensor, tau, *, backend: str = "auto"):
    """Hard semantic clustering (paper Eq. 2–4): positional encoding, cosine scores over ``tau``,
    argmax (ties to the smaller k), and exact integer per-cluster sums.

    ``feat: (B, C, H, W)`` float, ``centers: (K, C)`` float32/64 with ``K <= 64``, ``tau > 0``.
    Returns ``cluster (B, H*W)`` int32 and ``count, rowsum, colsum (B, K)`` int64.
    """
    check_tensor("feat", feat, 4, FLOAT_DTYPES)
    c_sem = feat.shape[1]
    check_tensor("centers", centers, 2, FLOAT_DTYPES, (None, c_sem))
    if centers.shape[0] > MAX_CLUSTERS:
        raise ShapeError(f"at most {MAX_CLUSTERS} clusters are supported, got K={centers.shape[0]}")
    check_tau(tau)
    device = check_same_device([("feat", feat), ("centers", centers)])
    if resolve_backend(backend, device) == "triton":
        return _kernels().cluster_assign(feat, centers, tau)
    return ref.cluster_assign_ref(feat, centers, tau)


def scan_order(cluster, count, rowsum, colsum, height: int, width: int, *, backend: str = "auto"):
    """Scan permutation from a hard assignment (docs/design.md §1 steps 4–5).

    ``cluster: (B, H*W)`` int32/int64 with values in ``[0, K)``; ``count, rowsum, colsum: (B, K)``
    int64. Returns ``perm, inv (B, H*W)`` int32: clusters sorted by mean (row, col, k), pixels of a
    cluster in raster order; ``perm[t]`` is the raster index of step ``t``, ``inv`` its inverse.
    """
    if height < 1 or width < 1:
        raise ShapeError(f"height and width must be >= 1, got {height}x{width}")
    check_tensor("cluster", cluster, 2, INDEX_DTYPES, (None, height * width))
    batch = cluster.shape[0]
    check_tensor("count", count, 2, (torch.int64,), (batch, None))
    k = count.shape[1]
    if k > MAX_CLUSTERS:
        raise ShapeError(f"at most {MAX_CLUSTERS} clusters are supported, got K={k}")
    check_tensor("rowsum", rowsum, 2, (torch.int64,), (batch, k))
    check_tensor("colsum", colsum, 2, (torch.int64,), (batch, k))
    device = check_same_device(
        [("cluster", cluster), ("count", count), ("rowsum", rowsum), ("colsum", colsum)]
    )
    if resolve_backend(backend, device) == "triton":
        return _kernels().scan_order(cluster, count, rowsum, colsum, height, width)
    return ref.scan_order_ref(cluster, count, rowsum, colsum, height, width)


def _check_scan_inputs(x, dt, A, Bm, Cm, D, z, dt_bias, perm=None) -> torch.device:
    check_tensor("x", x, 3, FLOAT_DTYPES)
    batch, seqlen, dim = x.shape
    check_tensor("dt", dt, 3, FLOAT_DTYPES, (batch, seqlen, dim))
    check_tensor("A", A, 2, PARAM_DTYPES, (dim, None))
    nstate = A.shape[1]
    if nstate > MAX_STATE:
        raise ShapeError(f"at most {MAX_STATE} state channels are supported, got N={nstate}")
    check_tensor("Bm", Bm, 3, FLOAT_DTYPES, (batch, seqlen, nstate))
    check_tensor("Cm", Cm, 3, FLOAT_DTYPES, (batch, seqlen, nstate))
    if D is not None:
        check_tensor("D", D, 1, PARAM_DTYPES, (dim,))
    if z is not None:
        check_tensor("z", z, 3, FLOAT_DTYPES, (batch, seqlen, dim))
    if dt_bias is not None:
        check_tensor("dt_bias", dt_bias, 1, PARAM_DTYPES, (dim,))
    if perm is not None:
        check_tensor("perm", perm, 2, INDEX_DTYPES, (batch, seqlen))
    return check_same_device(
        [("x", x), ("dt", dt), ("A", A), ("Bm", Bm), ("Cm", Cm), ("D", D), ("z", z),
         ("dt_bias", dt_bias), ("perm", perm)]
    )


def selective_scan(
    x: torch.Tensor,
    dt: torch.Tensor,
    A: torch.Tensor,
    Bm: torch.Tensor,
    Cm: torch.Tensor,
    D: Optional[torch.Tensor] = None,
    z: Optional[torch.Tensor] = None,
    dt_bias: Optional[torch.Tensor] = None,
    delta_softplus: bool = True,
    *,
    backend: str = "auto",
) -> torch.Tensor:
    """Mamba-1 selective scan over raster order (docs/design.md §1 step 6), channel-last.

    ``delta = softplus(dt + dt_bias)``; ``h_t = exp(delta_t A) h_{t-1} + delta_t Bm_t x_t``;
    ``y_t = Cm_t . h_t + D x_t``, times ``silu(z_t)`` when ``z`` is given.
    ``x, dt, z: (B, L, D)`` fp16/bf16/fp32/fp64; ``A: (D, N)`` fp32/fp64, ``N <= 64``;
    ``Bm, Cm: (B, L, N)``; ``D, dt_bias: (D,)``. Returns ``y (B, L, D)`` in ``x``'s dtype.
    """
    device = _check_scan_inputs(x, dt, A, Bm, Cm, D, z, dt_bias)
    if resolve_backend(backend, device) == "triton":
        return _kernels().selective_scan(x, dt, A, Bm, Cm, D, z, dt_bias, delta_softplus)
    return ref.selective_scan_ref(x, dt, A, Bm, Cm, D, z, dt_bias, delta_softplus)


def sass_scan(
    x: torch.Tensor,
    dt: torch.Tensor,
    A: torch.Tensor,
    Bm: torch.Tensor,
    Cm: torch.Tensor,
    perm: torch.Tensor,
    D: Optional[torch.Tensor] = None,
    z: Optional[torch.Tensor] = None,
    dt_bias: Optional[torch.Tensor] = None,
    delta_softplus: bool = True,
    *,
    backend: str = "auto",
) -> torch.Tensor:
    """Semantic-aware selective scan (paper Eq. 5–6): scan the rows in the order ``perm`` and
    return the outputs in raster order, ``y[perm[t]] = scan_t``. Shapes as
    :func:`selective_scan`, plus ``perm (B, L)`` int32/int64, a permutation of ``0..L-1`` per
    batch (from :func:`scan_order`; not re-checked here, since that costs a pass over it).
    """
    device = _check_scan_inputs(x, dt, A, Bm, Cm, D, z, dt_bias, perm)
    if resolve_backend(backend, device) == "triton":
        return _kernels().sass_scan(x, dt, A, Bm, Cm, perm, D, z, dt_bias, delta_softplus)
    return ref.sass_scan_ref(x, dt, A, Bm, Cm, perm, D, z, dt_bias, delta_softplus)


__all__ = ["cluster_assign", "scan_order", "selective_scan", "sass_scan"]
