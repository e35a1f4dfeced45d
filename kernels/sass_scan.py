"""Fused semantic-aware selective scan (paper §3.2.3, Eq. 5–6; docs/design.md §1 steps 5–7, §2).

One kernel family serves both ops: :func:`sass_scan` reads row ``perm[t]`` of ``x, dt, Bm, Cm, z``
at step ``t`` and writes its output to row ``perm[t]`` of ``y`` (the gather and the inverse
scatter are fused into the loads and the store; no permuted copy is ever made), and
:func:`selective_scan` is the same code with ``perm`` compiled out (``HAS_PERM=False``: row t).

Recurrence (Mamba-1, channel-last ``(B, L, D)``, fp32 state, fp64 for fp64 ``x`` as the reference)::

    delta = softplus(dt[j] + dt_bias)            (both optional)
    h     = exp(delta * A) * h + (delta * x[j]) * Bm[j]       h: (D, N)
    y[j]  = (h @ Cm[j] + Dskip * x[j]) * silu(z[j])           (D, z optional)

Chunked so that batch 1 fills a GPU (one program per (batch, channel block) looping over all of L
cannot): the sequence is cut into chunks of ``CHUNK`` steps and

1. ``_sass_scan_chunk_state_kernel`` (grid: chunks-but-the-last x channel blocks x batch) scans
   each chunk from a zero state and stores its end state ``(B, nchunks, D, N)`` and its sum of
   delta ``(B, nchunks, D)``: it reads ``x, dt, Bm`` only, writes nothing of ``y``;
2. ``_sass_scan_carry_kernel`` (grid: channel blocks x batch) carries states across chunks,
   ``h_in[c+1] = exp(A * sum(delta over c)) * h_in[c] + h_end[c]`` (A is diagonal and constant,
   so a chunk's total decay is one exp), in place, ``nchunks - 1`` sequential steps;
3. ``_sass_scan_fwd_kernel`` (grid: chunks x channel blocks x batch) re-scans each chunk from its
   carried-in state and writes ``y`` once.

docs/design.md §2 suggests instead writing partial outputs in pass 1 and adding
``sum_n Cm * exp(A * cumdelta) * h_in`` in pass 3. That costs the same ``L*D*N`` exponentials
as the re-scan but writes ``y`` twice and reads it once more; re-scanning writes it once and
lets pass 1 skip ``Cm``, ``z`` and ``y`` entirely. With a single chunk only pass 3 runs.

Every program owns disjoint outputs and reduces only in registers, so results are
bitwise deterministic (no atomics). Offsets are int64 (``row * D`` exceeds 2^31 at 4K).

Written for Triton 3.6 through 3.9, compiled and interpreted alike (``kernels/_utils.py``,
"Triton version compatibility"): loops with a run-time trip count are ``while`` loops, and a
per-program condition that joins a load mask is compared as a block.
"""

# No `from __future__ import annotations`: torch.library.custom_op reads the annotations
# to build each op's schema, and real types work on every torch version.
from typing import Optional

import torch
import triton
import triton.language as tl

from ._utils import cdiv, compute_dtype, is_interpreter, next_pow2, num_sms

_MIN_CHUNK_GPU = 256
_INTERPRETER_CHUNK = 16


def _scan_config(dim: int, nstate: int, device: torch.device) -> dict:
    """``BLOCK_D`` channels x ``BLOCK_N`` states per program, shared by the three passes.

    Channels are independent, but the block shape and warp count can change the order of the
    compiled reduction over N; a fixed heuristic rather than autotuning keeps the output bitwise
    identical from one process to the next (docs/design.md §5 determinism).
    """
    block_n = next_pow2(nstate)
    if is_interpreter():
        # Small channel blocks: test shapes then span several blocks (masking is exercised).
        return {"BLOCK_D": min(next_pow2(dim), 8), "BLOCK_N": block_n, "num_warps": 1}
    # 32 fp32 channels = one 128-byte line per row load; fewer when N is large to bound registers.
    block_d = min(next_pow2(dim), 32 if block_n <= 32 else 16)
    state = block_d * block_n
    return {"BLOCK_D": block_d, "BLOCK_N": block_n, "num_warps": 1 if state <= 256 else (2 if state <= 512 else 4)}


