"""Fused semantic-aware selective scan (paper §3.2.3, Eq. 5–6; docs/design.md §1 steps 5–7, §2).

One kernel family serves both scans: with ``perm`` the step ``t`` reads row ``perm[t]`` of
``x, dt, Bm, Cm, z`` and writes its output to row ``perm[t]`` of ``y`` (the gather and the inverse
scatter live in the loads and the store; no permuted copy is ever made); without it (``HAS_PERM``
compiled out) step ``t`` is row ``t``. Every tensor comes with its strides, so mamba-ssm's
``(B, D, L)`` layout is just another stride set (no copy), and ``Bm, Cm`` may be grouped.

Recurrence (Mamba-1; state fp32, fp64 for fp64 inputs; ``LOG2E = log2(e)``)::

    delta = softplus(dt[r] + dt_bias)                       (both optional)     per channel
    h     = exp2(delta * A * LOG2E) * h + (delta * x[r]) * Bm[r, g(d)]           h: (N, D)
    y[r]  = (sum_n Cm[r, g(d)] * h + Dskip * x[r]) * silu(z[r])                (D, z optional)

Shapes (``B`` batch, ``L`` steps, ``D`` channels, ``N <= 64`` states, ``G`` groups of ``D / G``
channels sharing ``Bm, Cm``): ``x, dt, z, y: (B, L, D)`` any strides; ``A: (D, N)``;
``Bm, Cm: (B, G, L, N)``; ``perm: (B, L)``; ``D, dt_bias: (D,)``; ``last_state: (B, D, N)``.

Design (each choice, and why)
-----------------------------
* **Channels across lanes, state in registers.** A program holds the state as an
  ``[BLOCK_N, BLOCK_D]`` tile whose fastest axis is the channel, so Triton's default layout gives
  each lane its channels with all their ``N`` states in registers (32 states a thread: two
  channels a lane at N <= 16, one at N = 32, two lanes a channel at N = 64). Per step and
  channel, ``delta``, the softplus and ``delta * x`` are computed once (one lane, not ``N``), the
  sum over ``N`` for ``y`` is in-thread FMAs (no shuffles, no barriers), ``A`` is pre-scaled by
  ``log2 e`` so each decay is one ``MUFU.EX2``, and softplus is one ``MUFU.EX2`` plus an 8-FMA
  log1p polynomial (fp32-exact to 1.9e-7).
  The previous ``[BLOCK_D, BLOCK_N]`` tile put ``N`` across lanes: 16 lanes recomputed each
  channel's softplus and the ``y`` sum took 32 shuffles and 2 barriers per step.
* **Pipelined loads.** The step loop is a ``tl.range`` with a compile-time trip count
  (``CHUNK``) and ``num_stages``: Triton's software pipeliner issues the ``perm[t]`` load and the
  row loads of later steps (async copies) while the recurrence of the current step runs. The
  recurrence itself is one FFMA per state on the dependent path; everything else (loads,
  softplus, exponentials) depends only on the inputs, so in-flight steps overlap.
* **Chunks sized to fill the GPU.** The sequence is cut into chunks of ``CHUNK`` steps so that
  ``batch * channel blocks * chunks`` one-warp programs give :data:`WARPS_PER_SM` warps per SM
  (8 on each of an H100's 132 SMs): batch 1 fills the device at every shape, and a short sequence
  gets short chunks (down to :data:`MIN_CHUNK` steps), so its latency is ``2 * CHUNK`` steps
  plus a carry of ``log``-depth, not ``L / nchunks`` dependent steps.
* **Three launches.** (1) ``_sass_scan_chunk_state_kernel`` scans every chunk but the last from
  a zero state and stores its end state ``(B, NCHUNK, N, D)`` and ``sum(delta)`` ``(B, NCHUNK, D)``
  (it reads ``x, dt, Bm`` only). (2) ``_sass_scan_carry_kernel`` composes chunks with an
  associative scan: a chunk maps a start state ``h`` to ``a * h + b`` with ``a = exp2(A * LOG2E *
  sum(delta))`` (A is diagonal and constant, so the whole chunk's decay is one exponential) and
  ``b`` its zero-start end state; ``(a1, b1) then (a2, b2) = (a1 a2, a2 b1 + b2)`` is associative,
  so a program per block of ``(n, d)`` elements scans tiles of chunks with
  ``tl.associative_scan`` (a fixed combine order: deterministic, no atomics; the tile's loads
  are all issued at once, then ``BLOCK_C`` dependent FMAs) and writes each chunk's carried-in
  state in place. Its grid is ``N * D / BLOCK_E`` programs per sequence, not the old
  serial loop on ``D / 32`` programs. (3) ``_sass_scan_fwd_kernel`` re-scans each chunk from its
  carried-in state and writes ``y`` once (and the last chunk writes ``last_state``).
* **Re-scan, not correction.** Applying the carried-in state as a correction,
  ``y_t += sum_n Cm_t[n] * exp2(A_n * LOG2E * cumsum(delta)_t) * h_in[n]``, needs the same
  ``L * D * N`` exponentials as re-scanning (one per step, state and channel) and either writes
  partial ``y`` in pass 1 and reads it back (``+8 B`` per element in fp32: +65 % bytes at s1) or
  recomputes the local scan anyway. Its one gain, no dependent chain in pass 3, is already had
  by short chunks (the chain is ``CHUNK`` FFMAs). So the re-scan: ``y`` written once, pass 1
  reads only ``x, dt, Bm`` (and ``perm``).
* **Determinism.** Every program owns disjoint outputs, reductions are in registers or a fixed
  scan tree, the configuration is a function of the shape (no autotuning): bitwise identical
  results from run to run. Offsets are int64 (``row * stride`` exceeds 2^31 at 4K).

Static sm_90 figures (Triton 3.7.1, ``samic-fast bench --static``; fp32, perm, dt_bias, softplus,
D skip; SASS of the loop per warp per step, N=16): pass 1 265 instructions / 34 MUFU / 112
registers, pass 3 313 / 34 / 127, for 64 channels (157 per 32 channels against 470 before); no
shuffles, no spills; the row loads are ``LDGSTS`` async copies. See bench/RESULTS.md.

Written for Triton 3.6 through 3.9, compiled and interpreted alike (``kernels/_utils.py``,
"Triton version compatibility"): the step loops have a compile-time trip count (the last chunk
masks its tail: ``delta = 0`` leaves the state unchanged), run-time loops are ``while`` loops, and
per-program conditions in masks are compared as blocks.
"""

