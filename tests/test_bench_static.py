"""The static performance report (``samic-fast bench --static``), no GPU needed.

Both tests run a child process without TRITON_INTERPRET (conftest sets it here; the static
report needs Triton's compiler). The counter is checked on purpose-written probe kernels whose
per-step counts are known (tests/_static_probe_kernels.py): a run-time-bounded loop that LLVM
unrolls by a run-time count (remainder loop), and a ``tl.range`` loop unrolled at compile time.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]

PROBE = r"""
import json, sys, torch
sys.path.insert(0, sys.argv[1])
import _static_probe_kernels as P
from samic_fast.bench.launch_capture import capture, compile_launch
from samic_fast.bench.sass_analysis import analyze_cubin
out = {}
for unrolled in (False, True):
    steps = 1024
    with capture(kernel_packages=("_static_probe_kernels",)) as launches:
        P.launch(torch.empty(steps, 32, device="meta"), torch.empty(32, device="meta"), steps, unrolled)
    assert len(launches) == 1, launches
    la = launches[0]
    rep, _ = analyze_cubin(compile_launch(la).asm["cubin"], steps)
    d = rep.to_dict()
    d.update(grid=la.grid, num_warps=la.num_warps, steps_arg=la.scalar_args())
    out["unrolled" if unrolled else "while"] = d
print(json.dumps(out))
"""


def _nvidia_backend_or_skip():
    try:
        from triton.backends import backends
    except Exception:  # pragma: no cover - very old triton
        pytest.skip("this triton has no backend registry")
    if "nvidia" not in backends:
        pytest.skip("triton's NVIDIA backend is not installed")


def _run(args, timeout=300, env_extra=None):
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env["OMP_NUM_THREADS"] = "1"
    env.update(env_extra or {})
    return subprocess.run(args, env=env, capture_output=True, text=True, timeout=timeout, cwd=ROOT)


def test_counter_on_probe_kernels_with_known_counts():
    _nvidia_backend_or_skip()
    proc = _run([sys.executable, "-c", PROBE, str(ROOT / "tests")])
    assert proc.returncode == 0, proc.stderr[-4000:]
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    for kind in ("while", "unrolled"):
        r = res[kind]
        # Launch captured as the runtime would bind it: one program of one warp.
        assert r["grid"] == [1, 1, 1] and r["num_warps"] == 1, r
        assert r["unroll_found"], r
        assert r["mufu_per_step"] == 3.0, (kind, r)  # three exp2 of 32 lanes: one MUFU.EX2 each
        assert r["global_loads_per_step"] == 1.0, (kind, r)
        assert r["shuffles_per_step"] == 0 and r["barriers_per_step"] == 0, r
        assert r["async_copies"] == 0 and r["spills"] == 0 and r["registers"] > 0, r
        # exp2 + its FMA per MUFU, the load and loop overhead: few instructions a step.
        assert 6 <= r["instructions_per_step"] <= 16, (kind, r)
        # The three exp2 are a dependent chain: at least 3 x (MUFU + FMA) latency per step.
        assert r["latency_cycles_per_step"] >= 3 * 24, (kind, r)
    # The run-time loop is unrolled by LLVM (with a remainder loop); the tl.range one further.
    assert res["while"]["unroll"] > 1 and res["unrolled"]["unroll"] >= 4


def test_bench_static_json_layout(tmp_path):
    _nvidia_backend_or_skip()
    out = tmp_path / "static.json"
    proc = _run([sys.executable, "-m", "samic_fast", "bench", "--static", "--shapes", "tiny",
                 "--arch", "tiny", "--json", str(out)])
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    assert "predicted, sm_90 static, no GPU" in proc.stdout
    report = json.loads(out.read_text())
    (shape,) = report["shapes"]
    assert {"name", "L", "D", "N", "floor_us", "predicted_us", "kernels"} <= shape.keys()
    assert (shape["name"], shape["L"], shape["D"], shape["N"]) == ("tiny", 256, 32, 16)
    assert 0 < shape["floor_us"] < shape["predicted_us"]
    assert shape["kernels"], shape
    for k in shape["kernels"]:
        assert {"name", "registers", "spills", "instructions_per_step", "mufu_per_step",
                "async_copies"} <= k.keys()
        assert k["name"].startswith("_") and k["registers"] > 0 and k["instructions_per_step"] > 0
        # Every pass evaluates exponentials: the scans one per state and step, the carry one per
        # chunk and element, spread over its warps (a fraction of one per warp and chunk).
        assert k["mufu_per_step"] > 0
        assert k["predicted_us"] > 0 and k["bound"] in ("issue", "mufu", "latency", "memory")
    # The whole network of --arch: encode and decode at both target sizes, against the targets.
    net = report["network"]
    assert [(r["size"], r["direction"]) for r in net] == [
        ("768x512", "encode"), ("768x512", "decode"), ("3840x2160", "encode"), ("3840x2160", "decode")]
    for r in net:
        assert r["arch"] == "tiny" and r["predicted_ms"] > 0 and r["met"] == (r["predicted_ms"] <= r["target_ms"])
        assert {"by_part_ms", "by_kind_ms", "launch_ms"} <= r["breakdown"].keys()
        assert r["if_scan_at_target_ms"]["graph"] < r["if_scan_at_target_ms"]["eager"]
        # The SASS launchers' real launches were captured: at least their Triton kernels
        # (cluster assignment 2 a call; scan order 2, or 3 above FUSE_BLOCKS pixel blocks).
        n = r["breakdown"]["launches_by_kind"]
        assert n["sass_scan"] > 0 and n["cluster_assign"] >= 2 and n["scan_order"] >= n["cluster_assign"]
    assert "tiny network encode at 768x512" in proc.stdout


# ---- in-process: the SASS parser and the model on hand-made inputs (no compiler) -------------

SASS_NESTED = """
        /*0000*/                   MOV R2, RZ ;