def _chunk_len(seqlen: int, batch: int, n_dblk: int, device: torch.device) -> int:
    """Steps per chunk: enough chunks that ``batch * n_dblk * nchunks`` programs fill the device
    (8 per SM), never chunks shorter than 256 steps (the carry pass and the zero-state pass 1
    cost more than they save there), and a single chunk when the grid is already full."""
    if is_interpreter():
        return _INTERPRETER_CHUNK
    want_chunks = cdiv(8 * num_sms(device), batch * n_dblk)
    if want_chunks <= 1:
        return next_pow2(seqlen)
    return max(_MIN_CHUNK_GPU, next_pow2(cdiv(seqlen, want_chunks)))


@triton.jit
def _softplus(v):
    # torch's softplus (threshold 20). log1p(e) without log1p (not in every triton version):
    # log(u) * e / (u - 1) with u = 1 + e is exact to rounding even when e << 1 (Goldberg).
    # The clamp and the safe denominator keep the unselected branches finite (no inf/NaN).
    e = tl.exp(tl.minimum(v, 20.0))
    u = 1.0 + e
    lp = tl.where(u == 1.0, e, tl.log(u) * (e / tl.where(u == 1.0, 1.0, u - 1.0)))
    return tl.where(v > 20.0, v, lp)


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
def _scan_step(h, A, bias, t, seq0, x_ptr, dt_ptr, Bm_ptr, perm_ptr, D, N, d_offs, n_offs, dmask,
               nmask, DELTA_SOFTPLUS: tl.constexpr, HAS_PERM: tl.constexpr,
               HAS_DT_BIAS: tl.constexpr):
    """One step of the recurrence at sequence position ``t``, shared by pass 1 and pass 3 so that
    both compute the state with the same operations. Returns the new state, the row it read
    (``perm[t]`` or ``t``, offset by the batch) and that row's ``x`` and ``delta``."""
    if HAS_PERM:
        r = seq0 + tl.load(perm_ptr + seq0 + t).to(tl.int64)
    else:
        r = seq0 + t
    xv = tl.load(x_ptr + r * D + d_offs, mask=dmask, other=0.0).to(A.dtype)
    dv = tl.load(dt_ptr + r * D + d_offs, mask=dmask, other=0.0).to(A.dtype)
    if HAS_DT_BIAS:
        dv += bias
    if DELTA_SOFTPLUS:
        dv = _softplus(dv)
    bv = tl.load(Bm_ptr + r * N + n_offs, mask=nmask, other=0.0).to(A.dtype)
    h = tl.exp(dv[:, None] * A) * h + (dv * xv)[:, None] * bv[None, :]
    return h, r, xv, dv


_HEURISTICS = {
    "HAS_PERM": lambda args: args["perm_ptr"] is not None,
    "HAS_DT_BIAS": lambda args: args["dt_bias_ptr"] is not None,
}


