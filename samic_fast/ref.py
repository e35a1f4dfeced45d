"""Pure-PyTorch references of the SASS ops (paper §3.2, docs/design.md §1).

This module never imports triton. Each function has exactly the signature of its fused twin in
:mod:`samic_fast.custom_ops`, runs on any device, supports autograd and float64, and is the ground
truth the kernels are tested against. Inputs are assumed valid: :mod:`samic_fast.ops` checks them.

Layouts (channel-last, raster order ``i = r * W + c``, ``L = H * W``):

- ``feat``: ``(B, C_sem, H, W)``, ``centers``: ``(K, C_sem)``
- ``cluster``: ``(B, L)`` int32; ``count``, ``rowsum``, ``colsum``: ``(B, K)`` int64
- ``perm``, ``inv``: ``(B, L)`` int32; ``perm[t]`` is the raster index scanned at step ``t``
- ``x``, ``dt``, ``z``: ``(B, L, D)``; ``A``: ``(D, N)``; ``Bm``, ``Cm``: ``(B, L, N)``
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

NORM_EPS = 1e-6
# Reference scan tiling: tokens per chunk (Python steps per block) and elements of one
# (B, block, D, N) temporary: large enough to amortise dispatch, far from (B, L, D, N).
_CHUNK_LEN = 8
_BLOCK_ELEMENTS = 1 << 20


# Longest wavelength of the positional encoding, as in the Transformer and MAE.
POS_TEMPERATURE = 10000.0


def _sincos_1d(positions: torch.Tensor, channels: int) -> torch.Tensor:
    """``(P, channels)``: ``ceil(channels/2)`` sines then ``channels//2`` cosines of
    ``p * w_k``, ``w_k = POS_TEMPERATURE ** (-k / ceil(channels/2))`` (one frequency per pair)."""
    n_sin = (channels + 1) // 2
    k = torch.arange(n_sin, device=positions.device, dtype=torch.float64)
    omega = POS_TEMPERATURE ** (-k / max(n_sin, 1))
    angle = positions.to(torch.float64)[:, None] * omega[None, :]
    table = torch.cat([torch.sin(angle), torch.cos(angle[:, : channels // 2])], dim=1)
    return table.to(torch.float32)


def positional_tables(height: int, width: int, channels: int, device=None):
    """The positional encoding in separable form: ``(pos_row (H, channels // 2),
    pos_col (W, channels - channels // 2))`` float32. Channel ``j < channels // 2`` of pixel
    ``(r, c)`` gets ``pos_row[r, j]``, the others ``pos_col[c, j - channels // 2]``. The kernels
    take these tables as inputs, so every backend adds the same numbers.

    A standard multi-frequency 2-D sine-cosine encoding (as MAE's ``get_2d_sincos_pos_embed``):
    the first half of the channels encodes the row ``r``, the second half the column ``c``, each
    half as sines then cosines of the integer position times geometrically spaced frequencies
    (:func:`_sincos_1d`). Departure from the paper's Eq. 2 (``sin(pi*u)`` on every row channel,
    ``cos(pi*v)`` on every column channel, ``u, v`` in [0, 1]): there ``sin`` gives rows ``r`` and
    ``H-1-r`` the same code, so clustering could not tell top from bottom (docs/design.md §9). Computed in float64 and rounded once, so the tables are the same
    numbers on every device.
    """
    half = channels // 2
    rows = torch.arange(height, dtype=torch.float64)
    cols = torch.arange(width, dtype=torch.float64)
    pos_row = _sincos_1d(rows, half).to(device)
    pos_col = _sincos_1d(cols, channels - half).to(device)
    return pos_row.contiguous(), pos_col.contiguous()


def positional_encoding(height: int, width: int, channels: int, device=None) -> torch.Tensor:
    """``(channels, H, W)`` float32: :func:`positional_tables` broadcast over the image."""
    pos_row, pos_col = positional_tables(height, width, channels, device)
    half = channels // 2
    pe = torch.empty(channels, height, width, device=device, dtype=torch.float32)
    pe[:half] = pos_row.t()[:, :, None]
    pe[half:] = pos_col.t()[:, None, :]
    return pe


def cluster_scores_ref(feat: torch.Tensor, centers: torch.Tensor, tau) -> torch.Tensor:
    """Paper Eq. 3 logits ``s_{k,i}``: ``(B, L, K)``, cosine similarity over ``tau``.

    Computed in float32 (float64 for float64 input); differentiable in ``feat``, ``centers`` and
    ``tau`` (the training path of :class:`samic_fast.sass.SASS` uses it).
    """
    cd = torch.float64 if feat.dtype == torch.float64 else torch.float32
    b, c, h, w = feat.shape
    f = feat.to(cd) + positional_encoding(h, w, c, feat.device).to(cd)
    f = f.flatten(2).transpose(1, 2)  # (B, L, C)
    cen = centers.to(cd)
    f_norm = f.norm(dim=-1, keepdim=True).clamp_min(NORM_EPS)
    c_norm = cen.norm(dim=-1).clamp_min(NORM_EPS)
    return (f @ cen.t()) / (f_norm * c_norm * tau)


def cluster_sums_ref(cluster: torch.Tensor, num_clusters: int, height: int, width: int):
    """Exact integer ``count``, ``rowsum``, ``colsum`` ``(B, K)`` int64 of a ``(B, L)`` assignment."""
    b, L = cluster.shape
    idx = cluster.long()
    raster = torch.arange(L, device=cluster.device, dtype=torch.int64)
    rows = (raster // width).expand(b, L)
    cols = (raster % width).expand(b, L)
    zeros = torch.zeros(b, num_clusters, device=cluster.device, dtype=torch.int64)
    count = zeros.scatter_add(1, idx, torch.ones_like(idx))
    rowsum = zeros.scatter_add(1, idx, rows)
    colsum = zeros.scatter_add(1, idx, cols)
    return count, rowsum, colsum


def cluster_assign_ref(feat: torch.Tensor, centers: torch.Tensor, tau):
    """Hard cluster assignment (docs/design.md §1 steps 2–4).

    Returns ``cluster (B, L)`` int32 (argmax of Eq. 3, ties to the smaller k) and the exact
    integer sums ``count``, ``rowsum``, ``colsum`` ``(B, K)`` int64 over each cluster's pixels.
    """
    _, _, h, w = feat.shape
    with torch.no_grad():
        scores = cluster_scores_ref(feat, centers, tau)
        # torch.argmax returns the first maximal index: ties go to the smaller k.
        cluster = scores.argmax(dim=-1).to(torch.int32)
    count, rowsum, colsum = cluster_sums_ref(cluster, centers.shape[0], h, w)
    return cluster, count, rowsum, colsum


def cluster_rank_ref(count: torch.Tensor, rowsum: torch.Tensor, colsum: torch.Tensor) -> torch.Tensor:
    """Position ``(B, K)`` int64 of each cluster in the scan (docs/design.md §1 step 4).

    Clusters are ordered by ``(rowsum/count, colsum/count, k)``, compared exactly by
    cross-multiplying the integers; empty clusters go last in index order.
    """
    cnt_j, cnt_k = count[:, :, None], count[:, None, :]
    row_lt = rowsum[:, :, None] * cnt_k < rowsum[:, None, :] * cnt_j
    row_eq = rowsum[:, :, None] * cnt_k == rowsum[:, None, :] * cnt_j
    col_lt = colsum[:, :, None] * cnt_k < colsum[:, None, :] * cnt_j
    col_eq = colsum[:, :, None] * cnt_k == colsum[:, None, :] * cnt_j
    k = count.shape[1]
    idx_lt = torch.arange(k, device=count.device)[:, None] < torch.arange(k, device=count.device)
    full_j, full_k = cnt_j > 0, cnt_k > 0
    key_lt = row_lt | (row_eq & col_lt) | (row_eq & col_eq & idx_lt)
    # before[b, j, k]: cluster j is scanned before cluster k.
    before = torch.where(full_j & full_k, key_lt, full_j & ~full_k) | (~full_j & ~full_k & idx_lt)
    return before.sum(dim=1)


def scan_order_ref(cluster, count, rowsum, colsum, height: int, width: int):
    """Scan permutation (docs/design.md §1 step 5): ``perm, inv`` ``(B, L)`` int32.

    Clusters in the order of :func:`cluster_rank_ref`, pixels inside a cluster in raster order.
    ``perm[t]`` is the raster index of the pixel at sequence position ``t``; ``inv[perm[t]] = t``.
    """
    del height, width  # the order depends only on the sums; kept for the fused signature
    rank = cluster_rank_ref(count, rowsum, colsum)
    pixel_rank = torch.gather(rank, 1, cluster.long())
    perm = torch.argsort(pixel_rank, dim=1, stable=True)
    inv = torch.empty_like(perm)
    positions = torch.arange(perm.shape[1], device=perm.device).expand_as(perm)
    inv.scatter_(1, perm, positions)
    return perm.to(torch.int32), inv.to(torch.int32)


def _scan_block(a, b, c, h_in):
    """Scan one block of ``nch`` chunks of ``T`` tokens: ``a, b: (B, nch, T, D, N)`` decays and
    inputs, ``c: (B, nch, T, N)``, ``h_in: (B, D, N)``. Returns ``y (B, nch*T, D)`` and the last state.

    Pass 1 runs the recurrence from a zero state inside every chunk at once (a Python step per
    position inside a chunk, each step vectorised over all chunks); pass 2 carries the chunk-end
    states across chunks; pass 3 adds each chunk's carried-in state, decayed by the cumulative
    product of ``a``. Every factor is a product of decays in (0, 1], so nothing can overflow.
    """
    batch, nch, T, dim, nstate = a.shape
    h = torch.zeros_like(b[:, :, 0])
    local = []
    for t in range(T):
        h = torch.addcmul(b[:, :, t], a[:, :, t], h)
        local.append(h)
    h_local = torch.stack(local, dim=2)  # (B, nch, T, D, N)
    cum_decay = torch.cumprod(a, dim=2)
    carried = []
    for k in range(nch):
        carried.append(h_in)
        h_in = cum_decay[:, k, -1] * h_in + h_local[:, k, -1]
    h_start = torch.stack(carried, dim=1)  # (B, nch, D, N)
    hs = h_local + cum_decay * h_start[:, :, None]
    y = torch.einsum("bktdn,bktn->bktd", hs, c)
    return y.reshape(batch, nch * T, dim), h_in


def scan_tiling(batch: int, seqlen: int, dim: int, nstate: int) -> tuple[int, int]:
    """``(T, tokens per block)`` of the reference scan: chunks of ``T`` tokens, blocks of whole
    chunks holding about ``_BLOCK_ELEMENTS`` state elements. The Python loop runs once per block."""
    T = min(_CHUNK_LEN, seqlen)
    nch = max(1, _BLOCK_ELEMENTS // (max(1, batch * dim * nstate) * T))
    return T, nch * T


def _scan_ref(x, dt, A, Bm, Cm, perm, D, z, dt_bias, delta_softplus, return_last_state=False):
    """Shared body of the reference scans; ``perm`` None means raster order.

    Works block by block: each block's rows are gathered (by ``perm`` when given), turned into
    ``delta`` and the ``(B, T, D, N)`` decays and inputs, scanned by :func:`_scan_block`, and
    written (scattered) into the output. Nothing of size ``(B, L, D)`` is made besides the output,
    so the peak extra memory is a few block-sized temporaries (a 4K image's first stage has
    ``L = 2M``: whole-sequence copies would cost gigabytes each).
    """
    cd = torch.float64 if x.dtype == torch.float64 else torch.float32
    batch, seqlen, dim = x.shape
    nstate = A.shape[1]
    a_mat = A.to(cd)
    bias = None if dt_bias is None else dt_bias.to(cd)
    skip = None if D is None else D.to(cd)
    index = None if perm is None else perm.long()
    T, block = scan_tiling(batch, seqlen, dim, nstate)
    out = torch.empty_like(x)
    h = x.new_zeros(batch, dim, nstate, dtype=cd)
    for start in range(0, seqlen, block):
        stop = min(start + block, seqlen)
        rows = None if index is None else index[:, start:stop]

        def take(t):
            part = t[:, start:stop] if rows is None else _gather_rows(t, rows)
            return part.to(cd)

        xb, delta = take(x), take(dt)
        if bias is not None:
            delta = delta + bias
        if delta_softplus:
            delta = F.softplus(delta)
        nch = -(-(stop - start) // T)
        pad = nch * T - (stop - start)
        # Padding tokens get delta = 0: decay 1 and input 0 leave the state as it is.
        padded = (lambda t: F.pad(t, (0, 0, 0, pad))) if pad else (lambda t: t)  # noqa: E731
        d_p, bm_p, cm_p = padded(delta), padded(take(Bm)), padded(take(Cm))
        a = torch.exp(d_p[..., None] * a_mat).view(batch, nch, T, dim, nstate)
        b = ((d_p * padded(xb))[..., None] * bm_p[:, :, None, :]).view(batch, nch, T, dim, nstate)
        y_blk, h = _scan_block(a, b, cm_p.reshape(batch, nch, T, nstate), h)  # Cm may be a strided view
        y_blk = y_blk[:, : stop - start]
        if skip is not None:
            y_blk = y_blk + xb * skip
        if z is not None:
            y_blk = y_blk * F.silu(take(z))
        y_blk = y_blk.to(x.dtype)
        if rows is None:
            out[:, start:stop] = y_blk
        else:
            out.scatter_(1, rows[..., None].expand(-1, -1, dim), y_blk)
    return (out, h) if return_last_state else out


def selective_scan_ref(x, dt, A, Bm, Cm, D=None, z=None, dt_bias=None, delta_softplus=True,
                       return_last_state=False):
    """Mamba-1 selective scan in raster order (docs/design.md §1 step 6), channel-last.

    ``x, dt, z: (B, L, D)``, ``A: (D, N)``, ``Bm, Cm: (B, L, N)``, ``D, dt_bias: (D,)``.
    Returns ``y (B, L, D)`` in ``x``'s dtype; the state is float32 (float64 for float64 ``x``).

    Vectorised, not a Python step per token: the sequence is cut into blocks of ``nch`` chunks of
    ``T`` tokens (see :func:`_scan_block`), so the Python loop runs ``L / nch`` times and the
    largest temporaries are ``(B, nch*T, D, N)`` with ``nch*T*B*D*N`` about 2^20, never
    ``(B, L, D, N)``. With ``return_last_state`` it returns ``(y, last_state)``, the state after
    the last step, ``(B, D, N)`` float32 (float64 for float64 ``x``).
    """
    return _scan_ref(x, dt, A, Bm, Cm, None, D, z, dt_bias, delta_softplus, return_last_state)


def _gather_rows(t: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    return torch.gather(t, 1, index[..., None].expand(-1, -1, t.shape[-1]))


def sass_scan_ref(x, dt, A, Bm, Cm, perm, D=None, z=None, dt_bias=None, delta_softplus=True,
                  return_last_state=False):
    """Semantic-aware scan (docs/design.md §1 steps 5–7, paper Eq. 5–6): the scan of
    :func:`selective_scan_ref` along ``perm``, outputs back in raster order (``y[perm[t]]`` is
    step ``t``). Shapes as there; ``perm (B, L)``; ``last_state`` is the state after step ``L - 1``. Rows are gathered and scattered one block at a
    time, so not even the reference makes whole permuted copies.
    """
    return _scan_ref(x, dt, A, Bm, Cm, perm, D, z, dt_bias, delta_softplus, return_last_state)