from typing import Optional

import torch
import triton
import triton.language as tl

from ._utils import cdiv, compute_dtype, is_interpreter, next_pow2, num_sms, on_device

#: Warps the chunking aims at: 8 per SM (2 per scheduler; each step has 16-32 independent
#: exponentials and FMAs of ILP, and the loads are pipelined), within the register budget
#: (<= 160 registers a thread: 12 one-warp programs per SM).
WARPS_PER_SM = 8
#: Shortest chunk on a GPU: below it the chunk-state traffic (4 passes over ``N * D`` floats per
#: chunk) outweighs the rows it covers.
MIN_CHUNK = 8
#: Chunk length under the interpreter: tiny, so test shapes cross several chunks.
INTERPRETER_CHUNK = 8
#: Chunk tile of the carry scan (chunks composed per associative scan).
CARRY_BLOCK_C = 128
#: Software-pipelining depth of the step loops on a GPU.
NUM_STAGES = 3
LOG2E = 1.4426950408889634
LN2 = 0.6931471805599453


def _scan_config(dim: int, nstate: int, group_d: int = 0) -> dict:
    """``BLOCK_N`` states x ``BLOCK_D`` channels per program (one warp), shared by the passes.

    Each thread holds 32 states: two channels of 16 at N <= 16 (``BLOCK_D = 64``: the per-step
    address, ``perm`` and ``Bm``/``Cm`` work is shared by two channels, 156 instead of 198 SASS
    instructions per 32 channel-steps at N=16), one channel at N = 32 (``BLOCK_D = 32``), and at
    N = 64 two lanes share a channel (``BLOCK_D = 16``). With grouped ``Bm, Cm``
    (``group_d`` channels a group) a block stays inside one group. A fixed rule, not autotuning, so the
    same shape always runs the same code (bitwise determinism across processes).
    """
    block_n = next_pow2(nstate)
    if is_interpreter():
        # Small channel blocks: test shapes span several blocks (masking is exercised).
        block_d = min(next_pow2(dim), 8)
    else:
        block_d = min(64 if block_n <= 16 else (32 if block_n <= 32 else 16), next_pow2(dim))
    if group_d and group_d < dim:
        # Grouped Bm/Cm: a block must not straddle two groups (each program loads one Bm row);
        # the largest power of two dividing the group size does it.
        block_d = min(block_d, group_d & -group_d)
    return {"BLOCK_D": block_d, "BLOCK_N": block_n, "num_warps": 1}


