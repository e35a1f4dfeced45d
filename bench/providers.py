"""Benchmark providers: one callable per (op, implementation), or the reason it cannot run.

Providers:

- ``reference``: :mod:`samic_fast.ops` with ``backend="reference"`` (pure PyTorch).
- ``triton``: the same ops with ``backend="triton"``. On CPU only under ``TRITON_INTERPRET=1``
  and only for tiny shapes: the interpreter runs each program in Python, so its timings measure
  the interpreter, not the kernel, and larger shapes take minutes.
- ``compile``: ``torch.compile`` of the reference function. Dynamo unrolls the reference scan's
  Python loop over blocks, so compile time grows with the number of blocks (~3 s each on the
  2-core CPU); scans with more than :data:`COMPILE_MAX_BLOCKS` blocks are skipped.
- ``mamba_cuda``: mamba-ssm's CUDA ``selective_scan_fn`` (needs a CUDA build of mamba-ssm; see
  README, "Reproducing the benchmarks"), on inputs already in its native ``(B, D, L)`` layout; for
  ``sass_scan`` the inputs are also already permuted (gathered outside the timing) and the output
  is not scattered back: its scan alone, the anchor of the targets.
- ``dropin``: :func:`samic_fast.ops.selective_scan_fn` (triton), mamba-ssm's signature, on the
  same inputs as ``mamba_cuda`` (the one-line swap a Mamba user makes); the kernel reads the
  ``(B, D, L)`` tensors through strides, so the row compares the fused scan with mamba-ssm's CUDA
  scan on equal terms.
- ``mamba_ref``: mamba-ssm's pure-PyTorch ``selective_scan_ref`` (a Python step per token, and it
  materialises ``(B, D, L, N)``), also ``(B, D, L)`` layout; skipped above
  :data:`MAMBA_REF_MAX_TOKENS` tokens unless asked for, to bound run time.

``sass`` is the whole SASS mixer (:class:`samic_fast.sass.SASS` in eval mode: semantic
convolutions, assignment, order, projections, fused scan) at the shape's ``D``.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from typing import Callable, Optional

import torch

from samic_fast import ops, ref
from samic_fast.backend import triton_interpreter_enabled

from .shapes import Shape

OPS: tuple[str, ...] = ("cluster_assign", "scan_order", "selective_scan", "sass_scan", "sass")
PROVIDERS: tuple[str, ...] = ("reference", "triton", "compile", "mamba_cuda", "dropin", "mamba_ref")
#: Largest L the Triton interpreter is asked to run on CPU.
TRITON_CPU_MAX_TOKENS = 256
#: Largest number of unrolled reference-scan blocks handed to torch.compile.
COMPILE_MAX_BLOCKS = 12
#: Largest L for mamba-ssm's per-token Python loop unless the caller raises it.
MAMBA_REF_MAX_TOKENS = 24_576


class Unavailable(Exception):
    """A provider cannot run here; ``str(exc)`` is the reason printed in place of a number."""


@dataclass
class Built:
    """A ready-to-time callable; ``setup_s`` is one-time cost paid while building (compile, JIT)."""

    fn: Callable[[], object]
    setup_s: float = 0.0


def scan_blocks(shape: Shape) -> int:
    """Blocks the reference scan's Python loop runs at ``shape``."""
    _, block = ref.scan_tiling(shape.batch, shape.seqlen, shape.dim, shape.nstate)
    return -(-shape.seqlen // block)


def mamba_cuda_fn() -> Optional[Callable]:
    """mamba-ssm's CUDA ``selective_scan_fn`` when its compiled extension is really present."""
    if not torch.cuda.is_available():
        return None
    from samic_fast.mamba_ref import load_mamba_selective_scan_ref

    if load_mamba_selective_scan_ref() is None:
        return None
    # samic_fast.mamba_ref registers a placeholder module when the real extension is missing:
    # only the real one has ``fwd``.
    if not hasattr(sys.modules.get("selective_scan_cuda"), "fwd"):
        return None
    return getattr(sys.modules["mamba_ssm.ops.selective_scan_interface"], "selective_scan_fn", None)


def mamba_unavailable_reason(device: torch.device) -> str:
    if device.type != "cuda":
        return "mamba-ssm's CUDA scan needs a GPU"
    return "mamba-ssm's CUDA extension is not built (see the README, 'Reproducing the benchmarks')"


def _sass_module(shape: Shape, inputs: dict, backend: str) -> torch.nn.Module:
    from samic_fast.config import SASSConfig
    from samic_fast.samb import set_backend
    from samic_fast.sass import SASS

    cfg = SASSConfig(num_clusters=shape.clusters, c_sem=shape.c_sem, d_state=shape.nstate)
    torch.manual_seed(0)
    module = set_backend(SASS(shape.dim, cfg), backend)  # the backend is chosen after construction
    return module.to(inputs["x"].device).eval()


def _reference_callable(op: str, inputs: dict, backend: str) -> Callable[[], object]:
    """The op through :mod:`samic_fast.ops` (checks included, as users call it)."""
    s: Shape = inputs["shape"]
    i = inputs
    if op == "cluster_assign":
        return lambda: ops.cluster_assign(i["feat"], i["centers"], i["tau"], backend=backend)
    if op == "scan_order":
        return lambda: ops.scan_order(i["cluster"], i["count"], i["rowsum"], i["colsum"], s.height,
                                      s.width, backend=backend)
    if op == "selective_scan":
        return lambda: ops.selective_scan(i["x"], i["dt"], i["A"], i["Bm"], i["Cm"], D=i["D"],
                                          dt_bias=i["dt_bias"], backend=backend)
    if op == "sass_scan":
        return lambda: ops.sass_scan(i["x"], i["dt"], i["A"], i["Bm"], i["Cm"], i["perm"], D=i["D"],
                                     dt_bias=i["dt_bias"], backend=backend)
    if op == "sass":
        module = _sass_module(s, inputs, backend)
        x_img = i["x"].view(s.batch, s.height, s.width, s.dim)

        def run() -> torch.Tensor:
            with torch.no_grad():
                return module(x_img)

        return run
    raise ValueError(f"unknown op {op!r}; expected one of {OPS}")


def _compiled_callable(op: str, inputs: dict) -> Callable[[], object]:
    s: Shape = inputs["shape"]
    i = inputs
    if op in ("selective_scan", "sass_scan", "sass") and scan_blocks(s) > COMPILE_MAX_BLOCKS:
        raise Unavailable(
            f"torch.compile unrolls the reference scan's {scan_blocks(s)} blocks "
            f"(> {COMPILE_MAX_BLOCKS}); compile would take minutes"
        )
    # Each provider compiles afresh: independent of earlier shapes and of dynamo's recompile limit.
    torch._dynamo.reset()
    if op == "cluster_assign":
        f = torch.compile(ref.cluster_assign_ref)
        return lambda: f(i["feat"], i["centers"], i["tau"])
    if op == "scan_order":
        f = torch.compile(ref.scan_order_ref)
        return lambda: f(i["cluster"], i["count"], i["rowsum"], i["colsum"], s.height, s.width)
    if op == "selective_scan":
        f = torch.compile(ref.selective_scan_ref)
        return lambda: f(i["x"], i["dt"], i["A"], i["Bm"], i["Cm"], i["D"], None, i["dt_bias"], True)
    if op == "sass_scan":
        f = torch.compile(ref.sass_scan_ref)
        return lambda: f(i["x"], i["dt"], i["A"], i["Bm"], i["Cm"], i["perm"], i["D"], None,
                         i["dt_bias"], True)
    if op == "sass":
        module = torch.compile(_sass_module(s, inputs, "reference"))
        x_img = i["x"].view(s.batch, s.height, s.width, s.dim)

        def run() -> torch.Tensor:
            with torch.no_grad():
                return module(x_img)

        return run
    raise ValueError(f"unknown op {op!r}")


def _channel_first(inputs: dict) -> dict:
    """mamba-ssm's native layout, prepared outside the timed region: ``u, delta (B, D, L)``,
    ``B, C (B, N, L)``."""
    tr = lambda t: t.transpose(1, 2).contiguous()  # noqa: E731
    return {"u": tr(inputs["x"]), "delta": tr(inputs["dt"]), "B": tr(inputs["Bm"]), "C": tr(inputs["Cm"])}


def _mamba_callable(op: str, inputs: dict, scan: Callable) -> Callable[[], object]:
    i = inputs
    cf = _channel_first(inputs)

    def run_scan(u, delta, bm, cm):
        return scan(u, delta, i["A"], bm, cm, D=i["D"], delta_bias=i["dt_bias"], delta_softplus=True)

    if op == "selective_scan":
        return lambda: run_scan(cf["u"], cf["delta"], cf["B"], cf["C"])
    if op == "sass_scan":
        # Pre-permuted: the gather happens here, outside the timed callable (the targets compare
        # the fused op with mamba-ssm's scan alone).
        idx = i["perm"].long()[:, None, :]  # (B, 1, L)
        pre = {k: torch.gather(t, 2, idx.expand(-1, t.shape[1], -1)) for k, t in cf.items()}
        return lambda: run_scan(pre["u"], pre["delta"], pre["B"], pre["C"])
    raise Unavailable(f"mamba-ssm has no {op}")


def build(
    op: str,
    provider: str,
    inputs: dict,
    *,
    mamba_ref_max_tokens: int = MAMBA_REF_MAX_TOKENS,
) -> Built:
    """Build the callable for ``provider`` running ``op`` on ``inputs`` (from
    :func:`bench.shapes.make_inputs`); raises :class:`Unavailable` with the reason otherwise.

    Providers with one-time costs (triton JIT, torch.compile) are called once here, so a failure
    becomes a reason instead of an exception in the middle of a table, and ``setup_s`` records the
    cost.
    """
    shape: Shape = inputs["shape"]
    device = inputs["x"].device
    if provider == "reference":
        return Built(_reference_callable(op, inputs, "reference"))
    if provider == "triton":
        if device.type == "cpu":
            if not triton_interpreter_enabled():
                raise Unavailable("triton on CPU needs TRITON_INTERPRET=1 before triton is imported")
            if shape.seqlen > TRITON_CPU_MAX_TOKENS:
                raise Unavailable(
                    f"triton on CPU runs under the interpreter (Python per program): only for "
                    f"L <= {TRITON_CPU_MAX_TOKENS}, here L={shape.seqlen:,}"
                )
        fn = _reference_callable(op, inputs, "triton")
        return _probe(fn, "triton")
    if provider == "compile":
        if device.type == "cpu" and not _have_c_compiler():
            raise Unavailable("torch.compile on CPU needs a C++ compiler")
        return _probe(_compiled_callable(op, inputs), "torch.compile")
    if provider == "mamba_cuda":
        if op not in ("selective_scan", "sass_scan"):
            raise Unavailable(f"mamba-ssm has no {op}")
        scan = mamba_cuda_fn()
        if scan is None:
            raise Unavailable(mamba_unavailable_reason(device))
        return _probe(_mamba_callable(op, inputs, scan), "mamba-ssm CUDA")
    if provider == "dropin":
        if op not in ("selective_scan", "sass_scan"):
            raise Unavailable(f"selective_scan_fn is the drop-in for mamba-ssm's scan, not {op}")
        if device.type == "cpu" and (not triton_interpreter_enabled() or shape.seqlen > TRITON_CPU_MAX_TOKENS):
            raise Unavailable("the drop-in runs the triton kernels: on CPU only under the interpreter, "
                              f"L <= {TRITON_CPU_MAX_TOKENS}")

        def dropin(*args, **kwargs):
            return ops.selective_scan_fn(*args, **kwargs, backend="triton")

        return _probe(_mamba_callable(op, inputs, dropin), "selective_scan_fn")
    if provider == "mamba_ref":
        if op not in ("selective_scan", "sass_scan"):
            raise Unavailable(f"mamba-ssm has no {op}")
        from samic_fast.mamba_ref import load_mamba_selective_scan_ref

        scan = load_mamba_selective_scan_ref()
        if scan is None:
            raise Unavailable("mamba-ssm is not installed")
        if shape.seqlen > mamba_ref_max_tokens:
            raise Unavailable(
                f"mamba-ssm's selective_scan_ref steps through L={shape.seqlen:,} tokens in Python "
                f"(> {mamba_ref_max_tokens:,}); skipped to bound run time"
            )
        return Built(_mamba_callable(op, inputs, scan))
    raise ValueError(f"unknown provider {provider!r}; expected one of {PROVIDERS}")


def _probe(fn: Callable[[], object], what: str) -> Built:
    t0 = time.perf_counter()
    try:
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
    except Unavailable:
        raise
    except Exception as exc:  # a missing kernel or a compile failure becomes a printed reason
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise Unavailable(f"{what} failed: {type(exc).__name__}: {msg[:160]}") from exc
    return Built(fn, time.perf_counter() - t0)


def _have_c_compiler() -> bool:
    import shutil

    return any(shutil.which(cc) for cc in ("g++", "c++", "clang++"))


__all__ = [
    "OPS", "PROVIDERS", "Unavailable", "Built", "build", "scan_blocks", "mamba_cuda_fn",
    "TRITON_CPU_MAX_TOKENS", "COMPILE_MAX_BLOCKS", "MAMBA_REF_MAX_TOKENS",
]
