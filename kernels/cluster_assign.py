"""Fused hard semantic clustering (paper §3.2.2, Eq. 2–4; docs/design.md §1 steps 2–4, §2).

One pass over ``feat``: each program takes a block of pixels, adds the positional encoding on
the fly, accumulates the dot products with all K centers and both norms channel by channel
(``feat`` is ``(B, C, H, W)``, so one channel of a pixel block is a contiguous, coalesced load),
normalises, takes the argmax (ties to the smaller k) and reduces its block's exact integer
``count``, ``rowsum``, ``colsum`` per cluster into int32 partials. A second, tiny kernel sums the
partials in int64 straight into the three outputs: exact and independent of the order (no float
atomics), and two launches a call in all (a ``partial.sum`` and three copies into separate
outputs would be four more: at the context model's small images launches, not bytes, cost time).

``feat`` may have any channel stride as long as each image's pixels form one strided run
(``stride(H) == W * stride(W)``): contiguous ``(B, C, H, W)`` and ``channels_last`` (what cuDNN's
convolutions return for a channels_last input, as in :class:`samic_fast.sass.SemanticBranch`)
both run without a copy.

The positional encoding is passed in as two small tables, ``pos_row (H, C // 2)`` added to
channels ``j < C // 2`` and ``pos_col (W, C - C // 2)`` added to the rest (the ops layer builds them
with the reference's own function, so the encoded features are bit-identical to the reference's;
the kernel does not care what encoding they hold). ``tau`` is not used by the kernel: the hard assignment is
the argmax of ``s / tau`` over k, and a positive scale does not move it (beyond rounding at
near-ties, which docs/design.md §5 allows). This also keeps a tensor ``tau`` (possibly requiring grad)
from forcing a device-to-host copy.
"""

from typing import Optional

import torch
import triton
import triton.language as tl

from ._utils import COMPILE_OPTIONS, cdiv, is_interpreter, next_pow2, on_device