.L_x_0:
        /*0010*/                   MOV R3, RZ ;
.L_x_1:
        /*0020*/                   LDG.E R4, desc[UR4][R6.64] ;
        /*0030*/                   FMUL R5, R4, R4 ;
        /*0040*/                   MUFU.EX2 R5, R5 ;
        /*0050*/                   SHFL.BFLY PT, R8, R5, 0x1, 0x1f ;
        /*0060*/                   IADD3 R3, R3, 0x1, RZ ;
        /*0070*/                   ISETP.GE.AND P0, PT, R3, R9, PT ;
        /*0080*/              @!P0 BRA `(.L_x_1) ;
        /*0090*/                   IADD3 R2, R2, 0x1, RZ ;
        /*00a0*/                   ISETP.GE.AND P1, PT, R2, R10, PT ;
        /*00b0*/              @!P1 BRA `(.L_x_0) ;
        /*00c0*/                   EXIT ;
.L_x_2:
        /*00d0*/                   BRA `(.L_x_2);
        /*00e0*/                   NOP;
"""


def test_sass_parser_finds_the_innermost_loop_and_its_chain():
    from samic_fast.bench.sass_analysis import LATENCY, analyze_sass

    rep = analyze_sass(SASS_NESTED, {"REG": 12, "SHARED": 0})
    assert [(lp.instructions, lp.innermost) for lp in rep.loops] == [(11, False), (7, True)]
    assert rep.instructions_per_step == 7 and rep.unroll == 1 and rep.unroll_found
    assert (rep.mufu_per_step, rep.shuffles_per_step, rep.global_loads_per_step) == (1, 1, 1)
    assert rep.instructions_total == 14 and rep.instructions_outside_loop == 7  # NOP not counted
    # LDG -> FMUL -> MUFU -> SHFL is one dependent chain: its latencies add up.
    lat = dict(LATENCY)
    assert rep.latency_cycles_per_step >= lat["LDG"] + 4 + lat["MUFU"]
    # Outside the loop: two MOVs before it, the outer loop's tail after it; no load.
    assert 0 < rep.outside_loop_latency_cycles < lat["LDG"]
    # A prologue whose load feeds the loop's first value costs the load's latency.
    chained = SASS_NESTED.replace("MOV R3, RZ ;", "LDG.E R3, desc[UR4][R6.64] ;\n"
                                  "        /*0018*/                   FMUL R3, R3, R3 ;")
    assert analyze_sass(chained, {"REG": 12}).outside_loop_latency_cycles >= lat["LDG"] + 4


def _unrolled_loop(counter_lines: str) -> str:
    # A loop body of two steps (two MUFU), unrolled by two by the compiler, whose counter is
    # written as `counter_lines` (Triton 3.7: `R = R + 2`; Triton 3.6: renamed, `R5 = R4 + 2`).
    return f"""
.L_x_0:
        /*0010*/                   MUFU.EX2 R5, R6 ;
        /*0020*/                   IADD3 R20, R20, 0x1, RZ ;
        /*0030*/                   ISETP.GE.AND P1, PT, R20, R21, PT ;
        /*0040*/                   MUFU.EX2 R7, R8 ;
{counter_lines}
        /*00b0*/              @P0 BRA `(.L_x_0) ;
        /*00c0*/                   EXIT ;
