"""Whole-network H100 time of ``compress`` / ``decompress``, predicted without a GPU.

The network runs on the ``meta`` device (shapes only, milliseconds) under a dispatch mode that
records every ATen op that would launch a kernel (views and allocations launch none), per part of
the network. The SASS ops are not run: each call records its three stages as pseudo-ops.

Model (constants in :mod:`samic_fast.bench.hardware`)
-----------------------------------------------------
- **ATen op** (convolution, matmul, norm, elementwise, attention products, copies, SVD): a
  roofline, ``max(FLOPs / peak, bytes / 3.0 TB/s)``, plus one launch. FLOPs are
  ``torch.utils.flop_counter``'s per-op rules (2 per multiply-add; ops it has no rule for, the
  elementwise ones, count 0 and are bytes-bound); bytes are every tensor input (weights
  included) and output, each read or written once, at its dtype (fp32 here).
- **Peak:** :attr:`GPU.fp32_flops_per_s` (CUDA cores, no tensor cores) or
  :attr:`GPU.tf32_flops_per_s` (dense TF32 tensor cores). Precision variants:
  ``as_coded``: what the codec does: convolutions of g_a, h_a and g_s at TF32 (cuDNN's default),
  everything inside ``SAMIC._exact_float32`` (h_s and the context model) and every matmul
  (PyTorch's default) at FP32; ``fp32``: nothing on tensor cores; ``tf32``: every convolution
  and matmul at TF32 (what allowing TF32 while coding would give; the codec forbids it).
- **SVD** (SVD-RRM, ``torch.linalg.svd`` of a ``C x h*w`` matrix): ``6·m·n·k + 20·k³`` FLOPs
  (Golub and Van Loan's thin SVD, ``k = min(m, n)``) but at least ``k`` dependent steps of
  :data:`SVD_STEP_US` each: cuSOLVER's bidiagonalisation and Jacobi sweeps are sequential in
  the columns, with small kernels per step. This term is the least certain one.
- **SASS calls:** cluster assignment and scan order run their custom ops' real launchers on meta
  tensors with Triton's launches recorded, not run (``capture_sass``, as the static report does;
  needs Triton's compiler, not its interpreter): each Triton kernel is bytes-bound on its tensor
  arguments, and the launchers' own ATen ops (positional tables, sums, copies) count as above.
  Without the compiler (unit tests) each is one bytes-bound op of :data:`CLUSTER_ASSIGN_LAUNCHES`
  / :data:`SCAN_ORDER_LAUNCHES` launches (read from kernels/). The fused scan takes the static report's
  per-shape prediction (its kernels' time without their launch term, plus its launch count at
  this model's launch cost), passed in as ``scan_us(L, D, N) -> (kernel_us, launches)``.
- **Launch cost:** per kernel, :data:`~samic_fast.bench.hardware.EAGER_LAUNCH_US` for PyTorch eager
  (each op's CPU dispatch plus ``cudaLaunchKernel``; a batch-1 codec of many small ops is
  host-bound when the GPU work is shorter) or :data:`~samic_fast.bench.hardware.GRAPH_LAUNCH_US`
  for the same kernels replayed as one CUDA graph.
- **Layouts as on CUDA:** meta kernels differ from CUDA's in two ways that change the launch
  count, and the recorder corrects both: a convolution of a channels_last input returns a
  channels_last output (cuDNN's choice; meta returns contiguous), so the copies and views after it
  are CUDA's; and ``native_layer_norm`` of a non-contiguous input records the copy its CUDA kernel
  makes first (``expect_contiguous``).
- **Attention** (the context model's window attention): one fused kernel, as CUDA's
  memory-efficient ``scaled_dot_product_attention`` (see :func:`fused_attention`).
- **Steady state:** the walk records the second of two passes, so per-resolution caches are warm.
- The parts run one after another on one stream; a direction's time is the sum of its parts.

Directions (:meth:`samic_fast.model.SAMIC.compress` / ``decompress``): encode = g_a, SVD-RRM,
h_a, h_s, context model; decode = h_s, context model, g_s. The context model runs as in
training's forward pass: per slice the channel contexts, then the anchor and the non-anchor pass
(each its own sequence of launches). Left out: entropy coding (rANS on the CPU), the hyperprior's
``EntropyBottleneck`` coding of z, the guard-band bookkeeping, and the host syncs that
``ContextEntropyModel.code`` makes per pass to hand symbols to the CPU coder.
"""

from __future__ import annotations

