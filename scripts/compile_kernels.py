"""Compile every Triton kernel variant of samic_fast for an NVIDIA target, without a GPU.

Triton's CUDA backend lowers to PTX and runs ptxas on the CPU, so this proves that the kernels are
valid compiled-mode Triton (not only interpreter-valid) for the installed triton version:
    python scripts/compile_kernels.py            # sm_90 (H100/H200); ARCH=80 for A100
    DUMP=dir python scripts/compile_kernels.py   # also write each variant's TTGIR and PTX
    COVER=1 python scripts/compile_kernels.py    # every pair of argument values, not every combination
TRITON_INTERPRET must be unset (the interpreter replaces @triton.jit functions). The variants
cover every dtype, optional input and flag combination the launchers can produce. They compile in
JOBS processes (default: every CPU; each variant is independent).
"""
import importlib
import itertools
import multiprocessing
import os

os.environ.pop("TRITON_INTERPRET", None)
import triton
from triton.compiler import ASTSource
from triton.backends.compiler import GPUTarget
S, CA, SO, U = (importlib.import_module("samic_fast.kernels." + m)
                for m in ("sass_scan", "cluster_assign", "scan_order", "_utils"))

target = GPUTarget("cuda", int(os.environ.get("ARCH", "90")), 32)
PDL = target.arch >= 90  # griddepcontrol (programmatic dependent launch) exists from sm_90 on
outdir = os.environ.get("DUMP")

def jit_fn(k):
    while not isinstance(k, triton.runtime.jit.JITFunction):
        k = k.fn
    return k

JOBS = []  # (kernel, args, num_warps, tag): collected first, compiled in parallel at the end


def comp(kernel, args, num_warps=4, tag=""):
    JOBS.append((kernel, args, num_warps, tag))


def _compile(i):
    kernel, args, num_warps, tag = JOBS[i]
    fn = jit_fn(kernel)
    sig, const = {}, {}
    for name in fn.arg_names:
        v = args[name]
        if isinstance(v, str):
            sig[name] = v
        else:
            sig[name] = "constexpr"; const[name] = v
    src = ASTSource(fn, sig, const)
    k = triton.compile(src, target=target, options={"num_warps": num_warps, **U.COMPILE_OPTIONS})
    if outdir:
        os.makedirs(outdir, exist_ok=True)
        with open(f"{outdir}/{fn.__name__}{tag}.ttgir", "w") as f: f.write(k.asm["ttgir"])
        with open(f"{outdir}/{fn.__name__}{tag}.ptx", "w") as f: f.write(k.asm["ptx"])
    return 1


P = {"fp32": "*fp32", "bf16": "*bf16", "fp16": "*fp16", "fp64": "*fp64"}
# Strides: the row stride is a run-time int; the channel/state strides are 1 (contiguous,
# specialised by Triton at launch) or a run-time int (mamba's (B, D, L) layout, transposed views).
for xdt, perm, bias, sp, unit in itertools.product(["fp32", "bf16", "fp16", "fp64"], [None, "*i32", "*i64"],
                                                   [False, True], [False, True], [True, False]):
    if not unit and (xdt in ("fp16", "fp64") or perm is not None or bias != sp):
        continue  # the strided (drop-in) form is selective_scan only; fp32/bf16 cover its dtypes
    if perm == "*i64" and xdt != "fp32":
        continue  # the index width changes only the perm load: one dtype shows it
    fp64 = xdt == "fp64"; st = "*fp64" if fp64 else "*fp32"; x = P[xdt]
    one = 1 if unit else "i32"
    for bn, bd in ((16, 64), (32, 32), (64, 16)):
        if bn != 16 and (xdt != "fp32" or not sp or not unit):
            continue  # larger states: the block shape changes, not the dtype/flag logic
        # Launch-chosen specialisations, both values covered across the variants: int64 offsets
        # with the int64 perm, unmasked full blocks and shared row offsets with unit strides.
        common = dict(L="i32", D="i32", N="i32", GROUP_D="i32", NCHUNK="i32", CHUNK=256, UNROLL=2,
                      POLY_STATES=0 if fp64 else 2, OFFS64=perm == "*i64", EVEN_D=unit, EVEN_N=unit,
                      ROWS_ALIKE=unit, BC_ALIKE=unit, DELTA_SOFTPLUS=sp, IS_FP64=fp64,
                      HAS_PERM=perm is not None, HAS_DT_BIAS=bias, USE_PDL=PDL, BLOCK_D=bd, BLOCK_N=bn)
        ins = dict(x_ptr=x, s_xb="i32", s_xl="i32", s_xd=one, dt_ptr=x, s_tb="i32", s_tl="i32", s_td=one,
                   A_ptr="*fp32", s_ad="i32", s_an="i32", Bm_ptr=x, s_bb="i32", s_bg="i32", s_bl="i32", s_bn=one,
                   perm_ptr=perm, s_pb="i32", s_pl=1, dt_bias_ptr="*fp32" if bias else None, s_bias=1)
        tag = f"_{xdt}_{'p' if perm else 'np'}{perm or ''}_{int(bias)}{int(sp)}{int(unit)}_n{bn}".replace("*", "")
        comp(S._sass_scan_chunk_state_kernel, dict(common, **ins, state_ptr=st, dsum_ptr=st, FULL_CHUNKS=True,
                  NUM_STAGES=S.PASS1_STAGES),
             1, tag)
        for init, hd, hz, full in itertools.product([False, True], [False, True], [False, True], [False, True]):
            if bn != 16 and (hd != hz or full):
                continue  # the other state sizes: with and without every optional input
            if full and (hd != hz or xdt == "fp16"):
                continue  # no tail mask: the loop body changes, not the dtype/option logic
            comp(S._sass_scan_fwd_kernel, dict(common, **ins, Cm_ptr=x, s_cb="i32", s_cg="i32", s_cl="i32",
                 s_cn=one, D_ptr="*fp32" if hd else None, s_dd=1, z_ptr=x if hz else None, s_zb="i32",
                 s_zl="i32", s_zd=one, state_ptr=st, y_ptr=x, s_yb="i32", s_yl="i32", s_yd=one,
                 last_ptr=st, HAS_INIT=init, OUT_BF16=xdt == "bf16", HAS_D=hd, HAS_Z=hz, HAS_LAST=True,
                 NUM_STAGES=S.PASS3_STAGES, SEQ_SUM=S.SEQUENTIAL_STATE_SUM, FULL_CHUNKS=full),
                 1, tag + f"_{int(init)}{int(hd)}{int(hz)}{int(full)}")