"""


def test_unroll_detection_for_peeled_and_renamed_counters():
    """A 256-step chunk loop unrolled by two with one iteration peeled off (bound 254), its step
    counter compared against a constant; a per-step index moving by one (a bounds check) must
    not be taken for the loop counter, with the counter in place or renamed by ptxas."""
    from samic_fast.bench.sass_analysis import analyze_sass

    in_place = """        /*0050*/                   UISETP.GE.U32.AND UP0, UPT, UR16, 0xfe, UPT ;
        /*0060*/                   UIADD3 UR16, UR16, 0x2, URZ ;"""
    renamed = """        /*0050*/                   UISETP.GE.U32.AND UP0, UPT, UR4, 0xfe, UPT ;
        /*0060*/                   UIADD3 UR5, UR4, 0x2, URZ ;"""
    for counter in (in_place, renamed):
        rep = analyze_sass(_unrolled_loop(counter), {"REG": 40}, expected_steps=256)
        assert rep.unroll == 2 and rep.unroll_found, counter
        assert rep.mufu_per_step == 1
    # Without the bound compare only the per-step index remains: one step an iteration.
    rep = analyze_sass(_unrolled_loop(""), {"REG": 40}, expected_steps=256)
    assert rep.unroll == 1


def test_unroll_hints_come_from_the_launch():
    """When the SASS shows no counter evidence, a chunked pass's loop takes its ``UNROLL``
    steps an iteration and the carry's ``SEGS * SEG`` chunks; other kernels get no hint."""
    from samic_fast.bench import static

    class Launch:
        def __init__(self, **args):
            self.args = args

        def scalar_args(self):
            return self.args

    assert static.steps_per_iteration_hint(Launch(CHUNK=4, UNROLL=2)) == 2
    assert static.steps_per_iteration_hint(Launch(NCHUNK=300, SEGS=16, SEG=16)) == 256
    assert static.steps_per_iteration_hint(Launch(CHUNK=4)) is None
    assert static.steps_per_iteration_hint(Launch(BLOCK_D=32)) is None


def test_model_terms_and_shape_adapters():
    import math

    from samic_fast.bench import static
    from samic_fast.bench.hardware import H100
    from samic_fast.bench.sass_analysis import SassReport
    from samic_fast.bench.shapes import Shape

    class FakeLaunch:
        grid, num_warps, tensor_bytes = (264, 1, 1), 2, 3_000_000
        programs = 264

        def scalar_args(self):
            return {"CHUNK": 512, "BLOCK_D": 32}

    sass = SassReport(registers=64, stack_bytes=0, shared_bytes=0, local_bytes=0, spills=0,
                      instructions_total=300, async_copies=0, loops=[], instructions_per_step=200,
                      mufu_per_step=8, latency_cycles_per_step=1000, instructions_outside_loop=100)
    shape = Shape("x", 64, 64, 256)
    steps = static.steps_per_program(FakeLaunch(), shape)
    assert steps == 512  # min(CHUNK, L)
    p = static.predict_kernel(sass, FakeLaunch(), steps, H100)
    assert p.programs_per_sm == 2 and p.waves == 1 and p.warps_per_sm == 4
    clock_us = 1e6 / H100.clock_hz
    assert math.isclose(p.latency_us, (512 * 1000 + static.PROLOGUE_CYCLES) * clock_us)
    assert math.isclose(p.issue_us, 2 * 2 * (512 * 200 + 100) / 4 * clock_us)
    assert math.isclose(p.mufu_us, 2 * 2 * 512 * 8 * 8 / 4 * clock_us)
    assert p.bound == "latency" and math.isclose(p.predicted_us, p.latency_us + H100.launch_us)
    # 11 one-warp programs an SM: the busiest scheduler runs 3 of them (a warp stays on one).
    eleven = FakeLaunch()
    eleven.grid, eleven.programs, eleven.num_warps = (132 * 11, 1, 1), 132 * 11, 1
    p11 = static.predict_kernel(sass, eleven, steps, H100)
    assert math.isclose(p11.issue_us, 3 * (512 * 200 + 100) * clock_us)
    assert math.isclose(p11.mufu_us, 3 * 512 * 8 * 8 * clock_us)
    # A programmatic dependent launch costs the PDL launch instead.
    pdl = FakeLaunch()
    pdl.options = type("Options", (), {"launch_pdl": True})()
    assert math.isclose(static.predict_kernel(sass, pdl, steps, H100).predicted_us,
                        p.latency_us + H100.pdl_launch_us)
    assert H100.pdl_launch_us < H100.launch_us
    # The replayed latency of the code outside the loop replaces the constant where there is one.
    sass.outside_loop_latency_cycles = 700
    assert math.isclose(static.predict_kernel(sass, FakeLaunch(), steps, H100).latency_us,
                        (512 * 1000 + 700) * clock_us)
    # A loop unrolled completely: the per-step latency is the whole program's, prologue included.
    sass.outside_loop_latency_cycles = 0
    assert math.isclose(static.predict_kernel(sass, FakeLaunch(), steps, H100).latency_us,
                        512 * 1000 * clock_us)
    # Register-limited occupancy: 255 registers x 32 lanes x 8 warps leaves one program per SM.
    assert static.resident_programs(255, 0, 8) == 1 and static.resident_programs(32, 0, 1) == 32
    # The layout's SASS shapes may come as Shapes, objects, dicts or tuples.
    assert static._as_shape((96, 64, 256), "a") == Shape("a", 96, 64, 256, 16, 1)
    assert static._as_shape({"h": 48, "w": 32, "d_inner": 384, "d_state": 16}, "b").dim == 384
    with pytest.raises(ValueError):
        static._as_shape({"h": 48}, "c")