import contextlib
import math
from collections import defaultdict
from dataclasses import dataclass
from typing import Callable, Iterator, Optional
from unittest import mock

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten
from torch.utils.flop_counter import flop_registry

from .hardware import (EAGER_LAUNCH_US, GRAPH_LAUNCH_US, H100, GPU, TARGET_4K_MS, TARGET_DEC_MS,
                       TARGET_ENC_MS)

#: Microseconds per dependent step (column) of a GPU SVD; an assumption, to be measured.
SVD_STEP_US = 20.0
#: Launches per call of the launchers when they are not captured (the assignment kernel and its
#: integer sums; the positional tables are cached per resolution; hist, start, scatter: at most,
#: small images skip hist, which the captured launchers show).
CLUSTER_ASSIGN_LAUNCHES = 2
SCAN_ORDER_LAUNCHES = 3
#: Parts of the network in call order, and which run in each direction.
PARTS = ("g_a", "svd_rrm", "h_a", "h_s", "context", "g_s")
DIRECTIONS = {"encode": ("g_a", "svd_rrm", "h_a", "h_s", "context"),
              "decode": ("h_s", "context", "g_s")}
#: Parts whose convolutions run outside ``SAMIC._exact_float32`` (cuDNN may use TF32 there).
TF32_CONV_PARTS = ("g_a", "h_a", "g_s")
#: The images the targets are about: (name, height, width as the network sees them (padded)).
SIZES = {"768x512": (512, 768), "3840x2160": (2176, 3840)}
TARGETS_MS = {("768x512", "encode"): TARGET_ENC_MS, ("768x512", "decode"): TARGET_DEC_MS,
              ("3840x2160", "encode"): TARGET_4K_MS, ("3840x2160", "decode"): TARGET_4K_MS}
PRECISIONS = ("as_coded", "fp32", "tf32")
LAUNCH_MODES = {"eager": EAGER_LAUNCH_US, "graph": GRAPH_LAUNCH_US}
#: ATen ops that launch no kernel (besides views, which ``OpOverload.is_view`` flags).
_NO_KERNEL = {"empty", "empty_like", "new_empty", "empty_strided", "new_empty_strided", "detach",
              "alias", "lift_fresh", "_local_scalar_dense", "_unsafe_view"}
_CONV = {"convolution", "_convolution", "cudnn_convolution", "convolution_overrideable"}
#: ATen ops whose CUDA kernels copy a non-contiguous input first (layer_norm_cuda).
_CONTIGUOUS_INPUT = {"native_layer_norm"}
_MATMUL = {"mm", "addmm", "bmm", "baddbmm"}

ScanUs = Callable[[int, int, int], tuple[float, int]]


@dataclass
class Op:
    """One recorded kernel (or SASS stage): where it runs, its work and its launches."""

    part: str
    name: str
    kind: str  # "conv", "matmul", "svd", "sass_scan", "cluster_assign", "scan_order", "other"
    flops: float = 0.0
    nbytes: float = 0.0
    launches: int = 1
    kernel_us: Optional[float] = None  # fixed kernel time (the fused scan's static prediction)
    serial_us: float = 0.0  # a dependent-step lower bound (the SVD)

    def time_us(self, precision: str, launch_us: float, gpu: GPU = H100) -> float:
        if self.kernel_us is not None:
            work = self.kernel_us
        else:
            tensor_core = (self.kind == "conv" and (precision == "tf32" or (
                precision == "as_coded" and self.part in TF32_CONV_PARTS))) or (
                self.kind == "matmul" and precision == "tf32")
            peak = gpu.tf32_flops_per_s if tensor_core else gpu.fp32_flops_per_s
            work = max(self.flops / peak, self.nbytes / gpu.hbm_bytes_per_s) * 1e6
            work = max(work, self.serial_us)
        return work + self.launches * launch_us


def _nbytes(t: torch.Tensor) -> int:
    """Bytes a kernel touches in ``t``: its elements, or its storage if smaller (expanded)."""
    dense = t.numel() * t.element_size()
    try:
        return min(dense, t.untyped_storage().nbytes())
    except (RuntimeError, NotImplementedError):
        return dense


def _channels_last(t: torch.Tensor) -> bool:
    """Whether ``t`` is channels_last and not also contiguous (``suggest_memory_format``)."""
    return (isinstance(t, torch.Tensor) and t.dim() == 4 and not t.is_contiguous()
            and t.is_contiguous(memory_format=torch.channels_last))