def _chunk_len(seqlen: int, batch: int, n_dblk: int, device: torch.device) -> int:
    """Steps per chunk: the longest power of two that still gives ``WARPS_PER_SM`` warps per SM
    (one warp per program), at least :data:`MIN_CHUNK`; one chunk when the batch alone fills it."""
    if is_interpreter():
        return INTERPRETER_CHUNK
    want_chunks = cdiv(WARPS_PER_SM * num_sms(device), batch * n_dblk)
    if want_chunks <= 1:
        return next_pow2(seqlen)
    per_chunk = cdiv(seqlen, want_chunks)
    floor_pow2 = next_pow2(per_chunk) if next_pow2(per_chunk) == per_chunk else next_pow2(per_chunk) // 2
    return max(MIN_CHUNK, floor_pow2)


def _carry_config(n_elem: int) -> dict:
    """Carry tiles: ``BLOCK_E`` (n, d) elements across a warp's lanes (coalesced 128-byte rows)
    by ``BLOCK_C`` chunks across the warps and registers. A tile's loads are issued at once and
    its scan is ``BLOCK_C / num_warps`` in-thread steps plus a cross-warp combine, so a sequence
    of up to ``BLOCK_C`` chunks is carried in one load round trip."""
    if is_interpreter():
        return {"BLOCK_E": 16, "BLOCK_C": 4, "num_warps": 1}
    return {"BLOCK_E": min(32, next_pow2(n_elem)), "BLOCK_C": CARRY_BLOCK_C, "num_warps": 4}


def _num_stages() -> int:
    return 1 if is_interpreter() else NUM_STAGES


@triton.jit
def _log1p_unit(e):
    # log1p(e) for e in [0, 1] as e * P(e), P the degree-8 least-squares fit of log1p(e)/e on
    # [0, 1]: max relative error 1.9e-7 in fp32 Horner (the fp32 rounding floor is 1.5e-7), eight
    # FFMAs and no MUFU, where log() costs a ~25-instruction polynomial and a correction divide.
    p = 0.005253523122519255
    p = p * e - 0.02958887256681919
    p = p * e + 0.07836245745420456
    p = p * e - 0.13674858212471008
    p = p * e + 0.1911148577928543
    p = p * e - 0.24844388663768768
    p = p * e + 0.33319273591041565
    p = p * e - 0.49999502301216125
    p = p * e + 1.0
    return e * p


@triton.jit
def _softplus(v):
    # torch's softplus, log(1 + exp(v)) = max(v, 0) + log1p(exp(-|v|)): one MUFU.EX2 and the
    # polynomial log1p per channel and step. exp(-|v|) <= 1 cannot overflow, and above torch's
    # threshold (v > 20) the log1p term is below half an ulp of v, so the result is v as torch's.
    # fp64 keeps the accurate log (the polynomial is fp32-accurate only).
    if v.dtype == tl.float64:
        e = tl.exp(-tl.abs(v))
        u = 1.0 + e
        lp = tl.where(u == 1.0, e, tl.log(u) * (e / tl.where(u == 1.0, 1.0, u - 1.0)))
    else:
        lp = _log1p_unit(tl.exp2(-tl.abs(v) * 1.4426950408889634))
    return tl.maximum(v, 0.0) + lp


