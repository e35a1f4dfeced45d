"""``samic-fast bench --static``: what the fused SASS op will do on an H100, without a GPU.

For each benchmark shape the op's own launcher runs on ``meta`` tensors with every Triton launch
recorded instead of executed (:mod:`samic_fast.bench.launch_capture`); each distinct kernel
variant is compiled for sm_90 by Triton's compiler on this CPU and its cubin disassembled with
the tools Triton ships (:mod:`samic_fast.bench.sass_analysis`, which says how a step of the
steady-state loop is counted). Nothing about the kernels is hard-coded here: a redesigned
launcher is measured as it is.

Model (constants in :mod:`samic_fast.bench.hardware`, one place)
-----------------------------------------------------------------
For one launch of ``G`` programs of ``W`` warps whose loop runs ``S`` steps per program
(:func:`steps_per_program`), with ``I`` instructions, ``M`` MUFU operations and ``T`` cycles
of single-warp latency per step (per warp, from the SASS) and ``I0`` instructions outside the
loop:

- occupancy: resident programs per SM ``R`` from registers (256-register allocation units),
  shared memory, 64 warps and 32 programs per SM; the busiest SM runs ``P = ceil(G / 132)``
  programs in ``waves = ceil(P / R)``; ``sched = min(4, min(P, R) * W)`` schedulers have work;
- issue time: ``ceil(P * W / sched) * (S * I + I0)`` cycles (one instruction per scheduler per
  clock; a warp stays on one scheduler, so the busiest one has the average rounded up to whole
  warps: 11 one-warp programs on an SM put 3 warps on three of its schedulers, not 2.75);
- MUFU time: ``ceil(P * W / sched) * S * M * 8`` cycles (16 MUFU lanes per SM: a warp's MUFU
  instruction holds its quadrant's 4 lanes for 8 clocks);
- latency time: ``waves * (S * T + P)``: each program's steps are a dependent chain through
  the state, and a step cannot start before the previous one issued; ``P`` is the replayed
  latency of the code before and after the loop (``PROLOGUE_CYCLES`` if the SASS gave none; 0
  for a kernel whose loop is unrolled completely: its prologue is in ``S * T`` already);
- memory time: bytes of the launch's tensor arguments (each read or written once) at 3.0 TB/s;
- kernel time = max(issue, MUFU, latency) / clock, or the memory time if larger, plus the launch
  cost (``pdl_launch_us`` for a programmatic dependent launch, ``launch_us`` otherwise); the op's
  time is the sum over its launches (one stream). The largest term is the kernel's ``bound``.

Per shape: the ideal bytes (:func:`samic_fast.bench.shapes.bytes_moved`), the floor
(:func:`samic_fast.bench.hardware.floor_us`) and the target ``2 x max(floor, 5 us)``.

The whole network (encode and decode at 768x512 and 3840x2160) is predicted by
:mod:`samic_fast.bench.network_model`, whose SASS calls take the fused op's predictions from here
(shapes the report lacks are analysed on demand).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Callable, Optional, Sequence, TextIO

from .hardware import H100, GPU, floor_us, fused_target_us, scan_exponentials
from .shapes import SHAPES, Shape, bytes_moved, get_shape

#: Latency of a program's code outside its loop (loads of A/bias, the state, the final stores)
#: when the SASS gives none: the replay of that code (``outside_loop_latency_cycles``) is used
#: where there is one (sm_90, Triton 3.7.1: about 1,220 cycles for the passes, 800-850 for the
#: carry).
PROLOGUE_CYCLES = 1500
#: The op the targets are about: gather + scan + scatter, one custom op.
FUSED_OP = "samic_fast::sass_scan"
#: Stress shapes always in the report (bench/shapes.py).
STRESS_SHAPES = ("s1", "s2", "s3")


# ------------------------------------------------------------------------------------------------
# shapes
# ------------------------------------------------------------------------------------------------


def _as_shape(obj, name: str) -> Shape:
    """A :class:`Shape` from the layout's shape objects (a Shape, anything with
    height/width/dim[/nstate/batch], a dict of those, or a tuple ``(H, W, D[, N])``)."""
    if isinstance(obj, Shape):
        return obj
    if isinstance(obj, dict):
        get = obj.get
    elif isinstance(obj, (tuple, list)) and not hasattr(obj, "_fields"):  # a NamedTuple reads by name
        vals = dict(zip(("height", "width", "dim", "nstate"), obj))
        get = vals.get
    else:
        def get(k, default=None):
            return getattr(obj, k, default)
    h, w = get("height") or get("h"), get("width") or get("w")
    d = get("dim") or get("d_inner") or get("channels") or get("d") or get("D")
    if h is None or w is None or d is None:
        raise ValueError(f"cannot read a SASS shape from {obj!r}")
    n = get("nstate") or get("d_state") or get("n") or get("N") or 16
    return Shape(str(get("name") or name), int(h), int(w), int(d), int(n), int(get("batch") or 1))


def model_shapes() -> tuple[list[Shape], str]:
    """The model's SASS call shapes at 768x512 and 3840x2160 (``samic_fast.shapes``), or the
    Kodak shapes of ``bench/shapes.py`` until that module exists; the second value says which."""
    try:
        from samic_fast import shapes as layout  # the one home of SASS call shapes
    except ImportError:
        return [SHAPES[n] for n in SHAPES if n not in STRESS_SHAPES], "bench.shapes (samic_fast.shapes missing)"
    out: list[Shape] = []
    for tag, attr in (("768x512", "SASS_SHAPES_768x512"), ("3840x2160", "SASS_SHAPES_3840x2160")):
        for i, obj in enumerate(getattr(layout, attr, ())):
            s = _as_shape(obj, f"{tag}#{i}")
            if not s.name.startswith(tag):
                s = Shape(f"{tag}:{s.name}", s.height, s.width, s.dim, s.nstate, s.batch)
            out.append(s)
    return out, "samic_fast.shapes"


def default_shapes() -> tuple[list[Shape], str]:
    extra, source = model_shapes()
    seen, shapes = set(), []
    for s in [SHAPES[n] for n in STRESS_SHAPES] + extra:
        key = (s.batch, s.seqlen, s.dim, s.nstate)
        if key not in seen:
            seen.add(key)
            shapes.append(s)
    return shapes, source


# ------------------------------------------------------------------------------------------------
# capture, compile, analyse
# ------------------------------------------------------------------------------------------------


def fused_op_inputs(shape: Shape, dtype_name: str = "float32") -> tuple:
    """Meta tensors for the fused op as the model calls it (D skip and dt_bias, no z)."""
    import torch

    dtype = getattr(torch, dtype_name)
    b, L, d, n = shape.batch, shape.seqlen, shape.dim, shape.nstate
    meta = dict(device="meta")
    x = torch.empty(b, L, d, dtype=dtype, **meta)
    dt = torch.empty(b, L, d, dtype=dtype, **meta)
    A = torch.empty(d, n, dtype=torch.float32, **meta)
    Bm = torch.empty(b, L, n, dtype=dtype, **meta)
    Cm = torch.empty(b, L, n, dtype=dtype, **meta)
    perm = torch.empty(b, L, dtype=torch.int32, **meta)
    skip = torch.empty(d, dtype=torch.float32, **meta)
    bias = torch.empty(d, dtype=torch.float32, **meta)
    return x, dt, A, Bm, Cm, perm, skip, None, bias, True


def import_custom_ops() -> None:
    """Import whichever layer registers the custom ops (the kernels package, or the ops layer's
    samic_fast.custom_ops after issue 10's split): every candidate that exists."""
    import importlib

    for name in ("samic_fast.custom_ops", "samic_fast.ops", "samic_fast.kernels"):
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise


def capture_fused_op(shape: Shape):
    """Launches of the fused op at ``shape``, recorded on meta tensors."""
    from .launch_capture import capture, custom_op_impl

    import_custom_ops()
    impl = custom_op_impl(FUSED_OP)
    with capture() as launches:
        impl(*fused_op_inputs(shape))
    return launches


def steps_per_program(launch, shape: Shape) -> int:
    """Loop steps the busiest program runs (how the model scales the per-step counts):

    1. a ``CHUNK`` constexpr: ``min(CHUNK, L)`` (chunked scan passes);
    2. else an ``NCHUNK`` argument: ``NCHUNK - 1`` (a carry across chunk states, one step per
       chunk; ``SEGS * SEG`` constexprs say how many chunks one loop iteration takes, see
       :func:`steps_per_iteration_hint`);
    3. else every (token, channel block) once, split evenly over the programs:
       ``ceil(B * L * ceil(D / BLOCK_D) / programs)``.
    """
    args = launch.scalar_args()
    L = shape.seqlen
    if "CHUNK" in args:
        return int(min(args["CHUNK"], L))
    if "NCHUNK" in args:
        return max(0, int(args["NCHUNK"]) - 1)
    dblk = math.ceil(shape.dim / int(args["BLOCK_D"])) if "BLOCK_D" in args else 1
    return math.ceil(shape.batch * L * dblk / max(1, launch.programs))


def steps_per_iteration_hint(launch) -> Optional[int]:
    """Steps one loop iteration takes when the SASS shows no evidence (sass_analysis, step 4d):
    ``SEGS * SEG`` chunks for a carry that composes tiles of ``SEGS`` segments of ``SEG``
    chunks; ``UNROLL`` steps for a chunked pass that says how far its loop is unrolled."""
    args = launch.scalar_args()
    if "CHUNK" not in args and "NCHUNK" in args and "SEGS" in args and "SEG" in args:
        return int(args["SEGS"]) * int(args["SEG"])
    if "CHUNK" in args and "UNROLL" in args:
        # The launcher's own unroll factor (a loop of a few iterations whose counter ptxas
        # rotates into a register compare leaves no increment to read).
        return int(args["UNROLL"])
    return None


@dataclass
class KernelPrediction:
    programs_per_sm: int
    resident_per_sm: int
    waves: int
    warps_per_sm: int
    issue_us: float
    mufu_us: float
    latency_us: float
    memory_us: float
    launch_us: float
    predicted_us: float
    bound: str


def resident_programs(registers: int, shared: int, warps: int, gpu: GPU = H100) -> int:
    regs_per_warp = max(256, math.ceil(max(1, registers) * 32 / 256) * 256)
    by_regs = gpu.registers_per_sm // (regs_per_warp * warps)
    by_warps = gpu.max_warps_per_sm // warps
    by_smem = gpu.shared_bytes_per_sm // (shared + 1024) if shared else gpu.max_blocks_per_sm
    return max(1, min(gpu.max_blocks_per_sm, by_regs, by_warps, by_smem))


def predict_kernel(sass, launch, steps: int, gpu: GPU = H100) -> KernelPrediction:
    """The model of the module docstring for one launch."""
    w = launch.num_warps
    per_sm = math.ceil(launch.programs / gpu.sms)
    resident = resident_programs(sass.registers, sass.shared_bytes, w, gpu)
    waves = math.ceil(per_sm / resident)
    warps_on_sm = min(per_sm, resident) * w
    sched = max(1, min(gpu.schedulers_per_sm, warps_on_sm))
    ips = sass.instructions_per_step or 0.0
    mps = sass.mufu_per_step or 0.0
    lat = sass.latency_cycles_per_step or 0.0
    # A warp stays on one scheduler: the busiest one has the whole-warp ceiling of the average.
    warps_per_sched = math.ceil(per_sm * w / sched)
    issue = warps_per_sched * (steps * ips + sass.instructions_outside_loop)
    mufu = warps_per_sched * steps * mps * (32 / (gpu.mufu_lanes_per_sm / gpu.schedulers_per_sm))
    # The replayed prologue and epilogue (0 for a loop unrolled completely: the per-step replay
    # is the whole program's), or the constant when the SASS gave none.
    prologue = sass.outside_loop_latency_cycles
    if prologue is None:
        prologue = PROLOGUE_CYCLES
    latency = waves * (steps * lat + prologue)
    to_us = 1e6 / gpu.clock_hz
    terms = {"issue": issue * to_us, "mufu": mufu * to_us, "latency": latency * to_us,
             "memory": launch.tensor_bytes / gpu.hbm_bytes_per_s * 1e6}
    bound = max(terms, key=terms.get)
    pdl = bool(getattr(getattr(launch, "options", None), "launch_pdl", False))
    launch_us = gpu.pdl_launch_us if pdl else gpu.launch_us
    return KernelPrediction(per_sm, resident, waves, warps_on_sm, terms["issue"], terms["mufu"],
                            terms["latency"], terms["memory"], launch_us,
                            terms[bound] + launch_us, bound)


class Compiler:
    """Compiles and analyses each distinct kernel variant once per process."""

    def __init__(self, dump_dir: Optional[str] = None):
        self.cache: dict[str, tuple] = {}
        self.dump_dir = dump_dir

    def analyze(self, launch, steps: Optional[int] = None, unroll_hint: Optional[int] = None):
        from .launch_capture import compile_launch
        from .sass_analysis import analyze_cubin

        if launch.key not in self.cache:
            t0 = time.perf_counter()
            compiled = compile_launch(launch)
            cubin = compiled.asm["cubin"]
            report, text = analyze_cubin(cubin, steps, unroll_hint)
            shared = int(getattr(compiled.metadata, "shared", 0) or 0)
            report.shared_bytes = max(report.shared_bytes, shared)
            self.cache[launch.key] = (report, time.perf_counter() - t0, len(self.cache))
            if self.dump_dir:
                os.makedirs(self.dump_dir, exist_ok=True)
                base = os.path.join(self.dump_dir, f"{launch.name}-v{len(self.cache) - 1}")
                with open(base + ".sass", "w") as fh:
                    fh.write(text)
                with open(base + ".ptx", "w") as fh:
                    fh.write(compiled.asm.get("ptx", ""))
        return self.cache[launch.key]


def _kernel_entry(launch, shape: Shape, compiler: Compiler, gpu: GPU) -> dict:
    steps = steps_per_program(launch, shape)
    sass, compile_s, variant = compiler.analyze(launch, steps, steps_per_iteration_hint(launch))
    pred = predict_kernel(sass, launch, steps, gpu)
    r = lambda v, nd=1: None if v is None else round(float(v), nd)  # noqa: E731
    return {
        "name": launch.name,
        "variant": variant,
        "registers": sass.registers,
        "spills": sass.spills,
        "stack_bytes": sass.stack_bytes,
        "shared_bytes": sass.shared_bytes,
        "instructions_per_step": r(sass.instructions_per_step),
        "mufu_per_step": r(sass.mufu_per_step, 2),
        "shuffles_per_step": r(sass.shuffles_per_step, 2),
        "barriers_per_step": r(sass.barriers_per_step, 2),
        "global_loads_per_step": r(sass.global_loads_per_step, 2),
        "async_copies": sass.async_copies,
        "async_copies_per_step": r(sass.async_copies_per_step, 2),
        "latency_cycles_per_step": r(sass.latency_cycles_per_step),
        "outside_loop_latency_cycles": sass.outside_loop_latency_cycles,
        "unroll": sass.unroll,
        "unroll_found": sass.unroll_found,
        "instructions_outside_loop": sass.instructions_outside_loop,
        "instructions_total": sass.instructions_total,
        "loops": [{"instructions": lp.instructions, "unroll": lp.unroll, "innermost": lp.innermost,
                   "latency_cycles": lp.latency_cycles} for lp in sass.loops],
        "grid": list(launch.grid),
        "programs": launch.programs,
        "num_warps": launch.num_warps,
        "num_stages": launch.num_stages,
        "warps_per_sm": pred.warps_per_sm,
        "programs_per_sm": pred.programs_per_sm,
        "resident_programs_per_sm": pred.resident_per_sm,
        "waves": pred.waves,
        "steps_per_program": steps,
        "bytes": launch.tensor_bytes,
        "constexprs": {k: v for k, v in launch.scalar_args().items()
                       if launch.signature.get(k) == "constexpr"},
        "terms_us": {"issue": r(pred.issue_us, 2), "mufu": r(pred.mufu_us, 2),
                     "latency": r(pred.latency_us, 2), "memory": r(pred.memory_us, 2),
                     "launch": pred.launch_us},
        "bound": pred.bound,
        "predicted_us": r(pred.predicted_us, 2),
        "compile_s": r(compile_s, 2),
    }


def analyze_shape(shape: Shape, compiler: Compiler, gpu: GPU = H100) -> dict:
    nbytes = bytes_moved("sass_scan", shape)
    exps = scan_exponentials(shape.batch, shape.seqlen, shape.dim, shape.nstate)
    floor, floor_by = floor_us(nbytes, exps, gpu)
    entry = {
        "name": shape.name, "L": shape.seqlen, "D": shape.dim, "N": shape.nstate,
        "batch": shape.batch, "height": shape.height, "width": shape.width,
        "op": FUSED_OP, "dtype": "float32",
        "bytes": nbytes, "exponentials": exps,
        "floor_us": round(floor, 2), "floor_bound": floor_by,
        "target_us": round(fused_target_us(floor), 2),
    }
    try:
        launches = capture_fused_op(shape)
        kernels = [_kernel_entry(la, shape, compiler, gpu) for la in launches]
    except Exception as exc:  # one shape's failure is reported, not fatal
        entry.update(predicted_us=None, kernels=[], error=f"{type(exc).__name__}: {exc}"[:400])
        return entry
    total = sum(k["predicted_us"] for k in kernels)
    entry.update(
        predicted_us=round(total, 2),
        predicted_over_floor=round(total / floor, 2) if floor else None,
        target_met=total <= entry["target_us"],
        launches=len(kernels),
        kernels=kernels,
    )
    return entry


def fused_scan_us(entries: Sequence[dict], compiler: Compiler, gpu: GPU = H100):
    """``scan_us(L, D, N) -> (kernel_us, launches)`` for the network model: the fused op's
    predicted kernel time without its launch terms (the network model adds its own), from the
    report's batch-1 shapes, analysing any other shape on first use."""
    cache = {(e["L"], e["D"], e["N"]): e for e in entries if e.get("batch", 1) == 1}

    def scan_us(L: int, D: int, N: int) -> tuple[float, int]:
        if (L, D, N) not in cache:
            cache[(L, D, N)] = analyze_shape(Shape(f"net L={L} D={D}", 1, L, D, N), compiler, gpu)
        e = cache[(L, D, N)]
        if e.get("error"):
            raise RuntimeError(f"fused op at L={L} D={D} N={N}: {e['error']}")
        return sum(k["predicted_us"] - k["terms_us"]["launch"] for k in e["kernels"]), len(e["kernels"])

    return scan_us


def target_scan_us(gpu: GPU = H100):
    """``scan_us`` of a fused op that meets its target ``2 x max(floor, 5 us)`` in one launch
    (for the network's what-if column); nothing is compiled."""
    def scan_us(L: int, D: int, N: int) -> tuple[float, int]:
        shape = Shape("what-if", 1, L, D, N)
        floor, _ = floor_us(bytes_moved("sass_scan", shape), scan_exponentials(1, L, D, N), gpu)
        return fused_target_us(floor) - gpu.launch_us, 1

    return scan_us


def network_section(arch: str, scan_us, gpu: GPU = H100) -> list[dict]:
    """The report's ``"network"`` rows for ``arch`` (an error row if the walk fails)."""
    from samic_fast.config import get_config

    from .network_model import predict_network

    try:
        return predict_network(get_config(arch), arch, scan_us, gpu=gpu, what_if_scan_us=target_scan_us(gpu),
                               capture_sass=True)
    except Exception as exc:  # reported, not fatal: the per-shape report still stands
        return [{"arch": arch, "error": f"{type(exc).__name__}: {exc}"[:400]}]


def build_report(shapes: Sequence[Shape], shape_source: str = "", dump_dir: Optional[str] = None,
                 log: Callable[[str], None] = lambda s: None, gpu: GPU = H100,
                 arch: Optional[str] = "samic") -> dict:
    """The static report; ``arch`` (a name in ``samic_fast.config.ARCHS``, None: no network
    section) selects the network the ``"network"`` rows predict."""
    from .launch_capture import ARCH, triton_version

    compiler = Compiler(dump_dir)
    out = []
    for s in shapes:
        t0 = time.perf_counter()
        out.append(analyze_shape(s, compiler, gpu))
        log(f"{s.describe()}: {time.perf_counter() - t0:.1f} s")
    network = []
    if arch:
        t0 = time.perf_counter()
        network = network_section(arch, fused_scan_us(out, compiler, gpu), gpu)
        log(f"network ({arch}): {time.perf_counter() - t0:.1f} s")
    return {
        "kind": "predicted, sm_90 static, no GPU",
        "date": time.strftime("%Y-%m-%d", time.gmtime()),
        "triton": triton_version(),
        "arch": f"sm_{ARCH}",
        "model": {"gpu": gpu.name, "sms": gpu.sms, "schedulers_per_sm": gpu.schedulers_per_sm,
                  "clock_ghz": gpu.clock_hz / 1e9, "hbm_tb_s": gpu.hbm_bytes_per_s / 1e12,
                  "mufu_per_s": gpu.mufu_per_s, "launch_us": gpu.launch_us,
                  "prologue_cycles": PROLOGUE_CYCLES},
        "shape_source": shape_source,
        "shapes": out,
        "network": network,
    }


# ------------------------------------------------------------------------------------------------
# text
# ------------------------------------------------------------------------------------------------


def _missed_by(ratio: float) -> str:
    """How far over its target a prediction is: a percentage when close (1.0x hides 0.2 %)."""
    return f"missed by {100 * (ratio - 1):.1f} %" if ratio < 1.1 else f"missed by {ratio:.2f}x"


def _fmt(v, spec="{:.1f}") -> str:
    return "-" if v is None else spec.format(v)


def format_report(report: dict) -> str:
    from .report import md_table

    lines = [f"## Static report: {report['kind']} ({report['arch']}, triton {report['triton']}, "
             f"{report['date']})", ""]
    m = report["model"]
    lines.append(f"Model: {m['sms']} SMs x {m['schedulers_per_sm']} schedulers at {m['clock_ghz']:.3f} GHz, "
                 f"{m['hbm_tb_s']:.1f} TB/s, {m['mufu_per_s'] / 1e12:.2f} T MUFU ops/s, "
                 f"{m['launch_us']:g} us per launch. Shapes: stress s1-s3 + {report['shape_source']}.")
    lines.append("")
    rows = []
    for s in report["shapes"]:
        met = s.get("target_met")
        rows.append([s["name"], f"{s['L']:,}", str(s["D"]), str(s["N"]), f"{s['bytes'] / 1e6:.1f}",
                     f"{s['floor_us']:.1f} ({s['floor_bound']})", _fmt(s.get("predicted_us")),
                     _fmt(s.get("predicted_over_floor"), "{:.1f}x"), f"{s['target_us']:.1f}",
                     "error" if s.get("error") else ("met" if met else "missed")])
    lines.append(md_table(["shape", "L", "D", "N", "ideal MB", "floor us", "predicted us", "/floor",
                           "target us", "target"], rows, "lrrrrrrrrl"))
    lines.append("")
    krows = []
    for s in report["shapes"]:
        if s.get("error"):
            krows.append([s["name"], "error: " + s["error"]] + [""] * 13)
        for k in s["kernels"]:
            krows.append([s["name"], k["name"], "x".join(map(str, k["grid"])), str(k["num_warps"]),
                          str(k["warps_per_sm"]), str(k["registers"]), str(k["spills"]),
                          str(k["shared_bytes"]), _fmt(k["instructions_per_step"]),
                          _fmt(k["mufu_per_step"], "{:.2f}"),
                          f"{_fmt(k['shuffles_per_step'], '{:g}')}/{_fmt(k['barriers_per_step'], '{:g}')}",
                          str(k["async_copies"]), _fmt(k["latency_cycles_per_step"], "{:.0f}"),
                          f"{k['steps_per_program']}",
                          f"{_fmt(k['predicted_us'])} ({k['bound']})"])
    lines.append(md_table(["shape", "kernel", "grid", "warps", "warps/SM", "regs", "spills", "smem B",
                           "instr/step", "MUFU/step", "shfl/bar per step", "async", "latency cyc/step",
                           "steps", "predicted us (bound)"], krows, "llrrrrrrrrrrrrl"))
    lines.append("")
    net = report.get("network") or []
    if net:
        from .network_model import format_network

        lines.append(format_network([r for r in net if not r.get("error")]))
        lines += [f"network ({r['arch']}): error: {r['error']}" for r in net if r.get("error")]
        lines.append("")
    lines.append("Targets from the predictions (fused op <= 2 x max(floor, 5 us); whole network as coded, "
                 "eager); mamba-ssm CUDA and reference-path targets need a GPU (scripts/gpu_check.sh).")
    trows = []
    for s in report["shapes"]:
        p = s.get("predicted_us")
        status = ("met" if s.get("target_met") else
                  _missed_by(p / s["target_us"]) if p is not None else "not predicted")
        trows.append([f"fused SASS op at {s['name']}", f"<= {s['target_us']:.1f} us",
                      _fmt(p), status])
    for r in net:
        if r.get("error") or r.get("target_ms") is None:
            continue
        p = r["predicted_ms"] * 1e3
        status = "met" if r["met"] else _missed_by(r["predicted_ms"] / r["target_ms"])
        trows.append([f"{r['arch']} network {r['direction']} at {r['size']}", f"<= {r['target_ms'] * 1e3:.0f} us",
                      _fmt(p, "{:.0f}"), status])
    lines.append(md_table(["target", "goal", "predicted us", "status"], trows, "llrl"))
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------------------
# entry points
# ------------------------------------------------------------------------------------------------


def parse_static_shapes(spec: Optional[str]) -> tuple[list[Shape], str]:
    if not spec:
        return default_shapes()
    extra, source = model_shapes()
    by_name = {s.name: s for s in extra}
    out = []
    for name in (n.strip() for n in spec.split(",") if n.strip()):
        out.append(by_name[name] if name in by_name else get_shape(name))
    return out, source


def run(shapes_spec: Optional[str] = None, json_out: Optional[str] = None, dump_dir: Optional[str] = None,
        out: TextIO = sys.stdout, quiet: bool = False, arch: Optional[str] = "samic") -> int:
    """Print the static report (and write JSON). Runs itself in a child process when this one has
    Triton's interpreter on (the compiler is needed)."""
    if os.environ.get("TRITON_INTERPRET", "0") not in ("", "0"):
        env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
        cmd = [sys.executable, "-m", "samic_fast.bench.static"]
        for flag, val in (("--shapes", shapes_spec), ("--json", json_out), ("--dump", dump_dir)):
            if val:
                cmd += [flag, val]
        if quiet:
            cmd.append("--quiet")
        cmd += ["--arch", arch] if arch else ["--no-network"]
        done = subprocess.run(cmd, env=env, capture_output=True, text=True)
        out.write(done.stdout)
        sys.stderr.write(done.stderr)
        return done.returncode
    try:
        shapes, source = parse_static_shapes(shapes_spec)
    except ValueError as exc:
        from samic_fast.errors import SamicError

        raise SamicError(f"--shapes: {exc}") from None
    log = (lambda s: None) if quiet else (lambda s: print(f"[static] {s}", file=sys.stderr, flush=True))
    if arch:
        from samic_fast.config import ARCHS

        if arch not in ARCHS:
            from samic_fast.errors import SamicError

            raise SamicError(f"--arch: unknown architecture {arch!r} (known: {', '.join(ARCHS)})")
    report = build_report(shapes, source, dump_dir, log, arch=arch)
    out.write(format_report(report))
    if json_out:
        tmp = json_out + ".tmp"
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(report, fh, indent=1)
        os.replace(tmp, json_out)
        out.write(f"\nwrote {json_out}\n")
    ok = all(not s.get("error") for s in report["shapes"] + report["network"])
    return 0 if ok else 1


def main(argv: Optional[list[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="python -m samic_fast.bench.static", description=__doc__.splitlines()[0])
    p.add_argument("--shapes", help="comma-separated shapes (default: s1,s2,s3 and the model's SASS shapes)")
    p.add_argument("--json", help="write the report as JSON to this file")
    p.add_argument("--dump", help="write each kernel variant's SASS and PTX to this folder")
    p.add_argument("--arch", default="samic", help="architecture whose whole network is predicted")
    p.add_argument("--no-network", action="store_true", help="no whole-network section")
    p.add_argument("--quiet", action="store_true")
    a = p.parse_args(argv)
    from samic_fast.errors import SamicError

    try:
        return run(a.shapes, a.json, a.dump, quiet=a.quiet, arch=None if a.no_network else a.arch)
    except SamicError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