def svd_flops(m: int, n: int) -> float:
    k = min(m, n)
    return 6.0 * max(m, n) * k * k + 20.0 * k ** 3


class OpRecorder(TorchDispatchMode):
    """Records each kernel-launching ATen op into ``ops`` under the current ``part``."""

    def __init__(self) -> None:
        super().__init__()
        self.ops: list[Op] = []
        self.part = "?"
        self.kind: Optional[str] = None  # set while a SASS stage's launcher runs
        self.paused = 0

    @contextlib.contextmanager
    def pause(self) -> Iterator[None]:
        self.paused += 1
        try:
            yield
        finally:
            self.paused -= 1

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        name = func.overloadpacket.__name__
        if name in _CONV and _channels_last(args[0]):
            # Meta convolutions always return contiguous tensors; CUDA's (cuDNN, depthwise
            # included) return channels_last for a channels_last input, and every copy or view
            # downstream depends on it. (Ops called here are not recorded: the mode is off.)
            out = out.contiguous(memory_format=torch.channels_last)
        if self.paused or func.is_view or name in _NO_KERNEL:
            return out
        if name in _CONTIGUOUS_INPUT and not args[0].is_contiguous():
            # A copy the CUDA kernel makes inside the op (``input.expect_contiguous()``), which the
            # meta kernel does not: one more launch, reading and writing the input.
            self.ops.append(Op(self.part, f"{name} (input copy)", self.kind or "other",
                               nbytes=2 * args[0].numel() * args[0].element_size()))
        ins = [t for t in tree_flatten((args, kwargs))[0] if isinstance(t, torch.Tensor)]
        outs = [t for t in tree_flatten(out)[0] if isinstance(t, torch.Tensor)]
        nbytes = sum(map(_nbytes, ins)) + sum(map(_nbytes, outs))
        kind = self.kind or ("conv" if name in _CONV else "matmul" if name in _MATMUL else "other")
        op = Op(self.part, name, kind, nbytes=nbytes)
        if func.overloadpacket in flop_registry:
            op.flops = float(flop_registry[func.overloadpacket](*args, **kwargs, out_val=out))
        elif name in ("_linalg_svd", "linalg_svd", "svd"):
            m, n = ins[0].shape[-2:]
            batch = math.prod(ins[0].shape[:-2])
            op.kind, op.flops, op.serial_us = "svd", batch * svd_flops(m, n), min(m, n) * SVD_STEP_US
        self.ops.append(op)
        return out


def _captured(rec: OpRecorder, kind: str, qualname: str, *args) -> None:
    """Run custom op ``qualname``'s launcher on meta ``args``: its ATen ops are recorded as
    ``kind``, its Triton launches captured and recorded as bytes-bound kernels."""
    from .launch_capture import capture, custom_op_impl
    from .static import import_custom_ops

    import_custom_ops()
    rec.kind = kind
    try:
        with capture() as launches:
            custom_op_impl(qualname)(*args)
    finally:
        rec.kind = None
    rec.ops += [Op(rec.part, la.name, kind, nbytes=la.tensor_bytes) for la in launches]