@triton.heuristics(_HEURISTICS)
@triton.jit
def _sass_scan_chunk_state_kernel(
    x_ptr,  # (B, L, D)
    dt_ptr,  # (B, L, D)
    A_ptr,  # (D, N)
    Bm_ptr,  # (B, L, N)
    perm_ptr,  # (B, L) int32/int64, or None
    dt_bias_ptr,  # (D,) or None
    state_ptr,  # (B, NCHUNK, D, N) out: chunk-end state from a zero start
    dsum_ptr,  # (B, NCHUNK, D) out: sum of delta over the chunk
    L,
    D,
    N,
    NCHUNK,
    CHUNK: tl.constexpr,
    DELTA_SOFTPLUS: tl.constexpr,
    IS_FP64: tl.constexpr,
    HAS_PERM: tl.constexpr,
    HAS_DT_BIAS: tl.constexpr,
    BLOCK_D: tl.constexpr,
    BLOCK_N: tl.constexpr,
):
    pid_c = tl.program_id(0)
    pid_d = tl.program_id(1)
    pid_b = tl.program_id(2)
    cdt = tl.float64 if IS_FP64 else tl.float32

    d_offs = pid_d * BLOCK_D + tl.arange(0, BLOCK_D)
    n_offs = tl.arange(0, BLOCK_N)
    dmask = d_offs < D
    nmask = n_offs < N
    A = tl.load(A_ptr + d_offs[:, None] * N + n_offs[None, :], mask=dmask[:, None] & nmask[None, :],
                other=0.0).to(cdt)
    if HAS_DT_BIAS:
        bias = tl.load(dt_bias_ptr + d_offs, mask=dmask, other=0.0).to(cdt)
    else:
        bias = tl.zeros([BLOCK_D], dtype=cdt)  # never read: _scan_step skips it

    seq0 = pid_b.to(tl.int64) * L
    t0 = pid_c * CHUNK
    h = tl.zeros([BLOCK_D, BLOCK_N], dtype=cdt)
    dsum = tl.zeros([BLOCK_D], dtype=cdt)
    # Pass 1 never sees the last chunk, so every chunk here is full: a compile-time trip count.
    for i in range(0, CHUNK):
        h, r, xv, dv = _scan_step(h, A, bias, t0 + i, seq0, x_ptr, dt_ptr, Bm_ptr, perm_ptr, D, N,
                                  d_offs, n_offs, dmask, nmask, DELTA_SOFTPLUS, HAS_PERM, HAS_DT_BIAS)
        dsum += dv

    out = (pid_b * NCHUNK + pid_c).to(tl.int64) * D + d_offs
    tl.store(state_ptr + out[:, None] * N + n_offs[None, :], h, mask=dmask[:, None] & nmask[None, :])
    tl.store(dsum_ptr + out, dsum, mask=dmask)


@triton.jit
def _sass_scan_carry_kernel(
    A_ptr,  # (D, N)
    state_ptr,  # (B, NCHUNK, D, N) in: chunk-end states; out: slot c holds chunk c+1's start
    dsum_ptr,  # (B, NCHUNK, D)
    D,
    N,
    NCHUNK,
    IS_FP64: tl.constexpr,
    BLOCK_D: tl.constexpr,
    BLOCK_N: tl.constexpr,
):
    pid_d = tl.program_id(0)
    pid_b = tl.program_id(1)
    cdt = tl.float64 if IS_FP64 else tl.float32
    d_offs = pid_d * BLOCK_D + tl.arange(0, BLOCK_D)
    n_offs = tl.arange(0, BLOCK_N)
    dmask = d_offs < D
    mask = dmask[:, None] & (n_offs < N)[None, :]
    A = tl.load(A_ptr + d_offs[:, None] * N + n_offs[None, :], mask=mask, other=0.0).to(cdt)
    h = tl.zeros([BLOCK_D, BLOCK_N], dtype=cdt)
    # `while`, not `for c in range(0, NCHUNK - 1)`: NCHUNK is a run-time argument
    # (kernels/_utils.py, "Triton version compatibility").
    c = 0
    while c < NCHUNK - 1:
        row = (pid_b * NCHUNK + c).to(tl.int64) * D + d_offs
        ptrs = state_ptr + row[:, None] * N + n_offs[None, :]
        h_end = tl.load(ptrs, mask=mask, other=0.0)
        ds = tl.load(dsum_ptr + row, mask=dmask, other=0.0)
        h = tl.exp(ds[:, None] * A) * h + h_end
        # Read-then-write of the same slot by the same program: the in-place update is safe.
        tl.store(ptrs, h, mask=mask)
        c += 1


