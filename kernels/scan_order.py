"""Scan permutation from a hard assignment (paper §3.2.2; docs/design.md §1 steps 4–5, §2).

``perm[t]`` lists the pixels cluster by cluster, clusters sorted by their exact integer keys
``(rowsum/count, colsum/count, k)`` (empty clusters last), pixels of a cluster in raster order:
a stable counting sort. Three small launches (two for small images), all integer arithmetic,
so the result is bit-identical to :func:`samic_fast.ref.scan_order_ref` and deterministic:

1. ``_scan_order_hist_kernel`` (grid: pixel blocks x batch): per-block histogram of cluster ids.
2. ``_scan_order_start_kernel`` (grid: batch): ranks the K <= 64 clusters in registers by
   comparing every pair of keys exactly (cross-multiplied int64, as the reference), turns the
   ranks into each cluster's first sequence position (exclusive prefix of counts in rank order),
   then rewrites the block histograms in place as each (block, cluster)'s first position: an
   exclusive prefix over blocks, tiled so the sequential part is ``nblocks / BLOCK_NB`` steps.
   When the image has at most ``FUSE_BLOCKS`` pixel blocks (the context model's latents), this
   kernel also computes the histograms, block by block (``FUSED_HIST``), and step 1 is skipped:
   a few sequential block loads cost less than a launch.
3. ``_scan_order_scatter_kernel`` (grid: pixel blocks x batch): a pixel's position is its
   (block, cluster) start plus its rank among the earlier pixels of its cluster inside the block
   (an exclusive one-hot cumsum); writes ``perm[pos] = i`` and ``inv[i] = pos``.

Inputs are trusted to be consistent (``count`` is the histogram of ``cluster``, ids in
``[0, K)``), as :mod:`samic_fast.ops` documents; ids or positions out of range are masked, so
inconsistent inputs give an unspecified permutation but never write out of bounds.
"""

from typing import Optional

import torch
import triton
import triton.language as tl

from ._utils import COMPILE_OPTIONS, cdiv, is_interpreter, next_pow2, on_device