def _cluster_assign_config(num_clusters: int) -> dict:
    """Block sizes for one launch: ``BLOCK_L`` pixels x ``BLOCK_K`` centers of score registers."""
    block_k = next_pow2(num_clusters)
    if is_interpreter():
        # Small blocks: several programs per image even at test shapes (multi-block partials).
        # BLOCK_NB = 2: the sums kernel loops over several tiles of blocks at test shapes.
        return {"BLOCK_L": 16, "BLOCK_K": block_k, "BLOCK_NB": 2, "num_warps": 1}
    # Keep the (BLOCK_L, BLOCK_K) fp32 score tile at 8K elements: 64 registers a thread at 4 warps;
    # the sums kernel's (BLOCK_NB, BLOCK_K) int tiles at 4K.
    return {"BLOCK_L": max(32, min(256, 8192 // block_k)), "BLOCK_K": block_k,
            "BLOCK_NB": max(16, 4096 // block_k), "num_warps": 4}


@triton.jit
def _cluster_assign_fwd_kernel(
    feat_ptr,  # (B, C, H, W) any float dtype, strides (SB, SC, W * SL, SL)
    centers_ptr,  # (K, C)
    pos_row_ptr,  # (H, HALF) fp32: added to channel j < HALF of row r
    pos_col_ptr,  # (W, C - HALF) fp32: added to channel j >= HALF of column c
    cluster_ptr,  # (B, L) int32
    partial_ptr,  # (3, B, NBLK, K) int32: count, rowsum, colsum of this block
    SB,
    SC,
    SL,
    C,
    W,
    L,
    K,
    NBLK,
    HALF,  # C // 2: channels [0, HALF) get the row term, the rest the column term
    PLANE,  # B * NBLK * K: stride between the count, rowsum and colsum planes of partial
    NORM_EPS: tl.constexpr,
    IS_FP64: tl.constexpr,
    BLOCK_L: tl.constexpr,
    BLOCK_K: tl.constexpr,
):
    pid_l = tl.program_id(0)
    pid_b = tl.program_id(1)
    cdt = tl.float64 if IS_FP64 else tl.float32

    offs = pid_l * BLOCK_L + tl.arange(0, BLOCK_L)
    lmask = offs < L
    row = offs // W
    col = offs % W
    pr_ptrs = pos_row_ptr + row * HALF
    pc_ptrs = pos_col_ptr + col * (C - HALF) - HALF

    ks = tl.arange(0, BLOCK_K)
    kmask = ks < K
    acc = tl.zeros([BLOCK_L, BLOCK_K], dtype=cdt)
    f_sq = tl.zeros([BLOCK_L], dtype=cdt)
    c_sq = tl.zeros([BLOCK_K], dtype=cdt)
    # Pointer increments (64-bit) instead of c * SC: no int32 overflow for large C * L.
    f_ptrs = feat_ptr + pid_b.to(tl.int64) * SB + offs.to(tl.int64) * SL
    c_ptrs = centers_ptr + ks * C
    # `while`, not `for c in range(0, C)`: C is a run-time argument, which Triton 3.6's
    # interpreter cannot take as a `range` bound (kernels/_utils.py, "Triton version compatibility").
    c = 0
    while c < C:
        f = tl.load(f_ptrs, mask=lmask, other=0.0).to(cdt)
        # The channel's half is compared as a block (kernels/_utils.py, Triton 3.9 interpreter).
        in_row = tl.full([BLOCK_L], c, tl.int32) < HALF
        pe_r = tl.load(pr_ptrs + c, mask=lmask & in_row, other=0.0)
        pe_c = tl.load(pc_ptrs + c, mask=lmask & (in_row == 0), other=0.0)
        f = f + tl.where(in_row, pe_r, pe_c).to(cdt)
        cen = tl.load(c_ptrs, mask=kmask, other=0.0).to(cdt)
        acc += f[:, None] * cen[None, :]
        f_sq += f * f
        c_sq += cen * cen
        f_ptrs += SC
        c_ptrs += 1
        c += 1

    # Cosine score, as the reference: dot / (max(|f|, eps) * max(|c|, eps)). IEEE-rounded sqrt and
    # division in fp32 (the default fp32 '/' and sqrt on CUDA are approximate) keep the scores
    # within an ulp or two of torch's, so only genuine near-ties can flip.
    if IS_FP64:
        f_norm = tl.maximum(tl.sqrt(f_sq), NORM_EPS)
        c_norm = tl.maximum(tl.sqrt(c_sq), NORM_EPS)
        score = acc / (f_norm[:, None] * c_norm[None, :])
    else:
        f_norm = tl.maximum(tl.sqrt_rn(f_sq), NORM_EPS)
        c_norm = tl.maximum(tl.sqrt_rn(c_sq), NORM_EPS)
        score = tl.div_rn(acc, f_norm[:, None] * c_norm[None, :])
    score = tl.where(kmask[None, :], score, float("-inf"))
    # tie_break_left: equal maxima go to the smaller k, as torch.argmax does.
    best = tl.argmax(score, axis=1, tie_break_left=True).to(tl.int32)
    tl.store(cluster_ptr + pid_b.to(tl.int64) * L + offs, best, mask=lmask)

    # Exact per-block integer sums. int32 is enough inside a block (BLOCK_L * max row < 2^31);
    # the cross-block sum is done in int64 on the host side of the launcher.
    onehot = (best[:, None] == ks[None, :]) & lmask[:, None]
    cnt = tl.sum(onehot.to(tl.int32), axis=0)
    rsum = tl.sum(tl.where(onehot, row[:, None], 0), axis=0)
    csum = tl.sum(tl.where(onehot, col[:, None], 0), axis=0)
    part = partial_ptr + (pid_b * NBLK + pid_l).to(tl.int64) * K + ks
    tl.store(part, cnt, mask=kmask)
    tl.store(part + PLANE, rsum, mask=kmask)
    tl.store(part + 2 * PLANE, csum, mask=kmask)


@triton.jit
def _cluster_sums_kernel(
    partial_ptr,  # (3, B, NBLK, K) int32
    count_ptr,  # (B, K) int64
    rowsum_ptr,  # (B, K) int64
    colsum_ptr,  # (B, K) int64
    K,
    NBLK,
    PLANE,  # B * NBLK * K
    BLOCK_NB: tl.constexpr,
    BLOCK_K: tl.constexpr,
):
    """One program per image: int64 sums of its blocks' partials, tile by tile over blocks."""
    pid_b = tl.program_id(0)
    ks = tl.arange(0, BLOCK_K)
    kmask = ks < K
    nb = tl.arange(0, BLOCK_NB)
    cnt = tl.zeros([BLOCK_K], dtype=tl.int64)
    rsum = tl.zeros([BLOCK_K], dtype=tl.int64)
    csum = tl.zeros([BLOCK_K], dtype=tl.int64)
    base = partial_ptr + pid_b.to(tl.int64) * NBLK * K
    # `while`: NBLK is a run-time bound (kernels/_utils.py, "Triton version compatibility").
    nb0 = 0
    while nb0 < NBLK:
        rows = nb0 + nb
        ptrs = base + rows[:, None].to(tl.int64) * K + ks[None, :]
        m = (rows[:, None] < NBLK) & kmask[None, :]
        cnt += tl.sum(tl.load(ptrs, mask=m, other=0).to(tl.int64), axis=0)
        rsum += tl.sum(tl.load(ptrs + PLANE, mask=m, other=0).to(tl.int64), axis=0)
        csum += tl.sum(tl.load(ptrs + 2 * PLANE, mask=m, other=0).to(tl.int64), axis=0)
        nb0 += BLOCK_NB
    out = pid_b * K + ks
    tl.store(count_ptr + out, cnt, mask=kmask)
    tl.store(rowsum_ptr + out, rsum, mask=kmask)
    tl.store(colsum_ptr + out, csum, mask=kmask)


def cluster_assign_fwd(
    feat: torch.Tensor,
    centers: torch.Tensor,
    pos_row: torch.Tensor,
    pos_col: torch.Tensor,
    norm_eps: float = 1e-6,
    cluster: Optional[torch.Tensor] = None,
    partial: Optional[torch.Tensor] = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Launch the fused assignment.

    ``feat: (batch, c_sem, height, width)`` float, any channel and batch strides with each
    image's pixels one strided run (``stride(2) == width * stride(3)``: contiguous or
    channels_last); ``centers: (K, c_sem)``;
    ``pos_row (height, c_sem // 2)``, ``pos_col (width, c_sem - c_sem // 2)`` float32 contiguous:
    the positional encoding, added to the first and second half of the channels; ``norm_eps``
    clamps both norms from below, as the reference does.
    Returns ``cluster (batch, L)`` int32 and ``count, rowsum, colsum (batch, K)`` int64.
    ``cluster`` and ``partial (3, batch, nblocks, K)`` int32 may be passed in (tests poison them
    to prove every element is written).
    """
    batch, c_sem, height, width = feat.shape
    k = centers.shape[0]
    seqlen = height * width
    cfg = _cluster_assign_config(k)
    nblk = cdiv(seqlen, cfg["BLOCK_L"])
    half = c_sem // 2
    assert pos_row.shape == (height, half) and pos_col.shape == (width, c_sem - half)
    assert pixels_are_one_run(feat), f"feat's pixels are not one strided run: strides {feat.stride()}"
    if cluster is None:
        cluster = torch.empty(batch, seqlen, device=feat.device, dtype=torch.int32)
    if partial is None:
        partial = torch.empty(3, batch, nblk, k, device=feat.device, dtype=torch.int32)
    assert cluster.shape == (batch, seqlen) and partial.shape == (3, batch, nblk, k)
    sums = [torch.empty(batch, k, device=feat.device, dtype=torch.int64) for _ in range(3)]

    # torch.cuda.device: Triton launches on the current device (see sass_scan_fwd).
    with on_device(feat.device):
        _cluster_assign_fwd_kernel[(nblk, batch)](
            feat, centers.contiguous(), pos_row.contiguous(), pos_col.contiguous(), cluster, partial,
            feat.stride(0), feat.stride(1), feat.stride(3),
            c_sem, width, seqlen, k, nblk, half, batch * nblk * k,
            NORM_EPS=norm_eps,
            IS_FP64=feat.dtype == torch.float64,
            BLOCK_L=cfg["BLOCK_L"],
            BLOCK_K=cfg["BLOCK_K"],
            num_warps=cfg["num_warps"], **COMPILE_OPTIONS,
        )
        # Exact, order-independent integer reduction of the block partials into three separate
        # (B, K) tensors (custom ops may not return aliasing outputs).
        _cluster_sums_kernel[(batch,)](
            partial, *sums, k, nblk, batch * nblk * k,
            BLOCK_NB=cfg["BLOCK_NB"], BLOCK_K=cfg["BLOCK_K"], num_warps=cfg["num_warps"],
            **COMPILE_OPTIONS,
        )
    return (cluster, *sums)


def pixels_are_one_run(feat: torch.Tensor) -> bool:
    """Whether ``feat (B, C, H, W)``'s pixels of one image and channel are one strided run,
    ``stride(2) == W * stride(3)`` (true for contiguous and channels_last tensors)."""
    _, _, height, width = feat.shape
    return height == 1 or feat.stride(2) == width * feat.stride(3)


__all__ = ["cluster_assign_fwd", "pixels_are_one_run"]