@triton.jit
def _round_to_bf16(v):
    # fp32 -> bf16, round to nearest even, by integer arithmetic on the bits. GPUs' cvt.rn does
    # the same, but Triton's interpreter truncates (or mis-rounds) bf16 casts; this gives
    # identical bits on both, so CPU tests measure what the GPU will do. NaN keeps the plain cast.
    bits = v.to(tl.uint32, bitcast=True)
    bits = bits + 0x7FFF + ((bits >> 16) & 1)
    out = (bits >> 16).to(tl.uint16).to(tl.bfloat16, bitcast=True)
    return tl.where(v != v, v.to(tl.bfloat16), out)


@triton.jit
def _load_params(A_ptr, dt_bias_ptr, s_ad, s_an, s_bias, pid_d, D, N, cdt,
                 HAS_DT_BIAS: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_N: tl.constexpr):
    """Channel/state offsets and masks, ``A * log2 e`` as ``[BLOCK_N, BLOCK_D]`` and ``dt_bias``."""
    # Contiguity 1: with a stride of 1 and D divisible by 16 the coalescing pass would give the
    # row loads two adjacent channels a lane, while the state's layout gives lane l channels l
    # and l + 32; each step would then convert delta, x and y between the two with 16 shuffles.
    # Two scalar loads a lane are still two fully coalesced 128-byte lines a warp.
    d_offs = tl.max_contiguous(pid_d * BLOCK_D + tl.arange(0, BLOCK_D), 1)
    n_offs = tl.arange(0, BLOCK_N)
    dmask = d_offs < D
    nmask = n_offs < N
    nd_mask = nmask[:, None] & dmask[None, :]
    A2 = tl.load(A_ptr + d_offs[None, :] * s_ad + n_offs[:, None] * s_an, mask=nd_mask,
                 other=0.0).to(cdt) * 1.4426950408889634
    if HAS_DT_BIAS:
        bias = tl.load(dt_bias_ptr + d_offs * s_bias, mask=dmask, other=0.0).to(cdt)
    else:
        bias = tl.zeros([BLOCK_D], dtype=cdt)  # never read: _scan_step skips it
    return d_offs, n_offs, dmask, nmask, nd_mask, A2, bias


@triton.jit
def _scan_step(h, A2, bias, t, L, b, perm_ptr, s_pb, s_pl,
               x_ptr, s_xb, s_xl, s_xd, dt_ptr, s_tb, s_tl, s_td,
               Bm_ptr, s_bb, s_bl, s_bn, g_off, d_offs, n_offs, dmask, nmask,
               DELTA_SOFTPLUS: tl.constexpr, HAS_PERM: tl.constexpr, HAS_DT_BIAS: tl.constexpr):
    """One step at sequence position ``t`` (``t >= L`` is a no-op: delta 0, decay 1, input 0),
    shared by pass 1 and pass 3 so both compute the state with the same operations. Returns the
    new state, the row it read (``perm[t]`` or ``t``), the step mask and that row's ``x``, ``delta``."""
    tmask = dmask & (tl.full(d_offs.shape, t, tl.int32) < L)
    # Steps past the end (the last chunk's tail) read row L-1's inputs and add nothing (delta is
    # zeroed below): clamped, not masked, so the Bm/Cm row loads stay in bounds without a scalar
    # condition in their masks (Triton 3.9 interpreter, kernels/_utils.py).
    t_in = tl.minimum(t, L - 1)
    if HAS_PERM:
        r = tl.load(perm_ptr + b * s_pb + t_in * s_pl).to(tl.int64)
    else:
        r = t_in.to(tl.int64)
    xv = tl.load(x_ptr + b * s_xb + r * s_xl + d_offs * s_xd, mask=tmask, other=0.0).to(A2.dtype)
    dv = tl.load(dt_ptr + b * s_tb + r * s_tl + d_offs * s_td, mask=tmask, other=0.0).to(A2.dtype)
    if HAS_DT_BIAS:
        dv += bias
    if DELTA_SOFTPLUS:
        dv = _softplus(dv)
    dv = tl.where(tmask, dv, 0.0)
    # One [BLOCK_N] row, the same for every channel of the block (one group): a broadcast.
    bv = tl.load(Bm_ptr + b * s_bb + g_off + r * s_bl + n_offs * s_bn, mask=nmask, other=0.0).to(A2.dtype)
    h = tl.exp2(dv[None, :] * A2) * h + (dv * xv)[None, :] * bv[:, None]
    return h, r, tmask, xv, dv


