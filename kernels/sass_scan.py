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
* **Register prefetch.** Step ``i`` computes on the row loaded during step ``i - 1`` and issues
  the loads of step ``i + 1`` (and the ``perm`` entry of step ``i + 2``); the loop is unrolled
  by two (:data:`LOOP_UNROLL`) so the handed-over registers are renamed, not moved. With three
  warps a scheduler a load has about three warps' steps (~800 cycles) to arrive. ptxas,
  though, schedules the body as one block and issues a load whose only use is after the back
  edge late in the body; pass 3 (more loads) then stalls at the next iteration's first use, so
  its loop adds two stages of Triton's pipeliner (:data:`PASS3_STAGES`: part of the rows as
  asynchronous copies; 7 more instructions a step, 28 % less single-warp latency). The
  pipeliner alone (``tl.range(num_stages=3)``, the previous version) cost 40-50 more
  instructions a step (``LDGSTS``, ``DEPBAR``, two ``BAR.SYNC`` and ``LDS`` for every row).
  Full blocks (``EVEN_D``, ``EVEN_N``) load without predicates or zero-fill (rows are clamped
  in bounds), offsets are int32 unless a tensor reaches 2^31 elements (``OFFS64``), and
  tensors with equal strides (``ROWS_ALIKE``, ``BC_ALIKE``) share one row offset.
* **Exponentials on two pipes.** An H100 SM has 16 MUFU lanes and 128 FMA lanes. Each step
  computes ``POLY_STATES_PASS*`` of the 16 decays with :func:`_exp2_fma` (range split plus a
  degree-5 polynomial, ~11 FMA-pipe instructions, the accuracy of ``MUFU.EX2``) and the rest on
  the MUFU, so that the pass's MUFU time and issue time come out about equal
  (``bench --static``: pass 1 241 instructions / 30 MUFU a step against 199 / 34 without).
  Triton 3.6 does not resolve that select per register (it would compute both exponentials for
  every state), so below 3.7 every decay stays on the MUFU (:data:`_SELECT_FOLDS`).
* **Chunks sized to fill the GPU in one wave.** The sequence is cut into chunks of ``CHUNK``
  steps (:func:`_chunk_len`: from a grid of eight lengths an octave and the even divisors of
  ``L``, the one that minimises a small model of the op's time on the busiest SM, each pass the
  larger of its compute and its bytes, with at most :data:`WARPS_PER_SM` one-warp programs an
  SM, all resident): batch 1 fills the device at every shape, and a short sequence gets short
  chunks (down to :data:`MIN_CHUNK` steps), so its latency is ``2 * CHUNK`` steps plus a carry
  of a few rounds, not ``L / nchunks`` dependent steps.