for fp64 in (False, True):
    st = "*fp64" if fp64 else "*fp32"
    comp(S._sass_scan_carry_kernel, dict(A_ptr="*fp32", s_ad="i32", s_an="i32", state_ptr=st, dsum_ptr=st,
         D="i32", N="i32", NCHUNK="i32", IS_FP64=fp64, OFFS64=fp64, USE_PDL=PDL, SEGS=32, SEG=S.CARRY_SEG,
         BLOCK_E=16), 16, f"_{int(fp64)}")
for xdt, sl in itertools.product(["fp32", "bf16", "fp16", "fp64"], [1, "i32"]):  # contiguous, channels_last
    comp(CA._cluster_assign_fwd_kernel, dict(feat_ptr=P[xdt], centers_ptr=P[xdt], pos_row_ptr="*fp32",
         pos_col_ptr="*fp32", cluster_ptr="*i32", partial_ptr="*i32", SB="i32", SC="i32", SL=sl, C="i32",
         W="i32", L="i32", K="i32", NBLK="i32", HALF="i32", PLANE="i32", NORM_EPS=1e-6,
         IS_FP64=xdt == "fp64", BLOCK_L=256, BLOCK_K=32), 4, f"_{xdt}_{sl}")
comp(CA._cluster_sums_kernel, dict(partial_ptr="*i32", count_ptr="*i64", rowsum_ptr="*i64", colsum_ptr="*i64",
     K="i32", NBLK="i32", PLANE="i32", BLOCK_NB=128, BLOCK_K=32), 4)
for cl in ("*i32", "*i64"):
    comp(SO._scan_order_hist_kernel, dict(cluster_ptr=cl, hist_ptr="*i32", L="i32", K="i32", NBLK="i32",
         BLOCK_L=256, BLOCK_K=32), 4, cl[1:])
    comp(SO._scan_order_scatter_kernel, dict(cluster_ptr=cl, start_ptr="*i32", perm_ptr="*i32",
         inv_ptr="*i32", L="i32", K="i32", NBLK="i32", BLOCK_L=256, BLOCK_K=32), 4, cl[1:])
for cl, fused in itertools.product(("*i32", "*i64"), (False, True)):
    comp(SO._scan_order_start_kernel, dict(count_ptr="*i64", rowsum_ptr="*i64", colsum_ptr="*i64",
         hist_ptr="*i32", cluster_ptr=cl, L="i32", K="i32", NBLK="i32", BLOCK_K=32, BLOCK_NB=128,
         BLOCK_L=256, FUSED_HIST=fused), 4, f"{cl[1:]}_{int(fused)}")
# The GPU calibration probes of samic_fast.bench.calibrate (run by scripts/gpu_check.sh).
CAL = importlib.import_module("samic_fast.bench.calibrate")
comp(CAL._chase_kernel, dict(next_ptr="*i32", out_ptr="*i32", start="i32", steps="i32"), 1)
for pdl in sorted({False, PDL}):
    comp(CAL._empty_kernel, dict(out_ptr="*fp32", USE_PDL=pdl), 1, f"_{int(pdl)}")
if os.environ.get("COVER"):
    # A pairwise covering subset: for each kernel, every pair of argument values (dtype x flag,
    # flag x flag, block size x dtype, ...) compiled at least once, not every combination (what
    # CI runs, a third of the time; the full set is the default).
    seen, cover = set(), []
    for kernel, args, num_warps, tag in JOBS:
        name = jit_fn(kernel).__name__
        vals = sorted((k, repr(v)) for k, v in dict(args, num_warps=num_warps).items())
        feats = {(name, a, b) for i, a in enumerate(vals) for b in vals[i + 1:]}
        if not feats <= seen:
            seen |= feats
            cover.append((kernel, args, num_warps, tag))
    JOBS[:] = cover
jobs = int(os.environ.get("JOBS", os.cpu_count() or 1))
if jobs > 1:
    # fork: the workers inherit JOBS and the imported kernels; a failure re-raises here.
    with multiprocessing.get_context("fork").Pool(jobs) as pool:
        n_ok = sum(pool.imap_unordered(_compile, range(len(JOBS))))
else:
    n_ok = sum(_compile(i) for i in range(len(JOBS)))
print(f"triton {triton.__version__}: compiled {n_ok} kernel variants for {target}")
