"""Fused scans (kernels/sass_scan.py) against the float64 reference (docs/design.md §5).

On CPU the kernels run under TRITON_INTERPRET=1 at small odd shapes (several channel blocks and
several chunks, since the interpreter config uses 8-channel blocks and 16-step chunks); the
docs/design.md §3 shapes run only on a GPU. Outputs are NaN-poisoned before each launch so an
unwritten element fails.
"""

import pytest
import torch
import triton
import triton.language as tl
from torch.utils._python_dispatch import TorchDispatchMode

from conftest import LOW_PRECISION_FACTOR, LOW_PRECISION_FLOOR, SCAN_RTOL_RMS, rel_rms, requires_cuda
from samic_fast import ops, ref
from samic_fast.custom_ops import sass_scan, scan_flops, selective_scan
from samic_fast.kernels import sass_scan_fwd
from samic_fast.kernels.sass_scan import _exp2_fma
from samic_fast.mamba_ref import mamba_available, mamba_scan_channel_last
from samic_fast.shapes import SASS_SHAPES_768x512, shape_name

SHAPES = [(1, 1, 1, 1), (2, 37, 11, 5), (1, 50, 7, 17), (3, 23, 1, 3), (1, 45, 13, 64)]
IDS = [f"B{b}-L{l}-D{d}-N{n}" for b, l, d, n in SHAPES]
OPTIONS = {"plain": dict(), "full": dict(D=True, z=True, dt_bias=True)}


def make_inputs(b, L, d, n, dtype=torch.float32, seed=0, device="cpu", full=True, positive_dt=False):
    g = torch.Generator().manual_seed(seed)
    r = lambda *s: torch.randn(*s, generator=g)  # noqa: E731
    dt = r(b, L, d).abs() * 0.3 + 0.01 if positive_dt else r(b, L, d) * 0.5 - 1.0
    inp = dict(
        x=r(b, L, d), dt=dt, A=-torch.exp(r(d, n)), Bm=r(b, L, n), Cm=r(b, L, n),
        D=r(d) if full else None, z=r(b, L, d) if full else None, dt_bias=r(d) * 0.3 if full else None,
    )
    perm = torch.stack([torch.randperm(L, generator=g) for _ in range(b)]).to(torch.int32)
    out = {}
    for k, v in inp.items():
        if v is None:
            out[k] = None
        elif k in ("A", "D", "dt_bias"):
            out[k] = v.to(device)  # parameters stay fp32
        else:
            out[k] = v.to(device=device, dtype=dtype)
    return out, perm.to(device)


def as64(inp):
    return {k: None if v is None else v.double() for k, v in inp.items()}


def run_fused(op, inp, perm, softplus=True, chunk_len=None):
    y = torch.full_like(inp["x"], float("nan"))  # poison: every element must be written
    p = perm if op == "sass" else None
    out = sass_scan_fwd(inp["x"], inp["dt"], inp["A"], inp["Bm"], inp["Cm"], p, inp["D"], inp["z"],
                        inp["dt_bias"], softplus, y=y, chunk_len=chunk_len)
    assert out is y
    return out


def run_ref(op, inp, perm, softplus=True):
    args = (inp["x"], inp["dt"], inp["A"], inp["Bm"], inp["Cm"])
    kw = dict(D=inp["D"], z=inp["z"], dt_bias=inp["dt_bias"], delta_softplus=softplus)
    if op == "sass":
        return ref.sass_scan_ref(*args, perm, **kw)
    return ref.selective_scan_ref(*args, **kw)


def check_fp32(y, y64):
    assert not torch.isnan(y).any()
    assert rel_rms(y, y64) <= SCAN_RTOL_RMS[torch.float32]
    scale = max(1.0, float(y64.abs().max()))
    assert float((y.double() - y64).abs().max()) <= 1e-4 * scale


@pytest.mark.parametrize("opt", list(OPTIONS))
@pytest.mark.parametrize("op", ["sass", "selective"])
@pytest.mark.parametrize("shape", SHAPES, ids=IDS)
def test_fp32_matches_float64_reference(shape, op, opt):
    inp, perm = make_inputs(*shape, full=opt == "full")
    y = run_fused(op, inp, perm)
    assert y.dtype == torch.float32 and y.shape == inp["x"].shape
    check_fp32(y, run_ref(op, as64(inp), perm))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=["fp16", "bf16"])