* **Three launches.** (1) ``_sass_scan_chunk_state_kernel`` scans every chunk but the last from
  a zero state and stores its end state ``(B, NCHUNK, N, D)`` and ``sum(delta)`` ``(B, NCHUNK, D)``
  (it reads ``x, dt, Bm`` only). (2) ``_sass_scan_carry_kernel`` composes the chunks: a chunk
  maps a start state ``h`` to ``a * h + b`` with ``a = exp2(A * LOG2E * sum(delta))`` (A is
  diagonal and constant, so the whole chunk's decay is one exponential) and ``b`` its
  zero-start end state; ``(a1, b1) then (a2, b2) = (a1 a2, a2 b1 + b2)`` is associative. A
  program takes ``BLOCK_E`` ``(n, d)`` elements and tiles of ``SEGS`` segments of ``SEG``
  chunks: each thread composes one segment of one element in registers (``SEG`` dependent
  FMAs), one cross-warp scan a tile combines the segments, and each chunk's carried-in state is
  written in place (a fixed combine order: deterministic, no atomics). Its grid is
  ``N * D / BLOCK_E`` programs per sequence, one wave, at most two tiles at the model shapes
  (Triton 3.6, 8 chunks a thread: at most four rounds, waves x tiles).
  (3) ``_sass_scan_fwd_kernel`` re-scans each chunk from its carried-in state and writes ``y``
  once (and the last chunk writes ``last_state``). On sm_90+ all three are programmatic
  dependent launches (``use_pdl``): launched while their predecessor runs, they wait in-kernel
  (``gdc_wait``) before reading what it wrote: pass 1 before its first load (its predecessor is
  whatever the stream ran last), the carry and pass 3 after their setup.
* **Re-scan, not correction.** Applying the carried-in state as a correction,
  ``y_t += sum_n Cm_t[n] * exp2(A_n * LOG2E * cumsum(delta)_t) * h_in[n]``, needs the same
  ``L * D * N`` exponentials as re-scanning (one per step, state and channel) and either writes
  partial ``y`` in pass 1 and reads it back (``+8 B`` per element in fp32: +65 % bytes at s1) or
  recomputes the local scan anyway. Its one gain, no dependent chain in pass 3, is already had
  by short chunks (the chain is ``CHUNK`` FFMAs). So the re-scan: ``y`` written once, pass 1
  reads only ``x, dt, Bm`` (and ``perm``).
* **Determinism.** Every program owns disjoint outputs, reductions are in registers or a fixed
  scan tree, the configuration is a function of the shape (no autotuning): bitwise identical
  results from run to run.

Static sm_90 figures (Triton 3.7.1, ``samic-fast bench --static``; fp32, perm, dt_bias, softplus,
D skip; SASS of the loop per warp per step, N=16, 64 channels a warp): pass 1 230 instructions /
30 MUFU / 127 registers / 558.5 cycles of single-warp latency, pass 3 258.5 / 32 / 158 / 601 (one
barrier, from the pipeliner; with ``FULL_CHUNKS``); no shuffles, no spills (the first release:
608 instructions for 32 channels). The carry: 480-522 instructions a warp a tile of 256 or 512
chunks, 128 registers, about 1,100-1,250 cycles a tile. See bench/RESULTS.md.

Written for Triton 3.6 through 3.9, compiled and interpreted alike (``kernels/_utils.py``,
"Triton version compatibility"): the step loops have a compile-time trip count (the last chunk
masks its tail: ``delta = 0`` leaves the state unchanged), run-time loops are ``while`` loops, and
per-program conditions in masks are compared as blocks.
"""

import functools
from typing import Optional

import torch
import triton
import triton.language as tl

try:  # grid dependency control (programmatic dependent launch): in Triton 3.6 and 3.7
    from triton.language.extra.cuda import gdc_launch_dependents, gdc_wait
except ImportError:  # pragma: no cover - then PDL is never requested (USE_PDL is always False)
    gdc_launch_dependents = gdc_wait = None

from ._utils import (COMPILE_OPTIONS, cdiv, compute_dtype, is_interpreter, next_pow2, num_sms,
                     on_device, triton_at_least, use_pdl)

#: One-warp programs per SM the chunking may launch: all of them resident at once (one wave; at
#: <= 168 registers a thread 12 one-warp programs fit an SM's register file), three warps per
#: scheduler, so one warp's loads and exponentials are hidden behind the other two's steps.
WARPS_PER_SM = 12
#: Warps a scheduler needs to hide one warp's step latency (sm_90 static: about 640 cycles of
#: single-warp latency a step against about 260 instructions issued; bench --static).
LATENCY_WARPS = 2.5
#: Shortest chunk on a GPU (even: the step loops are unrolled by two). Chunks this short are
#: chosen only when longer ones cannot fill the device (L below about 3,000 at D = 128): there
#: a pass is latency-bound, ``CHUNK`` dependent steps of about 600 cycles after a ~1,200-cycle
#: prologue, and the chunk-state traffic (4 passes over ``N * D`` floats a chunk) is small.
MIN_CHUNK = 2
#: Widest ``dim`` the interpreter splits into 8-channel blocks.
INTERPRETER_WIDE_DIM = 32
#: Chunk length under the interpreter: tiny, so test shapes cross several chunks.
INTERPRETER_CHUNK = 8
#: Relative cost of a chunk length that leaves a tail: pass 3 then masks every step (8 more
#: instructions in about 260, sm_90 static), pass 1 never (half the op).
TAIL_COST = 0.015
#: Issue cycles of one warp-step of a pass (sm_90 static: 230 in pass 1, 258.5 in pass 3), and HBM
#: bytes an SM can move a cycle (H100: 3.0 TB/s / 1.755 GHz / 132 SMs): the chunk-length model.
STEP_CYCLES = 250
HBM_BYTES_PER_SM_CYCLE = 13.0
#: Carry: chunks a thread composes in registers per tile, and most threads a program (at 128
#: registers a thread, 512 threads fill an SM's register file). Triton 3.6 spills at 16 chunks
#: a thread (sm_90 static: 22 spill instructions, 5.3 us at s1 against 4.3 at 8 chunks).
CARRY_SEG = 16 if triton_at_least(3, 7) else 8
CARRY_THREADS = 512
#: States per channel whose decays are computed on the FMA pipe instead of the MUFU
#: (``_exp2_fma``), per pass (not in fp64): chosen with ``samic-fast bench --static`` at N = 16
#: so that each pass's MUFU time and issue time come out about equal (each decay moved saves 8
#: MUFU cycles a warp and costs about 11 issue cycles).
POLY_STATES_PASS1 = 2
POLY_STATES_PASS3 = 1
#: Stages of Triton's software pipeliner in pass 3's step loop, on top of the register prefetch.
#: ptxas schedules the loop body as one block: a row load whose first use is after the back edge
#: is issued late in the body, and the next iteration waits for it (sm_90 static, steady state:
#: 851 cycles a step for one warp against 261 instructions). Two stages move part of the loads
#: (the ``x``, ``dt``, ``z`` rows and ``perm`` entries; ``Bm``, ``Cm`` stay in registers) to
#: asynchronous copies a step ahead: about 610 cycles for 269 instructions, so pass 3 is
#: issue-bound again at three warps a scheduler. Pass 1 gains nothing from it (560-570 cycles
#: either way, 11 more instructions) and stays unpipelined. Triton 3.6's pipeliner makes it
#: worse (186 registers, too many for 12 programs an SM, and 783 cycles a step): there one stage.
PASS3_STAGES = 2 if triton_at_least(3, 7) else 1
#: Stages of the pipeliner in pass 1's step loop: none up to Triton 3.8 (see PASS3_STAGES), two
#: on Triton 3.9, whose build of the loop issues the next step's ``Bm`` row last in the body, just
#: before the back edge that uses it (sm_90 static: 814 cycles a step for one warp against 229
#: instructions; two stages: 576 for 236, and the pass is MUFU-bound again).
PASS1_STAGES = 2 if triton_at_least(3, 9) else 1
#: Whether pass 3 sums ``Cm * h`` over the states as a scan's last element instead of ``tl.sum``.
#: From Triton 3.8 an in-thread ``tl.sum`` is a binary tree (triton-lang/triton#9220), and a tree
#: leaves half the products out of the adds: 8 FMUL + 8 FFMA + 7 FADD for 16 states, not the
#: chain's 1 FMUL + 15 FFMA (sm_90 static, 3.9: 272 -> 258.5 instructions a step, 167 -> 158
#: registers). Before 3.8 ``tl.sum`` is that chain already, and on 3.6 the scan form costs more.
SEQUENTIAL_STATE_SUM = triton_at_least(3, 8)
#: Steps per iteration of the compiled step loops: unrolled by two, the registers the prefetch
#: hands from one step to the next are renamed instead of moved.
LOOP_UNROLL = 2
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
        # Small channel blocks where the tests' small odd shapes are (they then span several
        # blocks, so masking is exercised); 32-channel blocks for the wider models the codec tests
        # run, whose time under the interpreter is per program-step, not per element.
        block_d = min(next_pow2(dim), 8 if dim <= INTERPRETER_WIDE_DIM else 32)
    else:
        block_d = min(64 if block_n <= 16 else (32 if block_n <= 32 else 16), next_pow2(dim))
    if group_d and group_d < dim:
        # Grouped Bm/Cm: a block must not straddle two groups (each program loads one Bm row);
        # the largest power of two dividing the group size does it.
        block_d = min(block_d, group_d & -group_d)
    return {"BLOCK_D": block_d, "BLOCK_N": block_n, "num_warps": 1}


#: Whether this Triton resolves ``tl.where`` on a per-register constant state index at compile
#: time (3.7 does; 3.6 computes both sides): the FMA-pipe decays are used only then.
_SELECT_FOLDS = triton_at_least(3, 7)


def _chunk_candidates(seqlen: int) -> list[int]:
    """Chunk lengths the launcher picks from, ascending: the even lengths from
    :data:`MIN_CHUNK` below 8, then ``{8, 9, ..., 15} * 2^k`` (eight a doubling), even, up to
    the first that covers ``seqlen``, and every even divisor of ``seqlen`` in that range. Eight an octave, not four: a scheduler runs whole
    warps, so a chunk that leaves 11 programs on an SM (3 warps on three of its schedulers)
    costs as much as one that leaves 12, and the grid needs steps of about 1/8 to land near a
    multiple of 4 programs an SM. The divisors give chunks with no tail (``FULL_CHUNKS`` in pass
    3: 8 fewer instructions a step) that often also land nearer 12 programs an SM (3840x2160's
    largest call: 2,720 steps, 768 chunks, against 2,816 from the grid). ``CHUNK`` is a
    compile-time constant, so an image size compiles at most a few new kernel variants."""
    out, k = list(range(MIN_CHUNK, 8, 2)), 1
    while not out or out[-1] < seqlen:
        for m in range(8, 16):
            c = m * k
            if c >= MIN_CHUNK and c % 2 == 0:
                out.append(c)
                if c >= seqlen:
                    break
        k *= 2
    top = out[-1]
    q = 1
    while q * q <= seqlen:  # the divisor pairs (q, seqlen // q)
        if seqlen % q == 0:
            out += [c for c in (q, seqlen // q) if MIN_CHUNK <= c <= top and c % 2 == 0]
        q += 1
    return sorted(set(out))


@functools.lru_cache(maxsize=1024)
def _chunk_len_for(seqlen: int, batch: int, n_dblk: int, sms: int, state_bytes: int = 0,
                   pass1_row_bytes: int = 0, pass3_row_bytes: int = 0) -> int:
    cap = WARPS_PER_SM * sms
    bytes_per_cycle = sms * HBM_BYTES_PER_SM_CYCLE
    best = None
    for c in _chunk_candidates(seqlen):
        nchunk = cdiv(seqlen, c)
        programs = batch * n_dblk * nchunk
        if programs > cap and c < seqlen:
            continue
        per_scheduler = cdiv(cdiv(programs, sms), 4)
        compute = min(c, seqlen) * max(per_scheduler, LATENCY_WARPS) * STEP_CYCLES  # one pass
        states = batch * (nchunk - 1) * state_bytes
        # Each pass takes the longer of its compute and its bytes (its rows and the chunk
        # states, which the carry also reads and rewrites).
        pass1 = max(compute, (batch * seqlen * pass1_row_bytes + states) / bytes_per_cycle)
        pass3 = max(compute, (batch * seqlen * pass3_row_bytes + states) / bytes_per_cycle)
        cost = pass1 + 2 * states / bytes_per_cycle + pass3
        if seqlen % c:
            cost *= 1.0 + TAIL_COST
        if best is None or cost <= best[0]:
            best = (cost, c)
    return best[1]  # the last candidate covers seqlen in one chunk: always allowed


def _chunk_len(seqlen: int, batch: int, n_dblk: int, device: torch.device, state_bytes: int = 0,
               pass1_row_bytes: int = 0, pass3_row_bytes: int = 0) -> int:
    """Steps per chunk: the one that minimises the op's time on the busiest SM, each pass the
    larger of its compute, ``CHUNK * max(warps on a scheduler, LATENCY_WARPS)`` steps of
    :data:`STEP_CYCLES` (issue-bound with enough warps, latency-bound below
    :data:`LATENCY_WARPS`), and its bytes (``pass*_row_bytes`` a step, and ``state_bytes`` a
    chunk: short chunks on a device they cannot fill make a pass memory-bound), plus the carry's
    bytes, and :data:`TAIL_COST` more for a chunk that leaves a tail, with every program
    resident at once (at most :data:`WARPS_PER_SM` one-warp programs an SM: a second wave would
    run with too few warps to hide latency); the longest on ties (less carry). A batch that
    fills the device on its own gets one chunk; a short sequence gets short chunks (down to
    :data:`MIN_CHUNK`), so its latency is about ``2 * CHUNK`` steps."""
    if is_interpreter():
        return INTERPRETER_CHUNK
    return _chunk_len_for(int(seqlen), int(batch), int(n_dblk), num_sms(device), int(state_bytes),
                          int(pass1_row_bytes), int(pass3_row_bytes))


def _carry_config(n_elem: int, nchunk: int, batch: int, device: torch.device) -> dict:
    """Carry tiles ``[SEG, SEGS, BLOCK_E]`` (see the kernel): :data:`CARRY_SEG` chunks a thread
    (16; 32 spill at 128 registers), one thread a (segment, element) and at most
    :data:`CARRY_THREADS` threads a program, ``BLOCK_E`` in {32, 16, 8} elements (128-, 64- or
    32-byte rows). Of those, the one with the fewest waves x tiles (each tile is one round of
    dependent latency; sm_90 static: about 1,100-1,250 cycles), the widest rows on ties."""
    if is_interpreter():
        return {"BLOCK_E": 16, "SEGS": 2, "SEG": 2, "num_warps": 1}
    n_carry = max(1, nchunk - 1)
    sms = num_sms(device)
    best = None
    for block_e in (32, 16, 8):
        segs = min(CARRY_THREADS // block_e, max(32 // block_e, next_pow2(cdiv(n_carry, CARRY_SEG))))
        tiles = cdiv(n_carry, segs * CARRY_SEG)
        per_sm = max(1, CARRY_THREADS // (segs * block_e))
        waves = cdiv(batch * cdiv(n_elem, block_e), sms * per_sm)
        if best is None or waves * tiles < best[0]:
            best = (waves * tiles, {"BLOCK_E": block_e, "SEGS": segs, "SEG": CARRY_SEG,
                                    "num_warps": segs * block_e // 32})
    return best[1]


def _needs_int64(*tensors: Optional[torch.Tensor]) -> bool:
    """Whether some element offset (``sum((size - 1) * stride)``) of ``tensors`` reaches 2^31:
    only then do the kernels compute offsets in int64 (each 64-bit offset costs 2-3 more
    instructions a load, and the loop issues 5-7 loads a step)."""
    reach = 0
    for t in tensors:
        if t is not None and t.numel() > 0:
            reach = max(reach, sum((s - 1) * abs(st) for s, st in zip(t.shape, t.stride())) + 1)
    return reach >= 2**31


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
        # log1p(e) for e in [0, 1] as e * P(e), P the degree-8 least-squares fit of log1p(e)/e
        # on [0, 1]: max relative error 1.9e-7 in fp32 Horner (the fp32 rounding floor is
        # 1.5e-7), eight FFMAs and no MUFU, where log() costs a ~25-instruction polynomial and a
        # correction divide. (Inline, not a helper: each @triton.jit call costs the interpreter
        # a builtin-patching pass, and this runs every step.) |v| times a negative constant, not
        # -|v| times a positive one: the same bits, but Triton 3.6/3.7 build -|v| as a separate
        # FADD, while the abs folds into the FMUL (sm_90 static, 3.7.1: 2 instructions a step less
        # in each pass).
        e = tl.exp2(tl.abs(v) * -1.4426950408889634)
        p = 0.005253523122519255
        p = p * e - 0.02958887256681919
        p = p * e + 0.07836245745420456
        p = p * e - 0.13674858212471008
        p = p * e + 0.1911148577928543
        p = p * e - 0.24844388663768768
        p = p * e + 0.33319273591041565
        p = p * e - 0.49999502301216125
        p = p * e + 1.0
        lp = e * p
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
def _exp2_fma(x):
    # 2^x on the FMA pipe, for the states the launcher moves off the MUFU (POLY_STATES): with
    # 16 MUFU lanes an SM against 128 FMA lanes, a few decays a step computed here run beside the
    # MUFU's. Round-to-nearest split x = j + f (the 1.5 * 2^23 trick: j lands in the low mantissa
    # bits of x + 12582912), 2^f by a degree-5 near-minimax polynomial on [-1/2, 1/2] (max
    # relative error 2.4e-7 in fp32 Horner, as MUFU.EX2's 2^-22), then j is added to the exponent
    # field. The clamp keeps that field in [0, 254]: 2^-126 for anything below (the decay is 0 to
    # the state's precision) and 2^127 for anything above; NaN stays NaN.
    x = tl.clamp(x, -126.0, 127.0, propagate_nan=tl.PropagateNan.ALL)
    t = x + 12582912.0
    f = x - (t - 12582912.0)
    p = 0.0013276470126584172
    p = p * f + 0.009675540961325169
    p = p * f + 0.05550713464617729
    p = p * f + 0.24022120237350464
    p = p * f + 0.6931469440460205
    p = p * f + 1.0
    bits = p.to(tl.int32, bitcast=True) + (t.to(tl.int32, bitcast=True) << 23)
    return bits.to(tl.float32, bitcast=True)


@triton.jit
def _row_of(perm_ptr, s_pb, s_pl, b, t, L, HAS_PERM: tl.constexpr, OFFS64: tl.constexpr):
    """Row of ``x``/``dt``/... that step ``t`` reads: ``perm[b, t]`` (or ``t``), as the offset
    type. Steps past the end (the last chunk's tail, the prefetch after a chunk's last step)
    read row ``perm[L-1]``: clamped, not masked, so the row loads stay in bounds without a scalar
    condition in their masks (Triton 3.9 interpreter, kernels/_utils.py); the step mask zeroes
    what they would add."""
    t_in = tl.minimum(t, L - 1)
    if HAS_PERM:
        r = tl.load(perm_ptr + b * s_pb + t_in * s_pl)
    else:
        r = t_in
    if OFFS64:
        r = r.to(tl.int64)
    else:
        r = r.to(tl.int32)
    return r


@triton.jit
def _load_row(r, t, L, b, x_ptr, s_xb, s_xl, s_xd, dt_ptr, s_tb, s_tl, s_td,
              Bm_ptr, s_bb, s_bl, s_bn, g_off, d_offs, n_offs, dmask, nmask,
              EVEN_D: tl.constexpr, EVEN_N: tl.constexpr, FULL_CHUNKS: tl.constexpr):
    """``x[r], dt[r]`` (``[BLOCK_D]``, storage dtype) and the ``[BLOCK_N]`` row ``Bm[r]`` (the
    same for every channel of the block: a broadcast), and the step mask. The row is always in
    bounds (:func:`_row_of` clamps it), so the loads are masked only where a block overhangs
    ``D`` or ``N``: a full block loads with no predicate and no zero-fill. With
    ``FULL_CHUNKS`` every step of the launch is below ``L`` and the mask is the channels'."""
    if FULL_CHUNKS:
        tmask = dmask
    else:
        tmask = dmask & (tl.full(d_offs.shape, t, tl.int32) < L)
    x_p = x_ptr + b * s_xb + r * s_xl + d_offs * s_xd
    dt_p = dt_ptr + b * s_tb + r * s_tl + d_offs * s_td
    if EVEN_D:
        xv = tl.load(x_p)
        dv = tl.load(dt_p)
    else:
        xv = tl.load(x_p, mask=dmask, other=0.0)
        dv = tl.load(dt_p, mask=dmask, other=0.0)
    b_p = Bm_ptr + b * s_bb + g_off + r * s_bl + n_offs * s_bn
    if EVEN_N:
        bv = tl.load(b_p)
    else:
        bv = tl.load(b_p, mask=nmask, other=0.0)
    return xv, dv, bv, tmask


@triton.jit
def _load_vec(ptr, off, offs, mask, EVEN: tl.constexpr):
    """A ``[BLOCK]`` row at ``ptr + off + offs``: unmasked when the block is full."""
    if EVEN:
        v = tl.load(ptr + off + offs)
    else:
        v = tl.load(ptr + off + offs, mask=mask, other=0.0)
    return v


@triton.jit
def _advance(h, A2, bias, n_offs, xv, dv, bv, tmask, POLY_STATES: tl.constexpr,
             DELTA_SOFTPLUS: tl.constexpr, HAS_DT_BIAS: tl.constexpr, FULL_CHUNKS: tl.constexpr):
    """One step of the recurrence on loaded inputs (a masked step is a no-op: delta 0, decay 1,
    input 0), shared by pass 1 and pass 3 so both compute the state with the same operations.
    Returns the new state and ``x``, ``delta`` in the compute dtype."""
    cdt = A2.dtype
    xv = xv.to(cdt)
    dv = dv.to(cdt)
    if HAS_DT_BIAS:
        dv += bias
    if DELTA_SOFTPLUS:
        dv = _softplus(dv)
    # A masked step (the last chunk's tail) re-reads row perm[L-1]: zero its delta (decay 1) and
    # its x (so an inf there cannot become 0 * inf = NaN in last_state). Without a tail
    # (FULL_CHUNKS) there is nothing to zero: channels past D load zeros and are never stored.
    if not FULL_CHUNKS:
        dv = tl.where(tmask, dv, 0.0)
        xv = tl.where(tmask, xv, 0.0)
    # The decays: states n < POLY_STATES on the FMA pipe (_exp2_fma), the rest one MUFU.EX2
    # each. The state index of each register is a compile-time constant in the
    # channels-across-lanes layout, so the select is resolved per register and each element
    # runs one of the two, not both.
    arg = dv[None, :] * A2
    if POLY_STATES > 0 and arg.dtype == tl.float32:
        decay = tl.where((n_offs < POLY_STATES)[:, None], _exp2_fma(arg), tl.exp2(arg))
    else:
        decay = tl.exp2(arg)
    h = decay * h + (dv * xv)[None, :] * bv.to(cdt)[:, None]
    return h, xv, dv


def _alike(args: dict, *prefixes: str) -> bool:
    """Whether the given tensors among those whose stride arguments start with ``prefixes``
    (two or more) have equal strides, axis by axis."""
    ptrs = {"s_x": "x_ptr", "s_t": "dt_ptr", "s_y": "y_ptr", "s_z": "z_ptr", "s_b": "Bm_ptr",
            "s_c": "Cm_ptr"}
    sets = []
    for p in prefixes:
        names = sorted(k for k in args if k.startswith(p) and len(k) == len(p) + 1)
        if names and args.get(ptrs[p]) is not None:
            sets.append(tuple(args[k] for k in names))
    return len(sets) > 1 and all(s == sets[0] for s in sets)


_HEURISTICS = {
    # Full channel / state blocks: the step loads need no mask (kernels' _load_row).
    "EVEN_D": lambda args: args["D"] % args["BLOCK_D"] == 0,
    "EVEN_N": lambda args: args["N"] == args["BLOCK_N"],
    "HAS_PERM": lambda args: args["perm_ptr"] is not None,
    # x and dt (and, in pass 3, y, z) laid out alike, as the model's contiguous (B, L, D) tensors
    # are; Bm and Cm alike (two views of one projection): the kernel then computes each row
    # offset once for all of them (fewer address instructions a step).
    "ROWS_ALIKE": lambda args: _alike(args, "s_x", "s_t", "s_y", "s_z"),
    "BC_ALIKE": lambda args: _alike(args, "s_b", "s_c"),
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
    POLY_STATES: tl.constexpr,
    OFFS64: tl.constexpr,
    UNROLL: tl.constexpr,
    FULL_CHUNKS: tl.constexpr,
    NUM_STAGES: tl.constexpr,
    EVEN_D: tl.constexpr,
    EVEN_N: tl.constexpr,
    ROWS_ALIKE: tl.constexpr,
    BC_ALIKE: tl.constexpr,
    DELTA_SOFTPLUS: tl.constexpr,
    IS_FP64: tl.constexpr,
    HAS_PERM: tl.constexpr,
    HAS_DT_BIAS: tl.constexpr,
    USE_PDL: tl.constexpr,
    BLOCK_D: tl.constexpr,
    BLOCK_N: tl.constexpr,
):
    if USE_PDL:
        # Launched as a dependent of whatever ran before (its launch overlaps that kernel's
        # tail): everything below reads the op's inputs, complete and visible from here on.
        gdc_wait()
        # Only now may the carry launch: it and pass 3 read the op's inputs before their own
        # waits, so no kernel of the op may start before the inputs' producer has finished.
        gdc_launch_dependents()
    pid_c = tl.program_id(0)
    pid_d = tl.program_id(1)
    b = tl.program_id(2)
    if OFFS64:
        b = b.to(tl.int64)
    cdt = tl.float64 if IS_FP64 else tl.float32
    if ROWS_ALIKE:  # the same expressions: one row offset for both (common subexpressions)
        s_tb, s_tl, s_td = s_xb, s_xl, s_xd
    d_offs, n_offs, dmask, nmask, nd_mask, A2, bias = _load_params(
        A_ptr, dt_bias_ptr, s_ad, s_an, s_bias, pid_d, D, N, cdt, HAS_DT_BIAS, BLOCK_D, BLOCK_N)
    # The launcher keeps a channel block inside one group (BLOCK_D divides GROUP_D).
    group = (pid_d * BLOCK_D) // GROUP_D
    if OFFS64:
        group = group.to(tl.int64)
    g_off = group * s_bg

    t0 = pid_c * CHUNK
    h = tl.zeros([BLOCK_N, BLOCK_D], dtype=cdt)
    dsum = tl.zeros([BLOCK_D], dtype=cdt)
    # Software pipeline in registers: step i computes on the row loaded during step i - 1 and
    # issues the loads of step i + 1 (and the perm entry of step i + 2), so a load has a whole
    # step of other warps' work to arrive (see "Register prefetch" in the module docstring).
    r_next = _row_of(perm_ptr, s_pb, s_pl, b, t0 + 1, L, HAS_PERM, OFFS64)
    xv, dv, bv, tmask = _load_row(
        _row_of(perm_ptr, s_pb, s_pl, b, t0, L, HAS_PERM, OFFS64), t0, L, b, x_ptr, s_xb, s_xl,
        s_xd, dt_ptr, s_tb, s_tl, s_td, Bm_ptr, s_bb, s_bl, s_bn, g_off, d_offs, n_offs, dmask, nmask,
        EVEN_D, EVEN_N, FULL_CHUNKS)
    for i in tl.range(0, CHUNK, loop_unroll_factor=UNROLL, num_stages=NUM_STAGES):
        t = t0 + i
        xn, dn, bn, mn = _load_row(r_next, t + 1, L, b, x_ptr, s_xb, s_xl, s_xd, dt_ptr, s_tb,
                                   s_tl, s_td, Bm_ptr, s_bb, s_bl, s_bn, g_off, d_offs, n_offs,
                                   dmask, nmask, EVEN_D, EVEN_N, FULL_CHUNKS)
        r_next = _row_of(perm_ptr, s_pb, s_pl, b, t + 2, L, HAS_PERM, OFFS64)
        h, xc, dc = _advance(h, A2, bias, n_offs, xv, dv, bv, tmask, POLY_STATES, DELTA_SOFTPLUS,
                             HAS_DT_BIAS, FULL_CHUNKS)
        dsum += dc
        xv, dv, bv, tmask = xn, dn, bn, mn

    row = (b * NCHUNK + pid_c) * N
    tl.store(state_ptr + (row + n_offs[:, None]) * D + d_offs[None, :], h, mask=nd_mask)
    tl.store(dsum_ptr + (b * NCHUNK + pid_c) * D + d_offs, dsum, mask=dmask)


@triton.jit
def _compose(a1, b1, a2, b2):
    # Chunk 1 then chunk 2: h -> a2 * (a1 * h + b1) + b2.
    return a1 * a2, a2 * b1 + b2


@triton.jit
def _last(a1, b1, a2, b2):
    # Keeps the later element: a reduction with it picks the last one, in any association order.
    return a2, b2


@triton.jit
def _keep_later(a, b):
    return b


@triton.jit
def _sum_states(p):
    # The sum over axis 0 (the states, in-thread) as one sequential chain, whatever the Triton
    # version: an inclusive scan (its carry is sequential, so ptxas contracts each product into
    # its add), then the scan's last element (a reduction that keeps the later operand compiles
    # to nothing). See SEQUENTIAL_STATE_SUM.
    return tl.reduce(tl.cumsum(p, axis=0), 0, _keep_later)


@triton.jit
def _sass_scan_carry_kernel(
    A_ptr, s_ad, s_an,  # (D, N)
    state_ptr,  # (B, NCHUNK, N, D) in: chunk-end states; out: slot c holds chunk c+1's start
    dsum_ptr,  # (B, NCHUNK, D)
    D, N, NCHUNK,
    IS_FP64: tl.constexpr,
    OFFS64: tl.constexpr,
    USE_PDL: tl.constexpr,
    SEGS: tl.constexpr,
    SEG: tl.constexpr,
    BLOCK_E: tl.constexpr,
):
    """Carry across chunks for ``BLOCK_E`` (n, d) elements, ``SEGS * SEG`` chunks a tile.

    A tile is loaded as ``[SEG, SEGS, BLOCK_E]``: ``SEGS`` segments of ``SEG`` consecutive
    chunks. The default layout puts the elements on lanes, the segments on lanes and warps and
    the ``SEG`` chunks of a segment in one thread's registers, so (1) the scan inside a segment
    is ``SEG`` dependent FMAs in a thread, (2) the scan of the segments' totals crosses warps
    once a tile, and (3) each chunk's end state is its in-segment prefix applied to the state
    the segment starts from. The ``tl.associative_scan`` over a whole ``[chunks, elements]``
    tile that this replaces issued ~2,900 instructions a warp a tile, mostly cross-lane steps.
    """
    pid_e = tl.program_id(0)
    b = tl.program_id(1).to(tl.int64)
    cdt = tl.float64 if IS_FP64 else tl.float32
    ND = N * D
    # Contiguity 1: a vectorised load would put 4 elements a thread and lanes on the chunk
    # axis, and the in-segment scan would cross lanes.
    e = tl.max_contiguous(pid_e * BLOCK_E + tl.arange(0, BLOCK_E), 1)  # element e = n * D + d
    emask = e < ND
    n = e // D
    d = e % D
    A2 = tl.load(A_ptr + d * s_ad + n * s_an, mask=emask, other=0.0).to(cdt) * 1.4426950408889634
    state_b = state_ptr + b * NCHUNK * ND
    dsum_b = dsum_ptr + b * NCHUNK * D
    seg = tl.arange(0, SEGS)
    j = tl.arange(0, SEG)[:, None, None]  # a segment's rows
    if OFFS64:
        j = j.to(tl.int64)
    first = (seg == 0)[:, None]
    prev = tl.maximum(seg - 1, 0)[:, None] + tl.zeros([SEGS, BLOCK_E], tl.int32)
    last = tl.full([SEGS, BLOCK_E], SEGS - 1, tl.int32)
    if USE_PDL:
        gdc_launch_dependents()  # pass 3 may launch and do its setup
        gdc_wait()  # pass 1's chunk states are complete and visible from here on
    n_carry = NCHUNK - 1  # the last chunk has no successor
    carry = tl.zeros([SEGS, BLOCK_E], dtype=cdt)  # the state before the tile (every row alike)
    # `while`, not `for`: NCHUNK is a run-time argument (kernels/_utils.py). Chunks past
    # NCHUNK - 2 load as (a, b) = (1, 0), the identity.
    c0 = 0
    while c0 < n_carry:
        # Chunk c0 + s * SEG + j of segment s, row j: offsets as a per-thread base plus a row
        # term that is the same for every thread (the compiler keeps one add a row).
        first_c = c0 + seg * SEG  # [SEGS]
        if OFFS64:  # a sequence's chunk states reach 2^31 elements
            first_c = first_c.to(tl.int64)
        m = (j < (n_carry - first_c)[None, :, None]) & emask[None, None, :]
        offs = (first_c[:, None] * ND + e[None, :])[None, :, :] + j * ND
        ds_offs = (first_c[:, None] * D + d[None, :])[None, :, :] + j * D
        h_end = tl.load(state_b + offs, mask=m, other=0.0).to(cdt)
        ds = tl.load(dsum_b + ds_offs, mask=m, other=0.0).to(cdt)
        a = tl.exp2(ds * A2[None, None, :])
        pa, pb = tl.associative_scan((a, h_end), 0, _compose)  # within each segment
        ta, tb = tl.reduce((pa, pb), 0, _last)  # each segment's total: its last prefix
        ia, ib = tl.associative_scan((ta, tb), 0, _compose)  # segments 0..s
        h_out = ia * carry + ib  # the state after segment s
        h_in = tl.where(first, carry, tl.gather(h_out, prev, 0))  # ... and before it
        # Read-then-write of the same slots by the same thread: the in-place update is safe.
        tl.store(state_b + offs, pa * h_in[None, :, :] + pb, mask=m)
        carry = tl.gather(h_out, last, 0)
        c0 += SEGS * SEG


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
    POLY_STATES: tl.constexpr,
    OFFS64: tl.constexpr,
    UNROLL: tl.constexpr,
    FULL_CHUNKS: tl.constexpr,
    NUM_STAGES: tl.constexpr,
    SEQ_SUM: tl.constexpr,
    EVEN_D: tl.constexpr,
    EVEN_N: tl.constexpr,
    ROWS_ALIKE: tl.constexpr,
    BC_ALIKE: tl.constexpr,
    DELTA_SOFTPLUS: tl.constexpr,
    IS_FP64: tl.constexpr,
    HAS_INIT: tl.constexpr,
    OUT_BF16: tl.constexpr,
    HAS_PERM: tl.constexpr,
    HAS_DT_BIAS: tl.constexpr,
    HAS_D: tl.constexpr,
    HAS_Z: tl.constexpr,
    HAS_LAST: tl.constexpr,
    USE_PDL: tl.constexpr,
    BLOCK_D: tl.constexpr,
    BLOCK_N: tl.constexpr,
):
    if USE_PDL:
        gdc_launch_dependents()  # the next op's pass 1 may launch; it waits for this grid
    pid_c = tl.program_id(0)
    pid_d = tl.program_id(1)
    b = tl.program_id(2)
    if OFFS64:
        b = b.to(tl.int64)
    cdt = tl.float64 if IS_FP64 else tl.float32
    if ROWS_ALIKE:  # the same expressions: one row offset for all (common subexpressions)
        s_tb, s_tl, s_td = s_xb, s_xl, s_xd
        s_yb, s_yl, s_yd = s_xb, s_xl, s_xd
        if HAS_Z:
            s_zb, s_zl, s_zd = s_xb, s_xl, s_xd
    if BC_ALIKE:
        s_cb, s_cg, s_cl, s_cn = s_bb, s_bg, s_bl, s_bn
    d_offs, n_offs, dmask, nmask, nd_mask, A2, bias = _load_params(
        A_ptr, dt_bias_ptr, s_ad, s_an, s_bias, pid_d, D, N, cdt, HAS_DT_BIAS, BLOCK_D, BLOCK_N)
    # The launcher keeps a channel block inside one group (BLOCK_D divides GROUP_D).
    group = (pid_d * BLOCK_D) // GROUP_D
    if OFFS64:
        group = group.to(tl.int64)
    g_off = group * s_bg
    gc_off = group * s_cg
    if HAS_D:
        dskip = tl.load(D_ptr + d_offs * s_dd, mask=dmask, other=0.0).to(cdt)

    t0 = pid_c * CHUNK
    # The register pipeline of pass 1, with Cm and z in it too.
    r = _row_of(perm_ptr, s_pb, s_pl, b, t0, L, HAS_PERM, OFFS64)
    r_next = _row_of(perm_ptr, s_pb, s_pl, b, t0 + 1, L, HAS_PERM, OFFS64)
    xv, dv, bv, tmask = _load_row(r, t0, L, b, x_ptr, s_xb, s_xl, s_xd, dt_ptr, s_tb, s_tl, s_td,
                                  Bm_ptr, s_bb, s_bl, s_bn, g_off, d_offs, n_offs, dmask, nmask,
                                  EVEN_D, EVEN_N, FULL_CHUNKS)
    cv = _load_vec(Cm_ptr, b * s_cb + gc_off + r * s_cl, n_offs * s_cn, nmask, EVEN_N)
    if HAS_Z:
        zv = _load_vec(z_ptr, b * s_zb + r * s_zl, d_offs * s_zd, dmask, EVEN_D)
    if USE_PDL:
        # Everything above reads the op's inputs only (with PDL it overlaps the carry's run);
        # the carried-in state below is the carry's output.
        gdc_wait()
    if HAS_INIT:
        # Chunk 0 starts from zero; the masked load never touches slot -1. `pid_c > 0` is compared
        # as a block (Triton 3.9's interpreter rejects a splatted scalar comparison in a mask).
        has_prev = tl.full([BLOCK_N, BLOCK_D], pid_c, tl.int32) > 0
        row = (b * NCHUNK + pid_c - 1) * N
        h = tl.load(state_ptr + (row + n_offs[:, None]) * D + d_offs[None, :],
                    mask=nd_mask & has_prev, other=0.0).to(cdt)
    else:
        h = tl.zeros([BLOCK_N, BLOCK_D], dtype=cdt)

    # Two stages of Triton's pipeliner on top of the register prefetch (PASS3_STAGES).
    for i in tl.range(0, CHUNK, loop_unroll_factor=UNROLL, num_stages=NUM_STAGES):
        t = t0 + i
        xn, dn, bn, mn = _load_row(r_next, t + 1, L, b, x_ptr, s_xb, s_xl, s_xd, dt_ptr, s_tb,
                                   s_tl, s_td, Bm_ptr, s_bb, s_bl, s_bn, g_off, d_offs, n_offs,
                                   dmask, nmask, EVEN_D, EVEN_N, FULL_CHUNKS)
        cn = _load_vec(Cm_ptr, b * s_cb + gc_off + r_next * s_cl, n_offs * s_cn, nmask, EVEN_N)
        if HAS_Z:
            zn = _load_vec(z_ptr, b * s_zb + r_next * s_zl, d_offs * s_zd, dmask, EVEN_D)
        r_nn = _row_of(perm_ptr, s_pb, s_pl, b, t + 2, L, HAS_PERM, OFFS64)

        h, xc, dc = _advance(h, A2, bias, n_offs, xv, dv, bv, tmask, POLY_STATES, DELTA_SOFTPLUS,
                             HAS_DT_BIAS, FULL_CHUNKS)
        if SEQ_SUM:
            yv = _sum_states(h * cv.to(cdt)[:, None])
        else:
            yv = tl.sum(h * cv.to(cdt)[:, None], axis=0)
        if HAS_D:
            yv += xc * dskip
        if HAS_Z:
            zc = zv.to(cdt)
            yv = yv * (zc / (1.0 + tl.exp2(-zc * 1.4426950408889634)))
        if OUT_BF16:
            yv = _round_to_bf16(yv.to(tl.float32))
        tl.store(y_ptr + b * s_yb + r * s_yl + d_offs * s_yd, yv.to(y_ptr.dtype.element_ty), mask=tmask)

        xv, dv, bv, tmask, cv = xn, dn, bn, mn, cn
        if HAS_Z:
            zv = zn
        r, r_next = r_next, r_nn

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
    if chunk_len is not None:
        chunk = int(chunk_len)
    else:
        # Bytes a step (one row of each tensor a pass touches) and a chunk state, for the
        # chunk-length model.
        row = lambda *ts: sum(t.element_size() * t.shape[-1] for t in ts if t is not None)  # noqa: E731
        bc_row = Bm4.element_size() * Bm4.shape[1] * nstate
        perm_b = perm.element_size() if perm is not None else 0
        chunk = _chunk_len(seqlen, batch, n_dblk, x.device,
                           state_bytes=nstate * dim * (8 if compute_dtype(x) == torch.float64 else 4),
                           pass1_row_bytes=row(x, dt) + bc_row + perm_b,
                           pass3_row_bytes=2 * row(x) + row(dt, z) + 2 * bc_row + perm_b)
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
                  BLOCK_N=cfg["BLOCK_N"], num_warps=cfg["num_warps"], CHUNK=chunk)
    # At any N: the first states of each block (all of them when N <= 2). Not with Triton < 3.7,
    # whose compiler does not resolve the per-state select per register: it would compute both
    # exponentials for every state (bench --static with 3.6.0: 564 instructions a step, not 241).
    poly = not is_fp64 and _SELECT_FOLDS
    common["UNROLL"] = LOOP_UNROLL if chunk % LOOP_UNROLL == 0 else 1
    perm_s = tuple(perm.stride()) if perm is not None else (0, 0)
    bias_s = dt_bias.stride(0) if dt_bias is not None else 0
    x_args = (x, *x.stride(), dt, *dt.stride(), A, *A.stride(), Bm4, Bm4.stride(0), Bm4.stride(1),
              Bm4.stride(2), Bm4.stride(3))
    # On Hopper all three are programmatic dependent launches (use_pdl): each is launched while
    # its predecessor runs and waits in-kernel (gdc_wait) before reading what that wrote; pass 1
    # waits before its first load (its predecessor is whatever the stream ran last, which may
    # have written the inputs), the carry and pass 3 after their setup.
    pdl = nchunk > 1 and gdc_wait is not None and use_pdl(x.device)
    options = dict(COMPILE_OPTIONS, launch_pdl=True) if pdl else dict(COMPILE_OPTIONS)
    # Triton launches on the current CUDA device, not on the tensors' (kernels/_utils.on_device).
    with on_device(x.device):
        states = dsum = None
        if nchunk > 1:
            states = torch.empty(batch, nchunk, nstate, dim, device=x.device, dtype=sdt)
            dsum = torch.empty(batch, nchunk, dim, device=x.device, dtype=sdt)
        offs64 = _needs_int64(x, dt, Bm4, Cm4, z, y, perm, states, last_state)
        if nchunk > 1:
            # The last chunk's end state is never used: pass 1 skips it, so every chunk it
            # scans is full (FULL_CHUNKS: no step mask); pass 3 has a tail only when CHUNK does
            # not divide L.
            _sass_scan_chunk_state_kernel[(nchunk - 1, n_dblk, batch)](
                *x_args, perm, *perm_s, dt_bias, bias_s, states, dsum,
                seqlen, dim, nstate, group_d, nchunk, OFFS64=offs64,
                POLY_STATES=POLY_STATES_PASS1 if poly else 0, NUM_STAGES=PASS1_STAGES, USE_PDL=pdl,
                FULL_CHUNKS=True, **common, **options,
            )
            n_elem = nstate * dim
            ccfg = _carry_config(n_elem, nchunk, batch, x.device)
            _sass_scan_carry_kernel[(cdiv(n_elem, ccfg["BLOCK_E"]), batch)](
                A, *A.stride(), states, dsum, dim, nstate, nchunk, IS_FP64=is_fp64, OFFS64=offs64,
                USE_PDL=pdl, **ccfg, **options)
        else:
            states = y  # never read: HAS_INIT is False
        _sass_scan_fwd_kernel[(nchunk, n_dblk, batch)](
            *x_args, Cm4, *Cm4.stride(), perm, *perm_s,
            D, D.stride(0) if D is not None else 0,
            z, *(z.stride() if z is not None else (0, 0, 0)),
            dt_bias, bias_s, states, y, *y.stride(), last_state,
            seqlen, dim, nstate, group_d, nchunk,
            HAS_INIT=nchunk > 1, OUT_BF16=x.dtype == torch.bfloat16, OFFS64=offs64,
            POLY_STATES=POLY_STATES_PASS3 if poly else 0, NUM_STAGES=PASS3_STAGES,
            SEQ_SUM=SEQUENTIAL_STATE_SUM, USE_PDL=pdl,
            FULL_CHUNKS=seqlen % chunk == 0, **common, **options,
        )
    return y


__all__ = ["sass_scan_fwd", "WARPS_PER_SM", "MIN_CHUNK"]
