"""Public functional API of the SASS ops (paper §3.2, docs/design.md §1).

Each op checks its inputs, picks a backend (see :mod:`samic_fast.backend`) and calls either the
pure-PyTorch reference in :mod:`samic_fast.ref` or the fused op in :mod:`samic_fast.custom_ops` (custom ops over the Triton
launchers of :mod:`samic_fast.kernels`), which have identical signatures. Shapes (``L = H * W``, raster order ``i = r * W + c``):

=============  =====================  ==========================================
op             inputs                 outputs
=============  =====================  ==========================================
cluster_assign feat (B, C, H, W),     cluster (B, L) int32, count/rowsum/colsum
               centers (K, C), tau    (B, K) int64
scan_order     cluster, sums, H, W    perm, inv (B, L) int32
selective_scan x, dt, z (B, L, D),    y (B, L, D) in x's dtype
               A (D, N), Bm/Cm (B,L,N)
sass_scan      as above + perm (B, L) y (B, L, D), raster order
selective_scan u, delta, z (B, D, L),  out (B, D, L) [, last_state (B, D, N)]
_fn (mamba)    A (D, N), B/C (B,[G,]N,L)
=============  =====================  ==========================================

Both scans return ``(y, last_state (B, D, N))`` with ``return_last_state=True``.
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
from samic_fast.errors import LayoutError, ShapeError


def _kernels():
    # Imported lazily: registering the custom ops is only needed on the triton path (the
    # launchers, and triton with them, are imported when an op first runs).
    import samic_fast.custom_ops as custom_ops

    return custom_ops


def cluster_assign(feat: torch.Tensor, centers: torch.Tensor, tau, *, backend: str = "auto"):
    """Hard semantic clustering (paper Eq. 2–4): positional encoding, cosine scores over ``tau``,
    argmax (ties to the smaller k), and exact integer per-cluster sums.

    ``feat: (B, C, H, W)`` float, contiguous or ``channels_last`` (any strides with each image's
    pixels one strided run, ``stride(2) == W * stride(3)``); ``centers: (K, C)`` float32/64 with
    ``K <= 64``, ``tau > 0``. Returns ``cluster (B, H*W)`` int32 and ``count, rowsum, colsum
    (B, K)`` int64.
    """
    check_tensor("feat", feat, 4, FLOAT_DTYPES, contiguous=False)
    _, _, height, width = feat.shape
    if height > 1 and feat.stride(2) != width * feat.stride(3):
        raise LayoutError(f"feat's pixels must be one strided run (contiguous or channels_last), "
                          f"got strides {feat.stride()}; call .contiguous() first")
    c_sem = feat.shape[1]
    check_tensor("centers", centers, 2, FLOAT_DTYPES, (None, c_sem))
    if centers.shape[0] > MAX_CLUSTERS:
        raise ShapeError(f"at most {MAX_CLUSTERS} clusters are supported, got K={centers.shape[0]}")
    check_tau(tau)
    device = check_same_device([("feat", feat), ("centers", centers)])
    if resolve_backend(backend, device) == "triton":
        return _kernels().cluster_assign(feat, centers, tau)  # reads feat through its strides
    # The reference in one layout whatever the caller's (its matmul and norms then round alike).
    return ref.cluster_assign_ref(feat.contiguous(), centers, tau)


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
    # Any strides: the fused kernel reads every tensor through its strides and the reference
    # slices or gathers rows, so views (a channels_last activation, column slices of one
    # projection) run without a copy.
    check_tensor("x", x, 3, FLOAT_DTYPES, contiguous=False)
    batch, seqlen, dim = x.shape
    check_tensor("dt", dt, 3, FLOAT_DTYPES, (batch, seqlen, dim), contiguous=False)
    check_tensor("A", A, 2, PARAM_DTYPES, (dim, None), contiguous=False)
    nstate = A.shape[1]
    if nstate > MAX_STATE:
        raise ShapeError(f"at most {MAX_STATE} state channels are supported, got N={nstate}")
    check_tensor("Bm", Bm, 3, FLOAT_DTYPES, (batch, seqlen, nstate), contiguous=False)
    check_tensor("Cm", Cm, 3, FLOAT_DTYPES, (batch, seqlen, nstate), contiguous=False)
    if D is not None:
        check_tensor("D", D, 1, PARAM_DTYPES, (dim,), contiguous=False)
    if z is not None:
        check_tensor("z", z, 3, FLOAT_DTYPES, (batch, seqlen, dim), contiguous=False)
    if dt_bias is not None:
        check_tensor("dt_bias", dt_bias, 1, PARAM_DTYPES, (dim,), contiguous=False)
    if perm is not None:
        check_tensor("perm", perm, 2, INDEX_DTYPES, (batch, seqlen), contiguous=False)
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
    return_last_state: bool = False,
    *,
    backend: str = "auto",
):
    """Mamba-1 selective scan over raster order (docs/design.md §1 step 6), channel-last.

    ``delta = softplus(dt + dt_bias)``; ``h_t = exp(delta_t A) h_{t-1} + delta_t Bm_t x_t``;
    ``y_t = Cm_t . h_t + D x_t``, times ``silu(z_t)`` when ``z`` is given.
    ``x, dt, z: (B, L, D)`` fp16/bf16/fp32/fp64; ``A: (D, N)`` fp32/fp64, ``N <= 64``;
    ``Bm, Cm: (B, L, N)``; ``D, dt_bias: (D,)``. Returns ``y (B, L, D)`` in ``x``'s dtype, or
    ``(y, last_state)`` with the state after the last step, ``(B, D, N)`` float32 (float64 for
    float64 ``x``), when ``return_last_state``. For mamba-ssm's layout and defaults use
    :func:`selective_scan_fn`.
    """
    device = _check_scan_inputs(x, dt, A, Bm, Cm, D, z, dt_bias)
    if resolve_backend(backend, device) == "triton":
        return _kernels().selective_scan(x, dt, A, Bm, Cm, D, z, dt_bias, delta_softplus, return_last_state)
    return ref.selective_scan_ref(x, dt, A, Bm, Cm, D, z, dt_bias, delta_softplus, return_last_state)


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
    return_last_state: bool = False,
    *,
    backend: str = "auto",
):
    """Semantic-aware selective scan (paper Eq. 5–6): scan the rows in the order ``perm`` and
    return the outputs in raster order, ``y[perm[t]] = scan_t``. Shapes as
    :func:`selective_scan`, plus ``perm (B, L)`` int32/int64, a permutation of ``0..L-1`` per
    batch (from :func:`scan_order`; not re-checked here, since that costs a pass over it).
    ``return_last_state`` as in :func:`selective_scan` (the state after step ``L - 1``).
    """
    device = _check_scan_inputs(x, dt, A, Bm, Cm, D, z, dt_bias, perm)
    if resolve_backend(backend, device) == "triton":
        return _kernels().sass_scan(x, dt, A, Bm, Cm, perm, D, z, dt_bias, delta_softplus, return_last_state)
    return ref.sass_scan_ref(x, dt, A, Bm, Cm, perm, D, z, dt_bias, delta_softplus, return_last_state)


def selective_scan_fn(
    u: torch.Tensor,
    delta: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    D: Optional[torch.Tensor] = None,
    z: Optional[torch.Tensor] = None,
    delta_bias: Optional[torch.Tensor] = None,
    delta_softplus: bool = False,
    return_last_state: bool = False,
    *,
    backend: str = "auto",
):
    """Drop-in for mamba-ssm's ``selective_scan_fn``: same arguments, layouts and defaults.

    ``u, delta, z: (batch, dim, seqlen)``; ``A: (dim, dstate)`` fp32/fp64; ``B, C: (batch,
    dstate, seqlen)`` or grouped ``(batch, groups, dstate, seqlen)`` (``dim`` divisible by
    ``groups``); ``D, delta_bias: (dim,)``; ``delta_softplus`` defaults to False as in mamba-ssm.
    Returns ``out (batch, dim, seqlen)`` in ``u``'s dtype, or ``(out, last_state (batch, dim,
    dstate))``. Differences from :func:`selective_scan`: channel-first layout, ``delta_softplus``
    off by default, grouped ``B``/``C``, names. Inputs of any strides run without a copy on the
    triton backend (the kernel takes strides); time-invariant (2-D) ``B``/``C`` and complex ``A``
    are not supported.
    """
    check_tensor("u", u, 3, FLOAT_DTYPES, contiguous=False)
    batch, dim, seqlen = u.shape
    check_tensor("delta", delta, 3, FLOAT_DTYPES, (batch, dim, seqlen), contiguous=False)
    check_tensor("A", A, 2, PARAM_DTYPES, (dim, None), contiguous=False)
    nstate = A.shape[1]
    if nstate > MAX_STATE:
        raise ShapeError(f"at most {MAX_STATE} state channels are supported, got dstate={nstate}")
    for name, t in (("B", B), ("C", C)):
        if isinstance(t, torch.Tensor) and t.dim() == 2:
            raise ShapeError(f"{name} of shape {tuple(t.shape)} is time-invariant; only (batch, dstate, seqlen) "
                             "or (batch, groups, dstate, seqlen) are supported")
        rank = t.dim() if isinstance(t, torch.Tensor) else 3
        check_tensor(name, t, 4 if rank == 4 else 3, FLOAT_DTYPES,
                     (batch, None, nstate, seqlen) if rank == 4 else (batch, nstate, seqlen), contiguous=False)
    if B.dim() != C.dim() or B.shape != C.shape:
        raise ShapeError(f"B and C must have the same shape, got {tuple(B.shape)} and {tuple(C.shape)}")
    if B.dim() == 4 and dim % B.shape[1]:
        raise ShapeError(f"dim={dim} is not divisible by the {B.shape[1]} groups of B and C")
    if D is not None:
        check_tensor("D", D, 1, PARAM_DTYPES, (dim,), contiguous=False)
    if z is not None:
        check_tensor("z", z, 3, FLOAT_DTYPES, (batch, dim, seqlen), contiguous=False)
    if delta_bias is not None:
        check_tensor("delta_bias", delta_bias, 1, PARAM_DTYPES, (dim,), contiguous=False)
    device = check_same_device([("u", u), ("delta", delta), ("A", A), ("B", B), ("C", C), ("D", D), ("z", z),
                                ("delta_bias", delta_bias)])
    # (B, D, L) read as (B, L, D) views, (B, [G,] N, L) as (B, [G,] L, N): strides, not copies.
    x, dt = u.transpose(1, 2), delta.transpose(1, 2)
    zt = None if z is None else z.transpose(1, 2)
    Bm, Cm = B.transpose(-1, -2), C.transpose(-1, -2)
    if resolve_backend(backend, device) == "triton":
        y, last = _kernels().selective_scan(x, dt, A, Bm, Cm, D, zt, delta_bias, delta_softplus, True)
    else:
        from samic_fast.custom_ops import reference_scan

        y, last = reference_scan(x, dt, A, Bm, Cm, None, D, zt, delta_bias, delta_softplus)
        y = y.transpose(1, 2).contiguous().transpose(1, 2)  # grouped: cat gave (B, L, D)
    out = y.transpose(1, 2)
    return (out, last) if return_last_state else out


__all__ = ["cluster_assign", "scan_order", "selective_scan", "sass_scan", "selective_scan_fn"]