def test_gpu_scripts_parse_and_mamba_sources_generate(tmp_path):
    import tarfile

    for script in ("gpu_check.sh", "gpu_wheels.sh"):
        proc = subprocess.run(["bash", "-n", str(ROOT / "scripts" / script)], capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
    # A stand-in sdist with mamba-ssm's layout: the build script extracts it and writes the
    # forward-only translation units and the stubs for what it leaves out.
    src = tmp_path / "mamba_ssm-0.0" / "csrc" / "selective_scan"
    src.mkdir(parents=True)
    (src / "selective_scan.cpp").write_text("// binding\n")
    sdist = tmp_path / "mamba_ssm-0.0.tar.gz"
    with tarfile.open(sdist, "w:gz") as tar:
        tar.add(tmp_path / "mamba_ssm-0.0", arcname="mamba_ssm-0.0")
    build = tmp_path / "build"
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "build_mamba_sm90.py"), str(sdist),
                           str(build), "--sources-only"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "-gencode=arch=compute_90,code=sm_90" in proc.stdout and "compute_80" not in proc.stdout
    gen = sorted(p.name for p in (build / "gen").iterdir())
    assert gen == ["selective_scan_fwd_bf16_real.cu", "selective_scan_fwd_fp16_real.cu",
                   "selective_scan_fwd_fp32_real.cu", "selective_scan_not_built.cu"]
    fp32 = (build / "gen" / "selective_scan_fwd_fp32_real.cu").read_text()
    assert "template void selective_scan_fwd_cuda<float, float>" in fp32
    stubs = (build / "gen" / "selective_scan_not_built.cu").read_text()
    # Complex forward for 3 input types, backward for 3 x (real, complex): 9 specialisations.
    assert stubs.count("template<> void selective_scan_") == 9


def _body(lines: list[str]):
    from samic_fast.bench.sass_analysis import parse_sass

    text = "\n".join(f"        /*{16 * i:04x}*/                   {ln} ;" for i, ln in enumerate(lines))
    insns, _ = parse_sass(text)
    return insns


def test_steady_state_replay_charges_a_load_issued_late_for_the_next_iteration():
    from samic_fast.bench.sass_analysis import LATENCY, replay_latency

    lat = dict(LATENCY)
    # R4 is used at the top of the body and loaded for the next iteration at its end: one pass
    # takes R4 as ready; in the steady state the next iteration waits for the load.
    body = _body(["FMUL R5, R4, R4", "FADD R6, R5, R5", "LDG.E R4, desc[UR4][R2.64]"])
    assert replay_latency(body) < 10
    assert replay_latency(body, loop=True) >= lat["LDG"]
    # Loaded at the top and used in the same iteration: the same wait in both replays.
    early = _body(["LDG.E R4, desc[UR4][R2.64]", "FADD R6, R7, R7", "FMUL R5, R4, R4"])
    assert replay_latency(early, loop=True) == replay_latency(early) == lat["LDG"] + 1