@pytest.mark.parametrize("op", ["sass", "selective"])
@pytest.mark.parametrize("shape", [(2, 37, 11, 5), (1, 29, 9, 16)], ids=["B2-L37-D11-N5", "B1-L29-D9-N16"])
def test_low_precision_within_twice_reference_error(shape, op, dtype):
    inp, perm = make_inputs(*shape, dtype=dtype, seed=1)
    y = run_fused(op, inp, perm)
    assert y.dtype == dtype and not torch.isnan(y).any()
    y64 = run_ref(op, as64(inp), perm)
    ref_err = rel_rms(run_ref(op, inp, perm), y64)  # the reference run in the same dtype
    assert rel_rms(y, y64) <= LOW_PRECISION_FACTOR * ref_err + LOW_PRECISION_FLOOR[dtype]


@pytest.mark.parametrize("op", ["sass", "selective"])
def test_float64_inputs_compute_in_float64(op):
    inp, perm = make_inputs(2, 31, 9, 6, dtype=torch.float64, seed=2)
    inp.update(A=inp["A"].double(), D=inp["D"].double(), dt_bias=inp["dt_bias"].double())
    y = run_fused(op, inp, perm)
    assert y.dtype == torch.float64
    assert rel_rms(y, run_ref(op, inp, perm)) <= SCAN_RTOL_RMS[torch.float64]


@pytest.mark.parametrize("op", ["sass", "selective"])
def test_without_softplus(op):
    inp, perm = make_inputs(2, 33, 10, 4, seed=3, positive_dt=True)
    y = run_fused(op, inp, perm, softplus=False)
    check_fp32(y, run_ref(op, as64(inp), perm, softplus=False))


def test_softplus_branches_extreme_dt():
    # dt spanning exp underflow (-40), the log1p region (-10), and the linear branch (> 20).
    inp, perm = make_inputs(1, 30, 5, 3, seed=4, full=False)
    vals = torch.tensor([-40.0, -10.0, -1.0, 0.0, 3.0, 19.0, 21.0, 30.0])
    inp["dt"] = vals[torch.arange(30 * 5) % 8].reshape(1, 30, 5) * 0.1  # * 0.1: decays stay sane
    inp["dt"][0, ::3] = vals[torch.arange(10 * 5) % 8].reshape(10, 5)
    inp["A"] = -torch.rand(5, 3) * 0.05
    y = run_fused("sass", inp, perm)
    check_fp32(y, run_ref("sass", as64(inp), perm))


def test_mixed_input_dtypes():
    inp, perm = make_inputs(2, 27, 6, 5, seed=5)
    inp["Bm"], inp["z"] = inp["Bm"].to(torch.bfloat16), inp["z"].to(torch.float16)
    y = run_fused("sass", inp, perm)
    check_fp32(y, run_ref("sass", as64(inp), perm))


@pytest.mark.parametrize("chunk", [1, 5, 64])
def test_chunking_does_not_change_the_result(chunk):
    inp, perm = make_inputs(2, 40, 9, 7, seed=6)
    y = run_fused("sass", inp, perm, chunk_len=chunk)
    y_default = run_fused("sass", inp, perm)  # 16-step chunks under the interpreter
    y64 = run_ref("sass", as64(inp), perm)
    check_fp32(y, y64)
    assert rel_rms(y, y_default) <= 1e-6


def test_sass_equals_selective_scan_of_gathered_rows():
    """The fused gather/scatter: sass_scan(x, perm) == scatter(selective_scan(gather(x)))."""
    inp, perm = make_inputs(2, 26, 7, 3, seed=7)
    idx = perm.long()
    gather = lambda t: None if t is None or t.dim() < 3 else torch.gather(  # noqa: E731
        t, 1, idx[..., None].expand(-1, -1, t.shape[-1]))
    g = {k: gather(v) if k in ("x", "dt", "Bm", "Cm", "z") else v for k, v in inp.items()}
    y_perm = run_fused("selective", g, perm)
    y = run_fused("sass", inp, perm)
    expected = torch.empty_like(y).scatter(1, idx[..., None].expand_as(y), y_perm)
    assert torch.equal(y, expected)