@triton.heuristics(
    dict(
        _HEURISTICS,
        HAS_D=lambda args: args["D_ptr"] is not None,
        HAS_Z=lambda args: args["z_ptr"] is not None,
    )
)
@triton.jit
def _sass_scan_fwd_kernel(
    x_ptr,  # (B, L, D)
    dt_ptr,  # (B, L, D)
    A_ptr,  # (D, N)
    Bm_ptr,  # (B, L, N)
    Cm_ptr,  # (B, L, N)
    perm_ptr,  # (B, L) or None
    D_ptr,  # (D,) or None
    z_ptr,  # (B, L, D) or None
    dt_bias_ptr,  # (D,) or None
    state_ptr,  # (B, NCHUNK, D, N): slot c-1 holds chunk c's initial state (HAS_INIT)
    y_ptr,  # (B, L, D) out, raster order
    L,
    D,
    N,
    NCHUNK,
    CHUNK: tl.constexpr,
    DELTA_SOFTPLUS: tl.constexpr,
    IS_FP64: tl.constexpr,
    HAS_INIT: tl.constexpr,
    OUT_BF16: tl.constexpr,
    HAS_PERM: tl.constexpr,
    HAS_DT_BIAS: tl.constexpr,
    HAS_D: tl.constexpr,
    HAS_Z: tl.constexpr,
    BLOCK_D: tl.constexpr,
    BLOCK_N: tl.constexpr,
):
    pid_c = tl.program_id(0)
    pid_d = tl.program_id(1)
    pid_b = tl.program_id(2)
    cdt = tl.float64 if IS_FP64 else tl.float32

    d_offs = pid_d * BLOCK_D + tl.arange(0, BLOCK_D)
    n_offs = tl.arange(0, BLOCK_N)
    dmask = d_offs < D
    nmask = n_offs < N
    dn_mask = dmask[:, None] & nmask[None, :]
    A = tl.load(A_ptr + d_offs[:, None] * N + n_offs[None, :], mask=dn_mask, other=0.0).to(cdt)
    if HAS_DT_BIAS:
        bias = tl.load(dt_bias_ptr + d_offs, mask=dmask, other=0.0).to(cdt)
    else:
        bias = tl.zeros([BLOCK_D], dtype=cdt)  # never read: _scan_step skips it
    if HAS_D:
        dskip = tl.load(D_ptr + d_offs, mask=dmask, other=0.0).to(cdt)

    if HAS_INIT:
        # Chunk 0 starts from zero; the masked load never touches slot -1. `pid_c > 0` is compared
        # as a block, not as `dn_mask & (pid_c > 0)`: Triton 3.9's interpreter splats a scalar
        # comparison into int32 data and then rejects the mask ("mask has unsupported dtype").
        has_prev = tl.full([BLOCK_D, BLOCK_N], pid_c, tl.int32) > 0
        row = (pid_b * NCHUNK + pid_c - 1).to(tl.int64) * D + d_offs
        h = tl.load(state_ptr + row[:, None] * N + n_offs[None, :], mask=dn_mask & has_prev,
                    other=0.0).to(cdt)
    else:
        h = tl.zeros([BLOCK_D, BLOCK_N], dtype=cdt)

    seq0 = pid_b.to(tl.int64) * L
    t = pid_c * CHUNK
    t1 = tl.minimum(t + CHUNK, L)
    # `while`, not `for t in range(t0, t1)`: the last chunk may be short, so the bound is only
    # known at run time (kernels/_utils.py, "Triton version compatibility").
    while t < t1:
        h, r, xv, dv = _scan_step(h, A, bias, t, seq0, x_ptr, dt_ptr, Bm_ptr, perm_ptr, D, N,
                                  d_offs, n_offs, dmask, nmask, DELTA_SOFTPLUS, HAS_PERM, HAS_DT_BIAS)
        cv = tl.load(Cm_ptr + r * N + n_offs, mask=nmask, other=0.0).to(cdt)
        yv = tl.sum(h * cv[None, :], axis=1)
        if HAS_D:
            yv += xv * dskip
        if HAS_Z:
            zv = tl.load(z_ptr + r * D + d_offs, mask=dmask, other=0.0).to(cdt)
            yv = yv * (zv / (1.0 + tl.exp(-zv)))
        if OUT_BF16:
            yv = _round_to_bf16(yv.to(tl.float32))
        tl.store(y_ptr + r * D + d_offs, yv.to(y_ptr.dtype.element_ty), mask=dmask)
        t += 1


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
    chunk_len: Optional[int] = None,
) -> torch.Tensor:
    """Launch the chunked scan; ``perm=None`` scans in raster order (``selective_scan``).

    ``x, dt, z: (batch, seqlen, dim)`` contiguous, any float dtype; ``A: (dim, nstate)``;
    ``Bm, Cm: (batch, seqlen, nstate)``; ``perm: (batch, seqlen)`` int32/int64;
    ``D, dt_bias: (dim,)``. Returns ``y (batch, seqlen, dim)`` in ``x``'s dtype, raster order.
    ``y`` may be passed in (tests poison it with NaN); ``chunk_len`` overrides the chunk length.
    """
    batch, seqlen, dim = x.shape
    nstate = A.shape[1]
    cfg = _scan_config(dim, nstate, x.device)
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
    common = dict(DELTA_SOFTPLUS=bool(delta_softplus), IS_FP64=is_fp64, BLOCK_D=cfg["BLOCK_D"],
                  BLOCK_N=cfg["BLOCK_N"], num_warps=cfg["num_warps"])
    if nchunk > 1:
        states = torch.empty(batch, nchunk, dim, nstate, device=x.device, dtype=sdt)
        dsum = torch.empty(batch, nchunk, dim, device=x.device, dtype=sdt)
        # The last chunk's end state is never used: pass 1 skips it.
        _sass_scan_chunk_state_kernel[(nchunk - 1, n_dblk, batch)](
            x, dt, A, Bm, perm, dt_bias, states, dsum, seqlen, dim, nstate, nchunk,
            CHUNK=chunk, **common,
        )
        _sass_scan_carry_kernel[(n_dblk, batch)](
            A, states, dsum, dim, nstate, nchunk,
            IS_FP64=is_fp64, BLOCK_D=cfg["BLOCK_D"], BLOCK_N=cfg["BLOCK_N"], num_warps=cfg["num_warps"],
        )
    else:
        states = y  # never read: HAS_INIT is False
    _sass_scan_fwd_kernel[(nchunk, n_dblk, batch)](
        x, dt, A, Bm, Cm, perm, D, z, dt_bias, states, y, seqlen, dim, nstate, nchunk,
        CHUNK=chunk, HAS_INIT=nchunk > 1, OUT_BF16=x.dtype == torch.bfloat16, **common,
    )
    return y


