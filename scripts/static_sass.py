"""Static sm_90 view of the scan kernels, no GPU: compile, disassemble, count the loop's SASS.

    python scripts/static_sass.py [--dump DIR]

For each variant: registers, spill bytes (``cuobjdump -res-usage``), and over the steady-state
loop body (the largest backward branch's range) the SASS instructions per iteration (= per step,
per warp), MUFU ops, shuffles, barriers and async copies (LDGSTS). A stand-in until
``samic-fast bench --static`` lands; the numbers go to bench/RESULTS.md.
"""
import argparse
import importlib
import os
import re
import subprocess
import tempfile

os.environ.pop("TRITON_INTERPRET", None)
import triton  # noqa: E402
from triton.backends.compiler import GPUTarget  # noqa: E402
from triton.compiler import ASTSource  # noqa: E402

BIN = os.path.join(os.path.dirname(triton.__file__), "backends", "nvidia", "bin")
TARGET = GPUTarget("cuda", 90, 32)


def jit_fn(k):
    while not isinstance(k, triton.runtime.jit.JITFunction):
        k = k.fn
    return k


def compile_variant(kernel, args, num_warps):
    fn = jit_fn(kernel)
    sig, const = {}, {}
    for name in fn.arg_names:
        v = args[name]
        if isinstance(v, str):
            sig[name] = v
        else:
            sig[name] = "constexpr"
            const[name] = v
    return triton.compile(ASTSource(fn, sig, const), target=TARGET, options={"num_warps": num_warps})


def analyse(k):
    with tempfile.NamedTemporaryFile(suffix=".cubin", delete=False) as f:
        f.write(k.asm["cubin"])
        path = f.name
    sass = subprocess.run([f"{BIN}/cuobjdump", "-sass", path], capture_output=True, text=True).stdout
    res = subprocess.run([f"{BIN}/cuobjdump", "-res-usage", path], capture_output=True, text=True).stdout
    os.unlink(path)
    regs = int(re.search(r"REG:(\d+)", res).group(1))
    stack = int(re.search(r"STACK:(\d+)", res).group(1))
    instr = []  # (address, text)
    for line in sass.splitlines():
        m = re.match(r"\s+/\*([0-9a-f]{4,})\*/\s+(.*?);", line)
        if m:
            instr.append((int(m.group(1), 16), m.group(2).strip()))
    addr_index = {a: i for i, (a, _) in enumerate(instr)}
    loops = []
    for i, (a, text) in enumerate(instr):
        m = re.search(r"BRA\s+(?:`\(\.L_x_\d+\)\s*)?0x([0-9a-f]+)|BRA .*?(0x[0-9a-f]+)", text)
        if "BRA" in text:
            tgt = re.search(r"0x([0-9a-f]+)", text)
            if tgt:
                t = int(tgt.group(1), 16)
                if t < a and t in addr_index:
                    loops.append((addr_index[t], i))
    out = {"registers": regs, "stack_bytes": stack, "total_instructions": len(instr)}
    if loops:
        lo, hi = max(loops, key=lambda p: p[1] - p[0])
        body = [t for _, t in instr[lo:hi + 1]]

        def count(pat):
            return sum(1 for t in body if re.search(pat, t))
        out.update(loop_instructions=len(body), mufu=count(r"\bMUFU\b"), shfl=count(r"\bSHFL\b"),
                   bar=count(r"\bBAR\b"), ldgsts=count(r"\bLDGSTS\b"), ldg=count(r"\bLDG\b"),
                   lds=count(r"\bLDS\b"), stl_ldl=count(r"\b(STL|LDL)\b"))
    return out, sass