def test_identity_permutation_equals_selective_scan():
    inp, _ = make_inputs(2, 35, 9, 5, seed=8)
    ident = torch.arange(35, dtype=torch.int32).expand(2, 35).contiguous()
    assert torch.equal(run_fused("sass", inp, ident), run_fused("selective", inp, None))


def test_int64_perm_and_public_wrappers_through_ops():
    inp, perm = make_inputs(2, 21, 6, 4, seed=9)
    args = (inp["x"], inp["dt"], inp["A"], inp["Bm"], inp["Cm"])
    kw = dict(D=inp["D"], z=inp["z"], dt_bias=inp["dt_bias"])
    y32 = sass_scan(*args, perm, **kw)
    y64 = ops.sass_scan(*args, perm.long(), **kw, backend="triton")
    assert torch.equal(y32, y64)
    check_fp32(y32, run_ref("sass", as64(inp), perm))
    ys = ops.selective_scan(*args, **kw, backend="triton")
    assert torch.equal(ys, selective_scan(*args, **kw))


@pytest.mark.skipif(not mamba_available(), reason="mamba-ssm not installed")
def test_selective_scan_matches_mamba_ssm_reference():
    """An independent reference nobody here wrote (fp32, (B, D, L) layout, transposed)."""
    inp, perm = make_inputs(2, 37, 11, 5, seed=10)
    y = run_fused("selective", inp, perm)
    ym = mamba_scan_channel_last(inp["x"], inp["dt"], inp["A"], inp["Bm"], inp["Cm"], D=inp["D"],
                                 z=inp["z"], dt_bias=inp["dt_bias"], delta_softplus=True)
    assert rel_rms(y, ym) <= 1e-5


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
def test_deterministic_bitwise(dtype):
    inp, perm = make_inputs(2, 41, 11, 6, dtype=dtype, seed=11)
    first = run_fused("sass", inp, perm)
    for _ in range(2):
        assert torch.equal(run_fused("sass", inp, perm), first)


def test_flop_formula():
    assert scan_flops(2, 100, 8, 16) == 9 * 2 * 100 * 8 * 16


# ----------------------------------------------------------------------------- GPU, §4 shapes

# The default model's SASS calls on a Kodak image (samic_fast.shapes): name -> (L, D).
KODAK = {shape_name(s): (s.L, s.D) for s in SASS_SHAPES_768x512}


@pytest.mark.gpu
@pytest.mark.parametrize("name", list(KODAK))
@pytest.mark.parametrize("op", ["sass", "selective"])
def test_kodak_shapes_cuda(name, op):
    requires_cuda()
    L, d = KODAK[name]
    inp, perm = make_inputs(1, L, d, 16, device="cuda", seed=12)
    y = run_fused(op, inp, perm)
    check_fp32(y, run_ref(op, as64(inp), perm))
    assert torch.equal(run_fused(op, inp, perm), y)


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=["fp16", "bf16"])
def test_kodak_low_precision_cuda(dtype):
    requires_cuda()
    inp, perm = make_inputs(1, 6144, 256, 16, dtype=dtype, device="cuda", seed=13)
    y = run_fused("sass", inp, perm)
    y64 = run_ref("sass", as64(inp), perm)
    ref_err = rel_rms(run_ref("sass", inp, perm), y64)
    assert rel_rms(y, y64) <= LOW_PRECISION_FACTOR * ref_err + LOW_PRECISION_FLOOR[dtype]


@pytest.mark.gpu
def test_programmatic_dependent_launch_gives_the_same_bits_cuda(monkeypatch):
    """The three kernels as programmatic dependent launches (sm_90+: launched while their
    predecessor runs, waiting in-kernel for its output) give the bits of plain launches."""
    requires_cuda()
    if torch.cuda.get_device_capability()[0] < 9:
        pytest.skip("programmatic dependent launch needs sm_90")
    inp, perm = make_inputs(1, 24576, 128, 16, device="cuda", seed=15)
    last = torch.empty(1, 128, 16, device="cuda")
    y = sass_scan_fwd(inp["x"], inp["dt"], inp["A"], inp["Bm"], inp["Cm"], perm, inp["D"], inp["z"],
                      inp["dt_bias"], True, last_state=last)
    monkeypatch.setenv("SAMIC_FAST_PDL", "0")
    last_plain = torch.empty_like(last)
    y_plain = sass_scan_fwd(inp["x"], inp["dt"], inp["A"], inp["Bm"], inp["Cm"], perm, inp["D"], inp["z"],
                            inp["dt_bias"], True, last_state=last_plain)
    assert torch.equal(y, y_plain) and torch.equal(last, last_plain)
    check_fp32(y, run_ref("sass", as64(inp), perm))