# ---------------------------------------------------------------------------------------------
# torch.library registration: opaque to torch.compile (no graph break), counted by the FLOP
# counter, differentiable through a reference recompute.
# ---------------------------------------------------------------------------------------------


@torch.library.custom_op("samic_fast::selective_scan", mutates_args=())
def _selective_scan_op(
    x: torch.Tensor,
    dt: torch.Tensor,
    A: torch.Tensor,
    Bm: torch.Tensor,
    Cm: torch.Tensor,
    D: Optional[torch.Tensor],
    z: Optional[torch.Tensor],
    dt_bias: Optional[torch.Tensor],
    delta_softplus: bool,
) -> torch.Tensor:
    return sass_scan_fwd(x, dt, A, Bm, Cm, None, D, z, dt_bias, delta_softplus)


@torch.library.custom_op("samic_fast::sass_scan", mutates_args=())
def _sass_scan_op(
    x: torch.Tensor,
    dt: torch.Tensor,
    A: torch.Tensor,
    Bm: torch.Tensor,
    Cm: torch.Tensor,
    perm: torch.Tensor,
    D: Optional[torch.Tensor],
    z: Optional[torch.Tensor],
    dt_bias: Optional[torch.Tensor],
    delta_softplus: bool,
) -> torch.Tensor:
    return sass_scan_fwd(x, dt, A, Bm, Cm, perm, D, z, dt_bias, delta_softplus)


@_selective_scan_op.register_fake
def _(x, dt, A, Bm, Cm, D, z, dt_bias, delta_softplus):
    return torch.empty_like(x)


@_sass_scan_op.register_fake
def _(x, dt, A, Bm, Cm, perm, D, z, dt_bias, delta_softplus):
    return torch.empty_like(x)


# Positions of the differentiable inputs in each op's schema.
_SEL_DIFF = ("x", "dt", "A", "Bm", "Cm", "D", "z", "dt_bias")
_SEL_ARGS = _SEL_DIFF + ("delta_softplus",)
_SASS_ARGS = ("x", "dt", "A", "Bm", "Cm", "perm", "D", "z", "dt_bias", "delta_softplus")


def _setup_context(ctx, inputs, output):
    ctx.save_for_backward(*[t if isinstance(t, torch.Tensor) else None for t in inputs[:-1]])
    ctx.delta_softplus = inputs[-1]