@contextlib.contextmanager
def recorded_sass(rec: OpRecorder, scan_us: ScanUs, capture_sass: bool = False) -> Iterator[None]:
    """SASS calls record cluster assignment, scan order and the fused scan (see the module
    docstring); the semantic branch and the projections run (and are recorded) as usual."""
    from samic_fast import ops
    from samic_fast.sass import SASS

    def scan_order(self, x):
        b, h, w, _ = x.shape
        self.semantic(x.permute(0, 3, 1, 2))
        cfg, L = self.config, h * w
        if rec.paused:
            pass
        elif capture_sass:
            meta = dict(device="meta")
            ca_args = [torch.empty(b, cfg.c_sem, h, w, **meta), self.centers.detach().to("meta")]
            if len(torch.ops.samic_fast.cluster_assign.default._schema.arguments) == 4:
                # The kernel takes the positional tables (issue 10: kernels/ import nothing). The
                # ops layer builds them once per resolution and caches them
                # (custom_ops._positional_tables): no launches per call, so none recorded here.
                from samic_fast.ref import positional_tables

                with rec.pause():
                    ca_args += positional_tables(h, w, cfg.c_sem, "meta")
            _captured(rec, "cluster_assign", "samic_fast::cluster_assign", *ca_args)
            k = cfg.num_clusters
            _captured(rec, "scan_order", "samic_fast::scan_order", torch.empty(b, L, dtype=torch.int32, **meta),
                      *(torch.empty(b, k, dtype=torch.int64, **meta) for _ in range(3)))
        else:
            feat_bytes, idx_bytes = b * L * cfg.c_sem * 4, b * L * 4
            rec.ops.append(Op(rec.part, "cluster_assign", "cluster_assign",
                              flops=2.0 * b * L * cfg.num_clusters * cfg.c_sem,
                              nbytes=feat_bytes + idx_bytes, launches=CLUSTER_ASSIGN_LAUNCHES))
            # hist reads cluster, scatter reads it again and writes perm and inv.
            rec.ops.append(Op(rec.part, "scan_order", "scan_order", nbytes=4 * idx_bytes,
                              launches=SCAN_ORDER_LAUNCHES))
        with rec.pause():
            return torch.arange(L, device=x.device).expand(b, L), None

    def sass_scan(x, dt, A, Bm, Cm, perm, *args, **kwargs):
        b, L, d = x.shape
        if not rec.paused:
            us, launches = scan_us(b * L, d, A.shape[-1])
            rec.ops.append(Op(rec.part, f"sass_scan L={L} D={d}", "sass_scan", launches=launches,
                              kernel_us=us))
        with rec.pause():
            return torch.empty_like(x)

    with mock.patch.object(SASS, "scan_order", scan_order), mock.patch.object(ops, "sass_scan", sass_scan):
        yield


@contextlib.contextmanager
def fused_attention(rec: OpRecorder) -> Iterator[None]:
    """``F.scaled_dot_product_attention`` as the one kernel CUDA runs (memory-efficient attention
    takes fp32 and an additive mask), not the ten-op math path that meta tensors decompose into:
    ``4 * B * heads * Lq * Lk * d`` FLOPs, q, k, v, the mask and the output read or written once."""
    import torch.nn.functional as F

    def attention(q, k, v, attn_mask=None, *args, **kwargs):
        with rec.pause():
            out = q.new_empty(*q.shape[:-1], v.shape[-1])
        if not rec.paused:
            tensors = [t for t in (q, k, v, attn_mask, out) if t is not None]
            flops = 2.0 * math.prod(q.shape[:-1]) * k.shape[-2] * (q.shape[-1] + v.shape[-1])
            rec.ops.append(Op(rec.part, "scaled_dot_product_attention", "attention", flops=flops,
                              nbytes=sum(map(_nbytes, tensors))))
        return out

    with mock.patch.object(F, "scaled_dot_product_attention", attention):
        yield


def walk(config, height: int, width: int, scan_us: ScanUs, capture_sass: bool = False) -> list[Op]:
    """Every kernel of one pass through each part of the network on a ``height x width`` image
    (``capture_sass``: the SASS launchers' real launches, needs Triton's compiler).

    Steady state: one unrecorded pass runs first, so what the modules cache per resolution in
    eval (``A = -exp(A_log)``, the window attention's masks) is cached, as in a codec that has
    coded one image before."""
    from samic_fast.complexity import meta_model

    m = meta_model(config)
    rec = OpRecorder()
    x = torch.zeros(1, 3, height, width, device="meta")

    def one_pass() -> None:
        rec.part = "g_a"
        y = m.g_a(x)
        rec.part = "svd_rrm"
        y = m.svd_rrm(y)
        rec.part = "h_a"
        z = m.h_a(y)
        with rec.pause():  # the hyperprior's coding of z is entropy coding
            z_hat = torch.round(z)
        rec.part = "h_s"
        psi = m.h_s(z_hat)
        rec.part = "context"
        with rec.pause():
            ones = torch.ones_like(y)
        y_hat, _ = m.context(y, psi, lambda v, scales, means=None: (v, ones))
        rec.part = "g_s"
        m.g_s(y_hat)

    with torch.no_grad(), recorded_sass(rec, scan_us, capture_sass), fused_attention(rec), rec:
        with rec.pause():
            one_pass()
        one_pass()
    return rec.ops