_HEURISTICS = {
    "HAS_PERM": lambda args: args["perm_ptr"] is not None,
    "HAS_DT_BIAS": lambda args: args["dt_bias_ptr"] is not None,
}


# A's strides are not specialized: a stride of 1 (contiguous A) would make the coalescing pass
# give A's one-time load an N-fastest layout, and every step would then convert each decay to
# the state's channel-fastest layout through shared memory.
@triton.heuristics(_HEURISTICS)
@triton.jit(do_not_specialize=["s_ad", "s_an"])
def _sass_scan_chunk_state_kernel(
    x_ptr, s_xb, s_xl, s_xd,  # (B, L, D)
    dt_ptr, s_tb, s_tl, s_td,  # (B, L, D)
    A_ptr, s_ad, s_an,  # (D, N)
    Bm_ptr, s_bb, s_bg, s_bl, s_bn,  # (B, G, L, N)
    perm_ptr, s_pb, s_pl,  # (B, L) int32/int64, or None
    dt_bias_ptr, s_bias,  # (D,) or None
    state_ptr,  # (B, NCHUNK, N, D) out: chunk-end state from a zero start (chunks < NCHUNK-1)
    dsum_ptr,  # (B, NCHUNK, D) out: sum of delta over the chunk
    L, D, N, GROUP_D, NCHUNK,
    CHUNK: tl.constexpr,
    NUM_STAGES: tl.constexpr,
    DELTA_SOFTPLUS: tl.constexpr,
    IS_FP64: tl.constexpr,
    HAS_PERM: tl.constexpr,
    HAS_DT_BIAS: tl.constexpr,
    BLOCK_D: tl.constexpr,
    BLOCK_N: tl.constexpr,
):
    pid_c = tl.program_id(0)
    pid_d = tl.program_id(1)
    b = tl.program_id(2).to(tl.int64)
    cdt = tl.float64 if IS_FP64 else tl.float32
    d_offs, n_offs, dmask, nmask, nd_mask, A2, bias = _load_params(
        A_ptr, dt_bias_ptr, s_ad, s_an, s_bias, pid_d, D, N, cdt, HAS_DT_BIAS, BLOCK_D, BLOCK_N)
    # The launcher keeps a channel block inside one group (BLOCK_D divides GROUP_D).
    g_off = ((pid_d * BLOCK_D) // GROUP_D).to(tl.int64) * s_bg

    t0 = pid_c * CHUNK
    h = tl.zeros([BLOCK_N, BLOCK_D], dtype=cdt)
    dsum = tl.zeros([BLOCK_D], dtype=cdt)
    for i in tl.range(0, CHUNK, num_stages=NUM_STAGES):
        h, r, tmask, xv, dv = _scan_step(
            h, A2, bias, t0 + i, L, b, perm_ptr, s_pb, s_pl, x_ptr, s_xb, s_xl, s_xd,
            dt_ptr, s_tb, s_tl, s_td, Bm_ptr, s_bb, s_bl, s_bn, g_off, d_offs, n_offs, dmask,
            nmask, DELTA_SOFTPLUS, HAS_PERM, HAS_DT_BIAS)
        dsum += dv

    row = (b * NCHUNK + pid_c) * N
    tl.store(state_ptr + (row + n_offs[:, None]) * D + d_offs[None, :], h, mask=nd_mask)
    tl.store(dsum_ptr + (b * NCHUNK + pid_c) * D + d_offs, dsum, mask=dmask)


@triton.jit
def _compose(a1, b1, a2, b2):
    # Chunk 1 then chunk 2: h -> a2 * (a1 * h + b1) + b2.
    return a1 * a2, a2 * b1 + b2


@triton.jit
def _sass_scan_carry_kernel(
    A_ptr, s_ad, s_an,  # (D, N)
    state_ptr,  # (B, NCHUNK, N, D) in: chunk-end states; out: slot c holds chunk c+1's start
    dsum_ptr,  # (B, NCHUNK, D)
    D, N, NCHUNK,
    IS_FP64: tl.constexpr,
    BLOCK_C: tl.constexpr,
    BLOCK_E: tl.constexpr,
):
    pid_e = tl.program_id(0)
    b = tl.program_id(1).to(tl.int64)
    cdt = tl.float64 if IS_FP64 else tl.float32
    e = pid_e * BLOCK_E + tl.arange(0, BLOCK_E)  # element e = n * D + d
    emask = e < N * D
    n = e // D
    d = e % D
    A2 = tl.load(A_ptr + d * s_ad + n * s_an, mask=emask, other=0.0).to(cdt) * 1.4426950408889634
    cs = tl.arange(0, BLOCK_C)
    last = (cs == BLOCK_C - 1)[:, None]
    carry = tl.zeros([BLOCK_E], dtype=cdt)
    # `while`, not `for`: NCHUNK is a run-time argument (kernels/_utils.py). Chunks past
    # NCHUNK - 2 (the last has no successor) load as (a, b) = (1, 0), the identity.
    c0 = 0
    while c0 < NCHUNK - 1:
        c = c0 + cs
        m = (c < NCHUNK - 1)[:, None] & emask[None, :]
        ptrs = state_ptr + ((b * NCHUNK + c[:, None]) * N + n[None, :]) * D + d[None, :]
        h_end = tl.load(ptrs, mask=m, other=0.0).to(cdt)
        ds = tl.load(dsum_ptr + (b * NCHUNK + c[:, None]) * D + d[None, :], mask=m, other=0.0)
        a = tl.exp2(ds.to(cdt) * A2[None, :])
        a_cum, b_cum = tl.associative_scan((a, h_end), 0, _compose)
        h_start = a_cum * carry[None, :] + b_cum
        # Read-then-write of the same slots by the same program: the in-place update is safe.
        tl.store(ptrs, h_start, mask=m)
        carry = tl.sum(tl.where(last, h_start, 0.0), axis=0)  # the tile's last row, exactly
        c0 += BLOCK_C


@triton.heuristics(
    dict(
        _HEURISTICS,
        HAS_D=lambda args: args["D_ptr"] is not None,
        HAS_Z=lambda args: args["z_ptr"] is not None,
        HAS_LAST=lambda args: args["last_ptr"] is not None,
    )
)
@triton.jit(do_not_specialize=["s_ad", "s_an"])
def _sass_scan_fwd_kernel(
    x_ptr, s_xb, s_xl, s_xd,  # (B, L, D)
    dt_ptr, s_tb, s_tl, s_td,  # (B, L, D)
    A_ptr, s_ad, s_an,  # (D, N)
    Bm_ptr, s_bb, s_bg, s_bl, s_bn,  # (B, G, L, N)
    Cm_ptr, s_cb, s_cg, s_cl, s_cn,  # (B, G, L, N)
    perm_ptr, s_pb, s_pl,  # (B, L) or None
    D_ptr, s_dd,  # (D,) or None
    z_ptr, s_zb, s_zl, s_zd,  # (B, L, D) or None
    dt_bias_ptr, s_bias,  # (D,) or None
    state_ptr,  # (B, NCHUNK, N, D): slot c-1 holds chunk c's initial state (HAS_INIT)
    y_ptr, s_yb, s_yl, s_yd,  # (B, L, D) out, raster order
    last_ptr,  # (B, D, N) out: the state after step L-1, or None
    L, D, N, GROUP_D, NCHUNK,
    CHUNK: tl.constexpr,
    NUM_STAGES: tl.constexpr,
    DELTA_SOFTPLUS: tl.constexpr,
    IS_FP64: tl.constexpr,
    HAS_INIT: tl.constexpr,
    OUT_BF16: tl.constexpr,
    HAS_PERM: tl.constexpr,
    HAS_DT_BIAS: tl.constexpr,
    HAS_D: tl.constexpr,
    HAS_Z: tl.constexpr,
    HAS_LAST: tl.constexpr,
    BLOCK_D: tl.constexpr,
    BLOCK_N: tl.constexpr,
):
    pid_c = tl.program_id(0)
    pid_d = tl.program_id(1)
    b = tl.program_id(2).to(tl.int64)
    cdt = tl.float64 if IS_FP64 else tl.float32
    d_offs, n_offs, dmask, nmask, nd_mask, A2, bias = _load_params(
        A_ptr, dt_bias_ptr, s_ad, s_an, s_bias, pid_d, D, N, cdt, HAS_DT_BIAS, BLOCK_D, BLOCK_N)
    # The launcher keeps a channel block inside one group (BLOCK_D divides GROUP_D).
    group = ((pid_d * BLOCK_D) // GROUP_D).to(tl.int64)
    g_off = group * s_bg
    gc_off = group * s_cg
    if HAS_D:
        dskip = tl.load(D_ptr + d_offs * s_dd, mask=dmask, other=0.0).to(cdt)

    if HAS_INIT:
        # Chunk 0 starts from zero; the masked load never touches slot -1. `pid_c > 0` is compared
        # as a block (Triton 3.9's interpreter rejects a splatted scalar comparison in a mask).
        has_prev = tl.full([BLOCK_N, BLOCK_D], pid_c, tl.int32) > 0
        row = (b * NCHUNK + pid_c - 1) * N
        h = tl.load(state_ptr + (row + n_offs[:, None]) * D + d_offs[None, :],
                    mask=nd_mask & has_prev, other=0.0).to(cdt)
    else:
        h = tl.zeros([BLOCK_N, BLOCK_D], dtype=cdt)

    t0 = pid_c * CHUNK
    for i in tl.range(0, CHUNK, num_stages=NUM_STAGES):
        h, r, tmask, xv, dv = _scan_step(
            h, A2, bias, t0 + i, L, b, perm_ptr, s_pb, s_pl, x_ptr, s_xb, s_xl, s_xd,
            dt_ptr, s_tb, s_tl, s_td, Bm_ptr, s_bb, s_bl, s_bn, g_off, d_offs, n_offs, dmask,
            nmask, DELTA_SOFTPLUS, HAS_PERM, HAS_DT_BIAS)
        cv = tl.load(Cm_ptr + b * s_cb + gc_off + r * s_cl + n_offs * s_cn, mask=nmask, other=0.0).to(cdt)
        yv = tl.sum(h * cv[:, None], axis=0)
        if HAS_D:
            yv += xv * dskip
        if HAS_Z:
            zv = tl.load(z_ptr + b * s_zb + r * s_zl + d_offs * s_zd, mask=tmask, other=0.0).to(cdt)
            yv = yv * (zv / (1.0 + tl.exp2(-zv * 1.4426950408889634)))
        if OUT_BF16:
            yv = _round_to_bf16(yv.to(tl.float32))
        tl.store(y_ptr + b * s_yb + r * s_yl + d_offs * s_yd, yv.to(y_ptr.dtype.element_ty), mask=tmask)

    if HAS_LAST:
        is_last = tl.full([BLOCK_N, BLOCK_D], pid_c, tl.int32) == NCHUNK - 1
        tl.store(last_ptr + (b * D + d_offs[None, :]) * N + n_offs[:, None], h, mask=nd_mask & is_last)


def _bc_view(t: torch.Tensor) -> torch.Tensor:
    """``(B, L, N)`` -> ``(B, 1, L, N)`` view; ``(B, G, L, N)`` as is."""
    return t.unsqueeze(1) if t.dim() == 3 else t


def sass_scan_fwd(
    x: torch.Tensor,
    dt: torch.Tensor,
    A: torch.Tensor,
    Bm: torch.Tensor,
    Cm: torch.Tensor,
    perm: Optional[torch.Tensor] = None,
    D: Optional[torch.Tensor] = None,
    z: Optional[torch.Tensor] = None,
    dt_bias: Optional[torch.Tensor] = None,
    delta_softplus: bool = True,
    *,
    y: Optional[torch.Tensor] = None,
    last_state: Optional[torch.Tensor] = None,
    chunk_len: Optional[int] = None,
) -> torch.Tensor:
    """Launch the chunked scan; ``perm=None`` scans in raster order (``selective_scan``).

    ``x, dt, z: (batch, seqlen, dim)`` any strides, any float dtype; ``A: (dim, nstate)``;
    ``Bm, Cm: (batch, seqlen, nstate)`` or grouped ``(batch, groups, seqlen, nstate)`` (channel
    ``d`` uses group ``d // (dim // groups)``), any strides; ``perm: (batch, seqlen)`` int32/int64;
    ``D, dt_bias: (dim,)``. Returns ``y (batch, seqlen, dim)`` in ``x``'s dtype, raster order,
    allocated like ``x`` (same strides) unless passed in. ``last_state (batch, dim, nstate)``
    float32 (float64 for float64 ``x``), when given, receives the state after the last step.
    ``chunk_len`` overrides the chunk length. Launches on ``x``'s device.
    """
    batch, seqlen, dim = x.shape
    nstate = A.shape[1]
    Bm4, Cm4 = _bc_view(Bm), _bc_view(Cm)
    group_d = dim // Bm4.shape[1]
    cfg = _scan_config(dim, nstate, group_d)
    n_dblk = cdiv(dim, cfg["BLOCK_D"])
    chunk = int(chunk_len) if chunk_len is not None else _chunk_len(seqlen, batch, n_dblk, x.device)
    if chunk < 1:
        raise ValueError(f"chunk_len must be >= 1, got {chunk}")
    nchunk = cdiv(seqlen, chunk)
    if y is None:
        y = torch.empty_like(x)
    assert y.shape == x.shape and y.dtype == x.dtype
    is_fp64 = compute_dtype(x) == torch.float64
    sdt = torch.float64 if is_fp64 else torch.float32
    if last_state is not None:
        assert last_state.shape == (batch, dim, nstate) and last_state.is_contiguous()
    common = dict(DELTA_SOFTPLUS=bool(delta_softplus), IS_FP64=is_fp64, BLOCK_D=cfg["BLOCK_D"],
                  BLOCK_N=cfg["BLOCK_N"], num_warps=cfg["num_warps"], CHUNK=chunk,
                  NUM_STAGES=_num_stages())
    perm_s = tuple(perm.stride()) if perm is not None else (0, 0)
    bias_s = dt_bias.stride(0) if dt_bias is not None else 0
    x_args = (x, *x.stride(), dt, *dt.stride(), A, *A.stride(), Bm4, Bm4.stride(0), Bm4.stride(1),
              Bm4.stride(2), Bm4.stride(3))
    # Triton launches on the current CUDA device, not on the tensors' (kernels/_utils.on_device).
    with on_device(x.device):
        if nchunk > 1:
            states = torch.empty(batch, nchunk, nstate, dim, device=x.device, dtype=sdt)
            dsum = torch.empty(batch, nchunk, dim, device=x.device, dtype=sdt)
            # The last chunk's end state is never used: pass 1 skips it.
            _sass_scan_chunk_state_kernel[(nchunk - 1, n_dblk, batch)](
                *x_args, perm, *perm_s, dt_bias, bias_s, states, dsum,
                seqlen, dim, nstate, group_d, nchunk, **common,
            )
            n_elem = nstate * dim
            ccfg = _carry_config(n_elem)
            _sass_scan_carry_kernel[(cdiv(n_elem, ccfg["BLOCK_E"]), batch)](
                A, *A.stride(), states, dsum, dim, nstate, nchunk, IS_FP64=is_fp64, **ccfg)
        else:
            states = y  # never read: HAS_INIT is False
        _sass_scan_fwd_kernel[(nchunk, n_dblk, batch)](
            *x_args, Cm4, *Cm4.stride(), perm, *perm_s,
            D, D.stride(0) if D is not None else 0,
            z, *(z.stride() if z is not None else (0, 0, 0)),
            dt_bias, bias_s, states, y, *y.stride(), last_state,
            seqlen, dim, nstate, group_d, nchunk,
            HAS_INIT=nchunk > 1, OUT_BF16=x.dtype == torch.bfloat16, **common,
        )
    return y


__all__ = ["sass_scan_fwd", "WARPS_PER_SM", "MIN_CHUNK"]