def _scan_order_config(num_clusters: int) -> dict:
    block_k = next_pow2(num_clusters)
    if is_interpreter():
        # Tiny tiles so test shapes span several pixel blocks and several prefix tiles.
        return {"BLOCK_L": 16, "BLOCK_K": block_k, "BLOCK_NB": 4, "FUSE_BLOCKS": 4, "num_warps": 1}
    # One-hot tiles of (BLOCK_L, BLOCK_K) int32 kept at 8K elements per program.
    return {
        "BLOCK_L": max(64, min(1024, 8192 // block_k)),
        "BLOCK_K": block_k,
        "BLOCK_NB": max(16, 4096 // block_k),
        "FUSE_BLOCKS": 8,
        "num_warps": 4,
    }


@triton.jit
def _scan_order_hist_kernel(
    cluster_ptr,  # (B, L) int32 or int64
    hist_ptr,  # (B, NBLK, K) int32: count of each cluster id in each block
    L,
    K,
    NBLK,
    BLOCK_L: tl.constexpr,
    BLOCK_K: tl.constexpr,
):
    pid_l = tl.program_id(0)
    pid_b = tl.program_id(1)
    offs = pid_l * BLOCK_L + tl.arange(0, BLOCK_L)
    lmask = offs < L
    cl = tl.load(cluster_ptr + pid_b.to(tl.int64) * L + offs, mask=lmask, other=-1).to(tl.int32)
    ks = tl.arange(0, BLOCK_K)
    onehot = (cl[:, None] == ks[None, :]) & lmask[:, None]
    hist = tl.sum(onehot.to(tl.int32), axis=0)
    tl.store(hist_ptr + (pid_b * NBLK + pid_l).to(tl.int64) * K + ks, hist, mask=ks < K)


@triton.jit
def _scan_order_start_kernel(
    count_ptr,  # (B, K) int64
    rowsum_ptr,  # (B, K) int64
    colsum_ptr,  # (B, K) int64
    hist_ptr,  # (B, NBLK, K) int32, in: block histograms (unless FUSED_HIST), out: first position per (block, k)
    cluster_ptr,  # (B, L) int32 or int64, read only with FUSED_HIST
    L,
    K,
    NBLK,
    BLOCK_K: tl.constexpr,
    BLOCK_NB: tl.constexpr,
    BLOCK_L: tl.constexpr,
    FUSED_HIST: tl.constexpr,
):
    pid_b = tl.program_id(0)
    ks = tl.arange(0, BLOCK_K)
    kmask = ks < K
    base = pid_b * K
    cnt = tl.load(count_ptr + base + ks, mask=kmask, other=0).to(tl.int64)
    rsum = tl.load(rowsum_ptr + base + ks, mask=kmask, other=0).to(tl.int64)
    csum = tl.load(colsum_ptr + base + ks, mask=kmask, other=0).to(tl.int64)

    # Pairwise "j before k" on exact integers: mean row, then mean column, then index; empty
    # clusters after all non-empty ones, in index order. Rows index j, columns index k.
    cj, ck = cnt[:, None], cnt[None, :]
    r_lhs, r_rhs = rsum[:, None] * ck, rsum[None, :] * cj
    c_lhs, c_rhs = csum[:, None] * ck, csum[None, :] * cj
    idx_lt = ks[:, None] < ks[None, :]
    key_lt = (r_lhs < r_rhs) | ((r_lhs == r_rhs) & (c_lhs < c_rhs)) | (
        (r_lhs == r_rhs) & (c_lhs == c_rhs) & idx_lt
    )
    full_j, full_k = cj > 0, ck > 0
    before = tl.where(full_j & full_k, key_lt, full_j & (ck == 0)) | ((cj == 0) & (ck == 0) & idx_lt)
    before = before & kmask[:, None] & kmask[None, :]
    rank = tl.sum(before.to(tl.int32), axis=0)  # (BLOCK_K,) rank of cluster k

    # First sequence position of cluster k: total count of the clusters ranked before it.
    rank_j = tl.sum(tl.where(ks[:, None] == ks[None, :], rank[None, :], 0), axis=1)  # rank as a column
    earlier = (rank_j[:, None] < rank[None, :]) & kmask[:, None]
    carry = tl.sum(tl.where(earlier, cj, 0), axis=0)  # (BLOCK_K,) int64

    h_base = hist_ptr + pid_b.to(tl.int64) * NBLK * K
    if FUSED_HIST:
        # Few blocks: histogram each block here (as the hist kernel would) and write its first
        # positions, one block after another.
        offs = tl.arange(0, BLOCK_L)
        c_base = cluster_ptr + pid_b.to(tl.int64) * L
        blk = 0
        while blk < NBLK:
            px = blk * BLOCK_L + offs
            cl = tl.load(c_base + px, mask=px < L, other=-1).to(tl.int32)
            onehot = (cl[:, None] == ks[None, :]) & (px < L)[:, None]
            hist = tl.sum(onehot.to(tl.int32), axis=0).to(tl.int64)
            tl.store(h_base + blk * K + ks, carry.to(tl.int32), mask=kmask)
            carry += hist
            blk += 1
    else:
        # Exclusive prefix over blocks, tile by tile: hist[b, blk, k] <- start_k + sum_{blk' < blk}.
        nb = tl.arange(0, BLOCK_NB)
        # `while`, not `for nb0 in range(0, NBLK, BLOCK_NB)`: NBLK is a run-time argument, which
        # Triton 3.6's interpreter cannot take as a `range` bound (kernels/_utils.py, "Triton
        # version compatibility").
        nb0 = 0
        while nb0 < NBLK:
            rows = nb0 + nb
            ptrs = h_base + rows[:, None].to(tl.int64) * K + ks[None, :]
            m = (rows[:, None] < NBLK) & kmask[None, :]
            tile = tl.load(ptrs, mask=m, other=0).to(tl.int64)
            incl = tl.cumsum(tile, axis=0)
            tl.store(ptrs, (incl - tile + carry[None, :]).to(tl.int32), mask=m)
            carry += tl.sum(tile, axis=0)
            nb0 += BLOCK_NB


@triton.jit
def _scan_order_scatter_kernel(
    cluster_ptr,  # (B, L) int32 or int64
    start_ptr,  # (B, NBLK, K) int32: first position of each (block, cluster)
    perm_ptr,  # (B, L) int32
    inv_ptr,  # (B, L) int32
    L,
    K,
    NBLK,
    BLOCK_L: tl.constexpr,
    BLOCK_K: tl.constexpr,
):
    pid_l = tl.program_id(0)
    pid_b = tl.program_id(1)
    offs = pid_l * BLOCK_L + tl.arange(0, BLOCK_L)
    lmask = offs < L
    row_base = pid_b.to(tl.int64) * L
    cl = tl.load(cluster_ptr + row_base + offs, mask=lmask, other=-1).to(tl.int32)
    valid = lmask & (cl >= 0) & (cl < K)
    ks = tl.arange(0, BLOCK_K)
    onehot = ((cl[:, None] == ks[None, :]) & valid[:, None]).to(tl.int32)
    # Rank among earlier pixels of the same cluster in this block: exclusive cumsum down the rows.
    earlier = tl.cumsum(onehot, axis=0) - onehot
    within = tl.sum(earlier * onehot, axis=1)
    safe_cl = tl.where(valid, cl, 0)
    first = tl.load(start_ptr + (pid_b * NBLK + pid_l).to(tl.int64) * K + safe_cl, mask=valid, other=0)
    pos = first + within
    ok = valid & (pos >= 0) & (pos < L)
    tl.store(perm_ptr + row_base + pos, offs.to(tl.int32), mask=ok)
    tl.store(inv_ptr + row_base + offs, pos.to(tl.int32), mask=ok)


def scan_order_fwd(
    cluster: torch.Tensor,
    count: torch.Tensor,
    rowsum: torch.Tensor,
    colsum: torch.Tensor,
    perm: Optional[torch.Tensor] = None,
    inv: Optional[torch.Tensor] = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Launch the scan-order kernels (three; two when the image has at most ``FUSE_BLOCKS``
    pixel blocks).

    ``cluster: (batch, L)`` int32/int64 ids in ``[0, K)``; ``count, rowsum, colsum: (batch, K)``
    int64. Returns ``perm, inv (batch, L)`` int32 (may be passed in; tests poison them).
    """
    batch, seqlen = cluster.shape
    k = count.shape[1]
    cfg = _scan_order_config(k)
    nblk = cdiv(seqlen, cfg["BLOCK_L"])
    if perm is None:
        perm = torch.empty(batch, seqlen, device=cluster.device, dtype=torch.int32)
    if inv is None:
        inv = torch.empty(batch, seqlen, device=cluster.device, dtype=torch.int32)
    assert perm.shape == (batch, seqlen) and inv.shape == (batch, seqlen)
    hist = torch.empty(batch, nblk, k, device=cluster.device, dtype=torch.int32)
    grid = (nblk, batch)
    fused = nblk <= cfg["FUSE_BLOCKS"]
    with on_device(cluster.device):  # the tensors' GPU, not the current one (_utils.on_device)
        if not fused:
            _scan_order_hist_kernel[grid](
                cluster, hist, seqlen, k, nblk,
                BLOCK_L=cfg["BLOCK_L"], BLOCK_K=cfg["BLOCK_K"], num_warps=cfg["num_warps"],
                **COMPILE_OPTIONS,
            )
        _scan_order_start_kernel[(batch,)](
            count, rowsum, colsum, hist, cluster, seqlen, k, nblk,
            BLOCK_K=cfg["BLOCK_K"], BLOCK_NB=cfg["BLOCK_NB"], BLOCK_L=cfg["BLOCK_L"], FUSED_HIST=fused,
            num_warps=cfg["num_warps"], **COMPILE_OPTIONS,
        )
        _scan_order_scatter_kernel[grid](
            cluster, hist, perm, inv, seqlen, k, nblk,
            BLOCK_L=cfg["BLOCK_L"], BLOCK_K=cfg["BLOCK_K"], num_warps=cfg["num_warps"],
            **COMPILE_OPTIONS,
        )
    return perm, inv


__all__ = ["scan_order_fwd"]