def summarize(ops: list[Op], direction: str, precision: str = "as_coded", launch_us: float = EAGER_LAUNCH_US,
              gpu: GPU = H100) -> dict:
    """Predicted time of ``direction`` (ms), its launch count and its time by part and by kind."""
    parts = DIRECTIONS[direction]
    by_part: dict = defaultdict(float)
    by_kind: dict = defaultdict(float)
    launches_by_kind: dict = defaultdict(int)
    launches = 0
    for op in ops:
        if op.part in parts:
            t = op.time_us(precision, launch_us, gpu)
            by_part[op.part] += t
            by_kind[op.kind] += t
            launches_by_kind[op.kind] += op.launches
            launches += op.launches
    total = sum(by_part.values())
    return {"ms": total / 1e3, "launches": launches, "launch_ms": launches * launch_us / 1e3,
            "by_part_ms": {p: by_part[p] / 1e3 for p in parts},
            "by_kind_ms": dict(sorted(((k, v / 1e3) for k, v in by_kind.items()), key=lambda kv: -kv[1])),
            "launches_by_kind": dict(launches_by_kind)}


def predict_network(config, arch: str, scan_us: ScanUs, sizes=SIZES, gpu: GPU = H100,
                    what_if_scan_us: Optional[ScanUs] = None, capture_sass: bool = False) -> list[dict]:
    """Rows of the report's ``"network"`` section: one per (size, direction). With
    ``what_if_scan_us`` (e.g. a fused op at its target) each row also gets
    ``"if_scan_at_target_ms"``: the as-coded eager and graph times with that scan instead."""
    rows = []
    for size, (h, w) in sizes.items():
        ops = walk(config, h, w, scan_us, capture_sass)
        what_if = walk(config, h, w, what_if_scan_us, capture_sass) if what_if_scan_us else None
        for direction in DIRECTIONS:
            variants = {f"{p}/{mode}": summarize(ops, direction, p, us, gpu)
                        for p in PRECISIONS for mode, us in LAUNCH_MODES.items()}
            main = variants["as_coded/eager"]
            target = TARGETS_MS.get((size, direction))
            r3 = lambda v: round(v, 3)  # noqa: E731
            rows.append({
                "arch": arch, "size": size, "height": h, "width": w, "direction": direction,
                "predicted_ms": r3(main["ms"]), "target_ms": target,
                "met": None if target is None else main["ms"] <= target,
                "launches": main["launches"],
                "variants_ms": {k: r3(v["ms"]) for k, v in variants.items()},
                "breakdown": {"by_part_ms": {k: r3(v) for k, v in main["by_part_ms"].items()},
                              "by_kind_ms": {k: r3(v) for k, v in main["by_kind_ms"].items()},
                              "launches_by_kind": main["launches_by_kind"],
                              "launch_ms": r3(main["launch_ms"])},
            })
            if what_if is not None:
                rows[-1]["if_scan_at_target_ms"] = {
                    mode: r3(summarize(what_if, direction, "as_coded", us, gpu)["ms"])
                    for mode, us in LAUNCH_MODES.items()}
    return rows


def format_network(rows: list[dict]) -> str:
    from .report import md_table

    lines = ["Whole network (model in bench/network_model.py; entropy coding on the CPU excluded). "
             "'as coded': g_a/h_a/g_s convolutions at TF32, h_s and context at FP32; "
             f"eager {EAGER_LAUNCH_US:g} us, CUDA graph {GRAPH_LAUNCH_US:g} us per launch.", ""]
    body = []
    for r in rows:
        v = r["variants_ms"]
        top = ", ".join(f"{k} {ms:.2f}" for k, ms in list(r["breakdown"]["by_kind_ms"].items())[:3])
        wi = r.get("if_scan_at_target_ms")
        body.append([r["arch"], r["size"], r["direction"], str(r["launches"]), f"{r['predicted_ms']:.2f}",
                     f"{v['as_coded/graph']:.2f}", f"{v['fp32/eager']:.2f}", f"{v['tf32/graph']:.2f}",
                     "-" if r["target_ms"] is None else f"{r['target_ms']:g}",
                     "-" if r["met"] is None else ("met" if r["met"] else "missed"),
                     "-" if wi is None else f"{wi['eager']:.2f} / {wi['graph']:.2f}", top])
    lines.append(md_table(["arch", "size", "direction", "launches", "as coded, eager ms", "as coded, graph ms",
                           "all FP32, eager ms", "all TF32, graph ms", "target ms", "target",
                           "scan at its target: eager / graph ms", "top kinds (ms, as coded eager)"],
                          body, "lllrrrrrrlrl"))
    return "\n".join(lines) + "\n"


__all__ = ["Op", "OpRecorder", "walk", "summarize", "predict_network", "format_network", "svd_flops",
           "SVD_STEP_US", "DIRECTIONS", "PARTS", "SIZES", "TARGETS_MS"]