@pytest.mark.gpu
def test_no_permuted_copies_cuda():
    """The fused path allocates y and the chunk states only: no gather, no permuted copy."""
    requires_cuda()

    class Record(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.calls = []

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            self.calls.append((str(func), out.numel() if isinstance(out, torch.Tensor) else 0))
            return out

    L, d, n = 24576, 256, 16
    inp, perm = make_inputs(1, L, d, n, device="cuda", seed=14)
    with Record() as rec:
        sass_scan_fwd(inp["x"], inp["dt"], inp["A"], inp["Bm"], inp["Cm"], perm, inp["D"], inp["z"],
                      inp["dt_bias"], True)
    names = {c for c, _ in rec.calls}
    assert names <= {"aten.empty_like.default", "aten.empty.memory_format"}, names
    big = [c for c, numel in rec.calls if numel >= L * d]
    assert big == ["aten.empty_like.default"], rec.calls  # y itself, nothing else of its size


def test_gpu_chunking_fills_an_h100_at_batch_one(monkeypatch):
    """The CUDA launch sizing (checked on CPU by pretending to be a 132-SM GPU): at every model
    shape (L from 384 to 98,304, D from 64 to 512, N up to 64) batch 1 runs in one wave (at
    most WARPS_PER_SM one-warp programs an SM) with about LATENCY_WARPS warps a scheduler or
    more, or in chunks of the minimum length."""
    import importlib

    mod = importlib.import_module("samic_fast.kernels.sass_scan")
    monkeypatch.setattr(mod, "is_interpreter", lambda: False)
    monkeypatch.setattr(mod, "num_sms", lambda device: 132)
    cuda = torch.device("cuda")
    for L in (384, 1536, 6144, 24576, 98304):
        for d in (64, 128, 192, 256, 384, 512):
            for n in (16, 64):
                cfg = mod._scan_config(d, n)
                n_dblk = -(-d // cfg["BLOCK_D"])
                chunk = mod._chunk_len(L, 1, n_dblk, cuda)
                assert chunk >= mod.MIN_CHUNK and chunk % 2 == 0
                assert chunk in mod._chunk_candidates(L)  # few compiled variants
                programs = n_dblk * -(-L // chunk)
                # One wave: every program resident at once.
                assert programs <= mod.WARPS_PER_SM * 132, (L, d, n, chunk)
                # Enough warps a scheduler to hide latency, unless chunks are already minimal.
                per_scheduler = programs / (132 * 4)
                assert per_scheduler >= 0.85 * mod.LATENCY_WARPS or chunk == mod.MIN_CHUNK, (L, d, n, chunk)
    # A batch that already fills the device scans each sequence in one chunk (no carry pass).
    assert mod._chunk_len(6144, 2048, 8, cuda) >= 6144


def test_int64_offsets_give_the_same_bits(monkeypatch):
    """The 64-bit offset path (OFFS64, taken when a tensor reaches 2^31 elements) in all three
    kernels, forced at a small shape: the same bits as 32-bit offsets."""
    import importlib

    mod = importlib.import_module("samic_fast.kernels.sass_scan")
    inp, perm = make_inputs(1, 37, 11, 5, seed=22)
    y32 = run_fused("sass", inp, perm, chunk_len=4)
    monkeypatch.setattr(mod, "_needs_int64", lambda *tensors: True)
    y64 = run_fused("sass", inp, perm, chunk_len=4)
    assert torch.equal(y32, y64)


@pytest.mark.parametrize("seq_sum,pass1_stages", [(False, 1), (True, 2)], ids=["tl.sum", "scan-last"])
@pytest.mark.parametrize("shape", [(1, 37, 11, 5), (2, 23, 9, 16)], ids=["N5", "N16"])
def test_version_dependent_code_paths(monkeypatch, seq_sum, pass1_stages, shape):
    """Both forms of pass 3's sum over the states (``tl.sum``, or a scan's last element, which
    Triton >= 3.8 gets: SEQUENTIAL_STATE_SUM) and a pipelined pass 1 (PASS1_STAGES, Triton 3.9),
    whatever the installed Triton picks: each against the float64 reference, masked states (N=5)
    included."""
    import importlib

    mod = importlib.import_module("samic_fast.kernels.sass_scan")
    monkeypatch.setattr(mod, "SEQUENTIAL_STATE_SUM", seq_sum)
    monkeypatch.setattr(mod, "PASS1_STAGES", pass1_stages)
    inp, perm = make_inputs(*shape, seed=23)
    check_fp32(run_fused("sass", inp, perm, chunk_len=6), run_ref("sass", as64(inp), perm))


@pytest.mark.parametrize("block_e,segs", [(32, 16), (16, 32), (8, 64)])
def test_carry_with_the_gpu_tiles(monkeypatch, block_e, segs):
    """The carry's GPU tile shapes (16 chunks a thread, 16-64 segments, 8-32 elements), run by
    the interpreter: 18 chunks of two steps (2 segments, the rest of the tile empty) and 8 * 7
    elements (the last 32- or 16-element block partly empty), against the float64 reference."""
    import importlib

    mod = importlib.import_module("samic_fast.kernels.sass_scan")
    cfg = {"BLOCK_E": block_e, "SEGS": segs, "SEG": mod.CARRY_SEG, "num_warps": segs * block_e // 32}
    monkeypatch.setattr(mod, "_carry_config", lambda *args: cfg)
    inp, perm = make_inputs(1, 36, 7, 8, seed=21, positive_dt=True)
    check_fp32(run_fused("sass", inp, perm, chunk_len=2), run_ref("sass", as64(inp), perm))


def test_gpu_carry_composes_at_most_32_chunks_in_sequence(monkeypatch):
    """The carry's CUDA sizing (a pretend 132-SM GPU): at the chunk counts the launcher picks
    for the model shapes (bytes included), one thread a (segment, element), at most
    CARRY_THREADS a program, and at most 32 chunks composed in sequence a thread: from Triton 3.7
    one wave of at most two tiles (rounds of dependent latency) of 16 chunks a thread; on Triton
    3.6 (CARRY_SEG = 8: 16 spill there) at most four rounds, waves x tiles, of 8."""
    import importlib

    mod = importlib.import_module("samic_fast.kernels.sass_scan")
    monkeypatch.setattr(mod, "is_interpreter", lambda: False)
    monkeypatch.setattr(mod, "num_sms", lambda device: 132)
    cuda = torch.device("cuda")
    seen = 0
    for L in (384, 1536, 6144, 8160, 24576, 32640, 98304, 522240, 2088960):
        for d in (64, 128, 192, 256):
            n = 16
            n_dblk = -(-d // mod._scan_config(d, n)["BLOCK_D"])
            chunk = mod._chunk_len(L, 1, n_dblk, cuda, state_bytes=4 * n * d,
                                   pass1_row_bytes=8 * d + 4 * n + 4, pass3_row_bytes=12 * d + 8 * n + 4)
            assert chunk in mod._chunk_candidates(L) and n_dblk * -(-L // chunk) <= mod.WARPS_PER_SM * 132
            nchunk = -(-L // chunk)
            if nchunk == 1:
                continue
            seen += 1
            cfg = mod._carry_config(n * d, nchunk, 1, cuda)
            threads = cfg["SEGS"] * cfg["BLOCK_E"]
            assert threads == 32 * cfg["num_warps"] and threads <= mod.CARRY_THREADS, (L, d, cfg)
            programs = -(-(n * d) // cfg["BLOCK_E"])
            waves = -(-programs // (132 * (mod.CARRY_THREADS // threads)))
            tiles = -(-(nchunk - 1) // (cfg["SEGS"] * cfg["SEG"]))
            assert waves * tiles * cfg["SEG"] <= 32, (L, d, nchunk, cfg)
            assert waves == 1 or cfg["SEG"] < 16, (L, d, nchunk, cfg)
    assert seen >= 30


def _last_state_ref(op, inp, perm, softplus=True):
    args = (inp["x"], inp["dt"], inp["A"], inp["Bm"], inp["Cm"])
    kw = dict(D=inp["D"], z=inp["z"], dt_bias=inp["dt_bias"], delta_softplus=softplus, return_last_state=True)
    if op == "sass":
        return ref.sass_scan_ref(*args, perm, **kw)
    return ref.selective_scan_ref(*args, **kw)


@pytest.mark.parametrize("op", ["sass", "selective"])
@pytest.mark.parametrize("shape", [(2, 37, 11, 5), (1, 9, 3, 1), (1, 13, 5, 64)], ids=["L37-N5", "L9-N1", "L13-N64"])
def test_last_state_matches_reference(shape, op):
    inp, perm = make_inputs(*shape, seed=20)
    b, L, d, n = shape
    last = torch.full((b, d, n), float("nan"))
    y = sass_scan_fwd(inp["x"], inp["dt"], inp["A"], inp["Bm"], inp["Cm"], perm if op == "sass" else None,
                      inp["D"], inp["z"], inp["dt_bias"], True, last_state=last)
    y64, last64 = _last_state_ref(op, as64(inp), perm)
    check_fp32(y, y64)
    assert rel_rms(last, last64) <= SCAN_RTOL_RMS[torch.float32]
    # Through the custom ops and ops layer, as users call it.
    fn = (lambda *a, **k: ops.sass_scan(*a[:5], perm, *a[5:], **k)) if op == "sass" else ops.selective_scan
    y2, last2 = fn(inp["x"], inp["dt"], inp["A"], inp["Bm"], inp["Cm"], inp["D"], inp["z"], inp["dt_bias"],
                   return_last_state=True, backend="triton")
    assert torch.equal(y2, y) and torch.equal(last2, last)


@pytest.mark.parametrize("op", ["sass", "selective"])
def test_full_chunks_skip_the_step_mask(op):
    """L a multiple of the chunk: no launch has a tail, so the step mask is compiled out
    (FULL_CHUNKS); channels past D (11 in 8-channel blocks) still load zeros and are not stored."""
    inp, perm = make_inputs(2, 32, 11, 5, seed=25)
    b, L, d, n = 2, 32, 11, 5
    last = torch.full((b, d, n), float("nan"))
    y = torch.full_like(inp["x"], float("nan"))
    sass_scan_fwd(inp["x"], inp["dt"], inp["A"], inp["Bm"], inp["Cm"], perm if op == "sass" else None,
                  inp["D"], inp["z"], inp["dt_bias"], True, y=y, last_state=last, chunk_len=8)
    y64, last64 = _last_state_ref(op, as64(inp), perm)
    check_fp32(y, y64)
    assert rel_rms(last, last64) <= SCAN_RTOL_RMS[torch.float32]


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
def test_strided_channel_first_inputs_without_copies(dtype):
    """(B, D, L) storage read through (B, L, D) views: the result equals the contiguous run."""
    inp, perm = make_inputs(2, 19, 7, 4, dtype=dtype, seed=21)
    cf = {k: (v.transpose(1, 2).contiguous().transpose(1, 2) if k in ("x", "dt", "z", "Bm", "Cm") else v)
          for k, v in inp.items()}
    assert not cf["x"].is_contiguous() and cf["x"].stride() == (19 * 7, 1, 19)
    y_cf = sass_scan_fwd(cf["x"], cf["dt"], cf["A"], cf["Bm"], cf["Cm"], perm, cf["D"], cf["z"], cf["dt_bias"], True)
    assert y_cf.stride() == cf["x"].stride()  # allocated like x: (B, D, L) storage
    assert torch.equal(y_cf, run_fused("sass", inp, perm))


@pytest.mark.parametrize("groups", [2, 3])
def test_grouped_bc_matches_per_group_reference(groups):
    from samic_fast.custom_ops import reference_scan

    b, L, d, n = 2, 17, 6 * groups // 2 if groups == 2 else 9, 5
    inp, perm = make_inputs(b, L, d, n, seed=22)
    g = torch.Generator().manual_seed(23)
    Bg, Cg = torch.randn(b, groups, L, n, generator=g), torch.randn(b, groups, L, n, generator=g)
    args = (inp["x"], inp["dt"], inp["A"], Bg, Cg)
    y = sass_scan_fwd(*args, None, inp["D"], inp["z"], inp["dt_bias"], True)
    y64, _ = reference_scan(*(t.double() for t in args), None, *(inp[k].double() for k in ("D", "z", "dt_bias")))
    check_fp32(y, y64)
    # Each group alone is an ungrouped scan of its channels.
    size = d // groups
    ch = slice(size, 2 * size)
    y1 = sass_scan_fwd(inp["x"][..., ch], inp["dt"][..., ch], inp["A"][ch], Bg[:, 1], Cg[:, 1], None,
                       inp["D"][ch], inp["z"][..., ch], inp["dt_bias"][ch], True)
    assert rel_rms(y1, y[..., ch]) <= 1e-6


@pytest.mark.gpu
def test_tensors_on_a_second_gpu():
    """Tensors on cuda:1 while cuda:0 is current: the launchers enter the tensors' device
    (kernels/_utils.on_device); without it Triton would launch on GPU 0 with GPU 1 pointers."""
    if torch.cuda.device_count() < 2:
        pytest.skip("needs two CUDA GPUs")
    inp, perm = make_inputs(1, 300, 40, 16, seed=24, device="cuda:1")
    assert torch.cuda.current_device() == 0
    y = run_fused("sass", inp, perm)
    assert y.device == torch.device("cuda:1")
    cpu = {k: None if v is None else v.cpu() for k, v in inp.items()}
    check_fp32(y.cpu(), run_ref("sass", as64(cpu), perm.cpu()))
    feat, centers = torch.randn(1, 8, 9, 11, device="cuda:1"), torch.randn(5, 8, device="cuda:1")
    cl, *sums = ops.cluster_assign(feat, centers, 0.1, backend="triton")
    perm2, _ = ops.scan_order(cl, *sums, 9, 11, backend="triton")
    assert cl.device == perm2.device == torch.device("cuda:1")
    ref_cl, *_ = ref.cluster_assign_ref(feat, centers, 0.1)
    assert (cl == ref_cl).float().mean() > 0.99


def test_kernels_import_nothing_from_samic_fast():
    """kernels/ is self-contained: the launchers take tensors, the ops layer does the rest."""
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "kernels"
    files = sorted(root.glob("*.py"))
    assert len(files) >= 4
    for path in files:
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            assert not any(n == "samic_fast" or n.startswith("samic_fast.") for n in names), (path.name, names)


@triton.jit
def _apply_exp2_fma(x_ptr, y_ptr, n, BLOCK: tl.constexpr):
    offs = tl.arange(0, BLOCK)
    m = offs < n
    tl.store(y_ptr + offs, _exp2_fma(tl.load(x_ptr + offs, mask=m, other=0.0)), mask=m)


def test_exp2_on_the_fma_pipe_matches_exp2():
    """``_exp2_fma`` (the decays moved off the MUFU): within 3e-7 relative of exp2 over the whole
    normal range, 2^-126 below it (the decay is 0 to the state's precision), 2^127 above it, NaN
    kept; checked under the interpreter on the same code the GPU compiles."""
    import triton

    normal = torch.cat([torch.linspace(-126.0, 127.0, 4001), torch.linspace(-1.0, 1.0, 2001),
                        torch.tensor([-0.5, 0.5, -1e-30, 0.0, 1e-30, -125.9999, 126.9999])])
    x = normal.float()
    y = torch.empty_like(x)
    _apply_exp2_fma[(1,)](x, y, x.numel(), BLOCK=triton.next_power_of_2(x.numel()))
    exact = torch.exp2(x.double())
    rel = ((y.double() - exact).abs() / exact).max().item()
    assert rel < 3e-7, rel
    edge = torch.tensor([-127.0, -1000.0, -float("inf"), 128.0, 1000.0, float("inf"), float("nan")])
    ye = torch.empty_like(edge)
    _apply_exp2_fma[(1,)](edge, ye, edge.numel(), BLOCK=8)
    tiny, huge = 2.0 ** -126, 2.0 ** 127
    assert ye[:3].tolist() == [tiny] * 3
    assert ye[3:6].tolist() == [huge] * 3
    assert torch.isnan(ye[6])