def scan_variants(S, new: bool):
    """(name, kernel, args, warps) of the forward scan at the model's common case: fp32,
    perm int32, dt_bias + softplus, D skip, no z, N=16 (and N=64)."""
    v = []
    for n in (16, 64):
        bd = int(os.environ.get("BD", 64 if n <= 16 else (32 if n <= 32 else 16)))
        if new:
            xs = dict(s_xb="i64", s_xl="i32", s_xd="i32")
            common = dict(L="i32", D="i32", N="i32", GROUP_D="i32", NCHUNK="i32", CHUNK=256, NUM_STAGES=3,
                          DELTA_SOFTPLUS=True, IS_FP64=False, HAS_PERM=True, HAS_DT_BIAS=True,
                          BLOCK_D=bd, BLOCK_N=n)
            ptrs = dict(x_ptr="*fp32", s_xb="i32", s_xl="i32", s_xd=1, dt_ptr="*fp32", s_tb="i32", s_tl="i32",
                        s_td=1, A_ptr="*fp32", s_ad="i32", s_an="i32", Bm_ptr="*fp32", s_bb="i32", s_bg="i32",
                        s_bl="i32", s_bn=1, perm_ptr="*i32", s_pb="i32", s_pl=1, dt_bias_ptr="*fp32", s_bias=1)
            v.append((f"chunk_state N={n}", S._sass_scan_chunk_state_kernel,
                      dict(common, **ptrs, state_ptr="*fp32", dsum_ptr="*fp32"), 1))
            v.append((f"fwd N={n}", S._sass_scan_fwd_kernel,
                      dict(common, **ptrs, Cm_ptr="*fp32", s_cb="i32", s_cg="i32", s_cl="i32", s_cn=1,
                           D_ptr="*fp32", s_dd=1, z_ptr=None, s_zb="i32", s_zl="i32", s_zd="i32",
                           state_ptr="*fp32", y_ptr="*fp32", s_yb="i32", s_yl="i32", s_yd=1, last_ptr="*fp32",
                           HAS_INIT=True, OUT_BF16=False, HAS_D=True, HAS_Z=False, HAS_LAST=True), 1))
            v.append((f"carry N={n}", S._sass_scan_carry_kernel,
                      dict(A_ptr="*fp32", s_ad="i32", s_an=1, state_ptr="*fp32", dsum_ptr="*fp32", D="i32",
                           N="i32", NCHUNK="i32", IS_FP64=False, BLOCK_C=32, BLOCK_E=128), 4))
            del xs
        else:
            common = dict(L="i32", D="i32", N="i32", NCHUNK="i32", CHUNK=256, DELTA_SOFTPLUS=True,
                          IS_FP64=False, HAS_PERM=True, HAS_DT_BIAS=True, BLOCK_D=32 if n <= 32 else 16,
                          BLOCK_N=n)
            nw = 2 if n <= 16 else 4
            v.append((f"chunk_state N={n}", S._sass_scan_chunk_state_kernel,
                      dict(common, x_ptr="*fp32", dt_ptr="*fp32", A_ptr="*fp32", Bm_ptr="*fp32", perm_ptr="*i32",
                           dt_bias_ptr="*fp32", state_ptr="*fp32", dsum_ptr="*fp32"), nw))
            v.append((f"fwd N={n}", S._sass_scan_fwd_kernel,
                      dict(common, x_ptr="*fp32", dt_ptr="*fp32", A_ptr="*fp32", Bm_ptr="*fp32", Cm_ptr="*fp32",
                           perm_ptr="*i32", D_ptr="*fp32", z_ptr=None, dt_bias_ptr="*fp32", state_ptr="*fp32",
                           y_ptr="*fp32", HAS_INIT=True, OUT_BF16=False, HAS_D=True, HAS_Z=False), nw))
            v.append((f"carry N={n}", S._sass_scan_carry_kernel,
                      dict(A_ptr="*fp32", state_ptr="*fp32", dsum_ptr="*fp32", D="i32", N="i32", NCHUNK="i32",
                           IS_FP64=False, BLOCK_D=32 if n <= 32 else 16, BLOCK_N=n), nw))
    return v


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dump", help="write each variant's SASS here")
    ap.add_argument("--module", default="samic_fast.kernels.sass_scan")
    ap.add_argument("--old", action="store_true", help="the pre-redesign kernel signatures")
    a = ap.parse_args()
    S = importlib.import_module(a.module)
    for name, kern, args, nw in scan_variants(S, not a.old):
        k = compile_variant(kern, args, nw)
        info, sass = analyse(k)
        print(f"{name:18s} warps={nw} " + " ".join(f"{k_}={v}" for k_, v in info.items()))
        if a.dump:
            os.makedirs(a.dump, exist_ok=True)
            with open(os.path.join(a.dump, name.replace(" ", "_").replace("=", "") + ".sass"), "w") as f:
                f.write(sass)


if __name__ == "__main__":
    main()