def test_async_copy_waits_are_charged_at_the_depbar():
    from samic_fast.bench.sass_analysis import ASYNC_COPY_LATENCY, replay_latency

    # Copies committed at the end of one iteration, waited for at the top of the next.
    work = [f"FADD R{20 + i}, R7, R7" for i in range(200)]  # independent work, 200 cycles
    late = _body(["DEPBAR.LE SB0, 0x0", "LDS R5, [R7]", "FADD R6, R5, R5", *work,
                  "LDGSTS.E [R9], desc[UR4][R2.64]", "LDGDEPBAR"])
    assert replay_latency(late, loop=True) >= ASYNC_COPY_LATENCY
    assert replay_latency(late) < ASYNC_COPY_LATENCY  # one pass never waits
    # Committed before the work: the work hides part of the copy.
    early = _body(["DEPBAR.LE SB0, 0x0", "LDS R5, [R7]", "FADD R6, R5, R5",
                   "LDGSTS.E [R9], desc[UR4][R2.64]", "LDGDEPBAR", *work])
    assert replay_latency(early, loop=True) <= replay_latency(late, loop=True) - 150


PDL_SCRIPT = r"""
import json, os, sys, torch
from samic_fast.bench.launch_capture import capture
from samic_fast.kernels import sass_scan_fwd

def launches(L):
    m = lambda *s: torch.empty(*s, device="meta")
    perm = torch.empty(1, L, dtype=torch.int32, device="meta")
    with capture() as rec:
        sass_scan_fwd(m(1, L, 128), m(1, L, 128), m(128, 16), m(1, L, 16), m(1, L, 16), perm,
                      m(128), None, m(128), True)
    return [[la.name, bool(getattr(la.options, "launch_pdl", False)), la.scalar_args()["USE_PDL"]]
            for la in rec], rec

def gdc_order(launch):
    from samic_fast.bench.launch_capture import compile_launch
    ptx = compile_launch(launch).asm["ptx"]
    marks = [(ptx.find(op), name) for op, name in (("griddepcontrol.wait", "wait"),
             ("griddepcontrol.launch_dependents", "launch")) if op in ptx]
    return [name for _, name in sorted(marks)]

long, rec = launches(6144)
print(json.dumps({"long": long, "short": launches(2)[0], "order": [gdc_order(la) for la in rec]}))

"""


@pytest.mark.parametrize("pdl_env", ["1", "0"])
def test_dependent_kernels_use_programmatic_dependent_launch(pdl_env, tmp_path):
    """On an sm_90 device (as recorded) the three kernels of a chunked scan are programmatic
    dependent launches that wait in-kernel (pass 1 before its first load, and before it lets
    its dependents launch). A single-chunk scan is launched as usual, and SAMIC_FAST_PDL=0 turns
    it all off (the A/B switch of scripts/gpu_check.sh)."""
    _nvidia_backend_or_skip()
    script = tmp_path / "pdl.py"
    script.write_text(PDL_SCRIPT)
    env_pdl = {"SAMIC_FAST_PDL": pdl_env}
    proc = _run([sys.executable, str(script)], env_extra=env_pdl)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    on = pdl_env == "1"
    assert out["long"] == [["_sass_scan_chunk_state_kernel", on, on],
                           ["_sass_scan_carry_kernel", on, on],
                           ["_sass_scan_fwd_kernel", on, on]]
    assert out["short"] == [["_sass_scan_fwd_kernel", False, False]]
    # Pass 1 waits for the inputs' producer before it lets the carry launch: the carry and pass 3
    # read the op's inputs before their own waits. They may trigger first (pass 1 has waited).
    assert out["order"] == ([["wait", "launch"], ["launch", "wait"], ["launch", "wait"]] if on else
                            [[], [], []])


def test_pdl_ab_needs_a_gpu_and_says_so(capsys):
    from samic_fast.bench import pdl_ab

    assert pdl_ab.main(["--device", "cpu"]) == 2
    assert "needs a CUDA GPU" in capsys.readouterr().err


def test_calibration_chase_is_one_cycle_through_every_line(monkeypatch):
    """The load-latency probe of bench/calibrate.py: its table is one random cycle through all
    lines, and the chase kernel (run here in the interpreter) follows it step by step."""
    from samic_fast.bench import calibrate

    lines = 37
    nxt = calibrate.chase_table(lines, "cpu", seed=3)
    seen, i = set(), 0
    for _ in range(lines):
        assert i % calibrate.LINE == 0 and i not in seen
        seen.add(i)
        i = int(nxt[i])
    assert i == 0 and len(seen) == lines  # back at the start after exactly `lines` loads
    out = torch.empty(1, dtype=torch.int32)
    calibrate._chase_kernel[(1,)](nxt, out, 0, 5, num_warps=1)
    expect = 0
    for _ in range(5):
        expect = int(nxt[expect])
    assert int(out) == expect
    assert calibrate.main(["--device", "cpu"]) == 2