def _recompute_backward(ctx, grad_y, names):
    """Gradients by recomputing the op with the pure-PyTorch reference under autograd.

    The fused kernels are forward-only; this costs a reference forward and backward (memory of
    the reference's blocked temporaries) but is exact to the reference's precision.
    """
    from samic_fast import ref

    saved = dict(zip(names[:-1], ctx.saved_tensors))
    wants = [n for i, n in enumerate(names[:-1]) if ctx.needs_input_grad[i] and n in _SEL_DIFF]
    with torch.enable_grad():
        args = {}
        for n, t in saved.items():
            if t is None or n == "perm":
                args[n] = t
            else:
                args[n] = t.detach().requires_grad_(n in wants)
        kwargs = dict(D=args["D"], z=args["z"], dt_bias=args["dt_bias"], delta_softplus=ctx.delta_softplus)
        if "perm" in names:
            y = ref.sass_scan_ref(args["x"], args["dt"], args["A"], args["Bm"], args["Cm"], args["perm"], **kwargs)
        else:
            y = ref.selective_scan_ref(args["x"], args["dt"], args["A"], args["Bm"], args["Cm"], **kwargs)
        grads = torch.autograd.grad(y, [args[n] for n in wants], grad_y, allow_unused=True) if wants else ()
    by_name = dict(zip(wants, grads))
    return tuple(by_name.get(n) for n in names)


_selective_scan_op.register_autograd(
    lambda ctx, g: _recompute_backward(ctx, g, _SEL_ARGS), setup_context=_setup_context
)
_sass_scan_op.register_autograd(
    lambda ctx, g: _recompute_backward(ctx, g, _SASS_ARGS), setup_context=_setup_context
)


def scan_flops(x_shape, A_shape) -> int:
    """FLOPs of one scan: ``9 * B * L * D * N``.

    Per (token, channel, state): delta*A (1), exp (counted as 2: a multiply and an ex2 on GPUs),
    decay*h + (delta*x)*Bm (3: two multiplies and an add), Cm*h accumulated into y (2), the
    product delta*x amortised over N (~1). Per-(token, channel) terms (softplus, D skip, gate)
    are O(B*L*D) and left out.
    """
    batch, seqlen, dim = x_shape
    return 9 * batch * seqlen * dim * A_shape[1]


def _register_flops() -> None:
    from torch.utils.flop_counter import flop_registry, register_flop_formula

    def formula(x_shape, dt_shape, A_shape, *args, out_shape=None, **kwargs) -> int:
        return scan_flops(x_shape, A_shape)

    for op in (torch.ops.samic_fast.selective_scan, torch.ops.samic_fast.sass_scan):
        if op not in flop_registry:
            register_flop_formula(op)(formula)


_register_flops()


def selective_scan(x, dt, A, Bm, Cm, D=None, z=None, dt_bias=None, delta_softplus=True):
    """Fused twin of :func:`samic_fast.ref.selective_scan_ref` (same signature): Mamba-1 scan in
    raster order. ``x, dt, z: (B, L, D)``, ``A: (D, N)``, ``Bm, Cm: (B, L, N)``,
    ``D, dt_bias: (D,)``; returns ``y (B, L, D)`` in ``x``'s dtype.

    Forward runs the Triton kernels; backward recomputes with the reference (exact gradients,
    reference speed and memory) until a fused backward exists.
    """
    return torch.ops.samic_fast.selective_scan(x, dt, A, Bm, Cm, D, z, dt_bias, bool(delta_softplus))


def sass_scan(x, dt, A, Bm, Cm, perm, D=None, z=None, dt_bias=None, delta_softplus=True):
    """Fused twin of :func:`samic_fast.ref.sass_scan_ref` (same signature): scan the rows in the
    order ``perm (B, L)`` and write each output to its raster row, ``y[perm[t]] = scan_t``.
    Shapes as :func:`selective_scan`. Backward recomputes with the reference (see there).
    """
    return torch.ops.samic_fast.sass_scan(x, dt, A, Bm, Cm, perm, D, z, dt_bias, bool(delta_softplus))


__all__ = ["sass_scan", "selective_scan", "sass_scan_fwd", "scan_flops"]
