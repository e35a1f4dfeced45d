"""Parity of the fused Triton ops against the reference (docs/design.md §5), for ``samic-fast verify``.

Every op runs on both backends at a set of shapes; each row of the result says how far the fused
output is from the ground truth, whether integer outputs are exact, whether repeated fused runs
are bitwise identical, and how long each backend took. The rules (docs/design.md §5):

- ``cluster_assign``: ids equal wherever the float64 top-2 score margin exceeds ``1e-4``
  (relative to the top score); the integer sums exactly those of the returned ids.
- ``scan_order``: given the same ids, ``perm`` and ``inv`` equal bit for bit.
- scans, fp32 inputs: relative RMS error ``<= 1e-5`` against the reference run in float64, and a
  max abs error ``<= 1e-4 * max(1, max|y|)``; fp16/bf16 inputs: relative RMS error at most
  ``2x`` the reference's own error in that dtype (plus a small floor).
- every fused op deterministic: repeated runs bitwise equal.

mamba-ssm's own reference (``selective_scan_ref``, fp32, a Python loop over L) is an extra,
independent check of ``selective_scan`` where installed and ``L <= 8192``.

On CPU the fused ops run in Triton's interpreter, which must be enabled (``TRITON_INTERPRET=1``)
before triton is imported: :func:`prepare_device` does that.
"""

from __future__ import annotations

import math
import os
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from typing import Callable, Dict, List, Optional, Sequence

import torch

from samic_fast.errors import BackendError, DeviceError
from samic_fast.shapes import DEFAULT_C_SEM, DEFAULT_CLUSTERS, SASS_SHAPES_768x512, shape_name

NEAR_TIE = 1e-4
FP32_REL_RMS = 1e-5
FP32_MAX_ABS = 1e-4
LOW_PRECISION_FACTOR = 2.0
LOW_PRECISION_FLOOR = {torch.float16: 1e-4, torch.bfloat16: 1e-3}
MAMBA_MAX_L = 8192

DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}

# (name, batch, c_sem, H, W, K) for cluster ops; (name, batch, L, D, N) for scans.
SHAPES = {
    # One odd shape per op: the quick check that a fresh install works (seconds on CPU).
    "quick": {
        "cluster": [("odd", 2, 6, 7, 9, 5)],
        "scan": [("odd", 2, 37, 11, 5)],
    },
    "small": {
        "cluster": [("odd", 2, 6, 7, 9, 5), ("c32k16", 1, 32, 12, 10, 16)],
        "scan": [("odd", 2, 37, 11, 5), ("n16", 1, 63, 19, 16)],
    },
    # The default model's SASS calls on a Kodak image, 768x512, batch 1 (samic_fast.shapes).
    "kodak": {
        "cluster": [(shape_name(s), 1, DEFAULT_C_SEM, s.height, s.width, DEFAULT_CLUSTERS)
                    for s in SASS_SHAPES_768x512],
        "scan": [(shape_name(s), 1, s.L, s.D, s.N) for s in SASS_SHAPES_768x512],
    },
}


@dataclass
class Row:
    """One line of the parity table."""

    op: str
    case: str
    dtype: str
    max_abs: Optional[float]
    rel_rms: Optional[float]
    exact: Optional[bool]
    deterministic: Optional[bool]
    t_ref_ms: Optional[float]
    t_triton_ms: Optional[float]
    ok: bool
    note: str = ""


def prepare_device(device: str) -> torch.device:
    """Check that the fused path can run on ``device``; on CPU, enable Triton's interpreter.

    Raises :class:`DeviceError` for CUDA without a GPU, :class:`BackendError` when triton cannot
    run (or was imported without the interpreter before a CPU run was asked for).
    """
    if device == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError("--device cuda: no CUDA GPU is available (use --device cpu)")
    elif device == "cpu":
        if os.environ.get("TRITON_INTERPRET", "0") in ("", "0"):
            if "triton" in sys.modules:
                raise BackendError(
                    "triton was imported before TRITON_INTERPRET=1 was set; run "
                    "`TRITON_INTERPRET=1 samic-fast verify --device cpu`"
                )
            os.environ["TRITON_INTERPRET"] = "1"
    else:
        raise DeviceError(f"unknown device {device!r}; expected 'cpu' or 'cuda'")
    from samic_fast.backend import triton_available

    if not triton_available():
        raise BackendError("triton is not installed or cannot launch kernels here")
    return torch.device(device)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(fn: Callable, device: torch.device, reps: int):
    """(first output, last output, median ms over ``reps`` timed runs after one warm-up run)."""
    first = fn()
    _sync(device)
    times, out = [], first
    for _ in range(max(1, reps)):
        t0 = time.perf_counter()
        out = fn()
        _sync(device)
        times.append((time.perf_counter() - t0) * 1e3)
    return first, out, statistics.median(times)


def _bitwise_equal(a, b) -> bool:
    if isinstance(a, (tuple, list)):
        return all(_bitwise_equal(x, y) for x, y in zip(a, b))
    return a.dtype == b.dtype and a.shape == b.shape and torch.equal(
        a.view(torch.uint8) if a.is_floating_point() else a, b.view(torch.uint8) if b.is_floating_point() else b
    )


def _rel_rms(actual: torch.Tensor, expected: torch.Tensor) -> float:
    a, e = actual.double(), expected.double()
    return float((a - e).pow(2).mean().sqrt() / e.pow(2).mean().sqrt().clamp_min(1e-30))


def _max_abs(actual: torch.Tensor, expected: torch.Tensor) -> float:
    return float((actual.double() - expected.double()).abs().max())


def _cluster_rows(case, device, dtype_name, reps) -> List[Row]:
    from samic_fast import ops, ref

    name, b, c, h, w, k = case
    dtype = DTYPES[dtype_name]
    g = torch.Generator().manual_seed(0)
    feat = torch.randn(b, c, h, w, generator=g).to(device=device, dtype=dtype)
    centers = torch.randn(k, c, generator=g).to(device)
    tau = 0.1
    shape = f"{name} {b}x{c}x{h}x{w} K={k}"

    _, r_out, t_ref = _timed(lambda: ops.cluster_assign(feat, centers, tau, backend="reference"), device, reps)
    f_first, f_out, t_tri = _timed(lambda: ops.cluster_assign(feat, centers, tau, backend="triton"), device, reps)
    cl, count, rowsum, colsum = f_out
    scores = ref.cluster_scores_ref(feat.double(), centers.double(), tau)
    if k > 1:
        top = scores.topk(2, dim=-1).values
        near = (top[..., 0] - top[..., 1]) <= NEAR_TIE * top[..., 0].abs().clamp_min(1e-12)
    else:
        near = torch.zeros_like(cl, dtype=torch.bool)
    mismatch = cl != r_out[0]
    bad = int((mismatch & ~near).sum())
    sums_exact = all(
        torch.equal(a, e) for a, e in zip((count, rowsum, colsum), ref.cluster_sums_ref(cl, k, h, w))
    )
    det = _bitwise_equal(f_first, f_out)
    ok = bad == 0 and sums_exact and det
    note = f"{int(mismatch.sum())} id mismatches ({int((mismatch & near).sum())} at near-ties)"
    rows = [Row("cluster_assign", shape, dtype_name, None, None, sums_exact and bad == 0, det, t_ref, t_tri, ok, note)]

    # scan_order, given the same (reference) ids on both backends.
    sums = r_out[1:]
    _, r_perm, t_ref2 = _timed(lambda: ops.scan_order(r_out[0], *sums, h, w, backend="reference"), device, reps)
    f_first2, f_perm, t_tri2 = _timed(lambda: ops.scan_order(r_out[0], *sums, h, w, backend="triton"), device, reps)
    exact = _bitwise_equal(f_perm, r_perm)
    det2 = _bitwise_equal(f_first2, f_perm)
    rows.append(Row("scan_order", shape, dtype_name, None, None, exact, det2, t_ref2, t_tri2, exact and det2))
    return rows


def _scan_inputs(case, device, dtype, seed=0):
    _, b, L, d, n = case
    g = torch.Generator().manual_seed(seed)
    r = lambda *s: torch.randn(*s, generator=g)  # noqa: E731
    act = dict(x=r(b, L, d), dt=r(b, L, d) * 0.5 - 1.0, Bm=r(b, L, n), Cm=r(b, L, n), z=r(b, L, d))
    par = dict(A=-torch.exp(r(d, n)), D=r(d), dt_bias=r(d) * 0.3)
    perm = torch.stack([torch.randperm(L, generator=g) for _ in range(b)]).to(torch.int32)
    out = {k: v.to(device=device, dtype=dtype) for k, v in act.items()}
    out.update({k: v.to(device) for k, v in par.items()})
    return out, perm.to(device)


def _call_scan(op: str, t: Dict[str, torch.Tensor], perm, backend: str):
    from samic_fast import ops

    args = (t["x"], t["dt"], t["A"], t["Bm"], t["Cm"])
    kw = dict(D=t["D"], z=t["z"], dt_bias=t["dt_bias"], delta_softplus=True, backend=backend)
    if op == "sass_scan":
        return ops.sass_scan(*args, perm, **kw)
    return ops.selective_scan(*args, **kw)


def _scan_rows(case, device, dtype_name, reps) -> List[Row]:
    dtype = DTYPES[dtype_name]
    name, b, L, d, n = case
    shape = f"{name} B={b} L={L} D={d} N={n}"
    t, perm = _scan_inputs(case, device, dtype)
    t64 = {k: v.double() for k, v in t.items()}
    rows = []
    for op in ("selective_scan", "sass_scan"):
        with torch.no_grad():
            y64 = _call_scan(op, t64, perm, "reference")
            _, y_ref, t_ref = _timed(lambda: _call_scan(op, t, perm, "reference"), device, reps)
            y_first, y_tri, t_tri = _timed(lambda: _call_scan(op, t, perm, "triton"), device, reps)
        err, mabs = _rel_rms(y_tri, y64), _max_abs(y_tri, y64)
        det = _bitwise_equal(y_first, y_tri)
        finite = bool(torch.isfinite(y_tri).all())
        if dtype == torch.float32:
            bound = FP32_REL_RMS
            ok_err = err <= bound and mabs <= FP32_MAX_ABS * max(1.0, float(y64.abs().max()))
            note = f"rule: rel_rms <= {bound:g}"
        else:
            ref_err = _rel_rms(y_ref, y64)
            bound = LOW_PRECISION_FACTOR * ref_err + LOW_PRECISION_FLOOR[dtype]
            ok_err = err <= bound
            note = f"reference's own {dtype_name} error {ref_err:.2e}; rule: <= {bound:.2e}"
        rows.append(Row(op, shape, dtype_name, mabs, err, None, det, t_ref, t_tri, ok_err and det and finite, note))
    return rows


def _mamba_row(case, device) -> Optional[Row]:
    from samic_fast.mamba_ref import mamba_available, mamba_scan_channel_last

    name, b, L, d, n = case
    if L > MAMBA_MAX_L or not mamba_available():
        return None
    t, perm = _scan_inputs(case, device, torch.float32)
    with torch.no_grad():
        y_tri = _call_scan("selective_scan", t, perm, "triton")
        y_m = mamba_scan_channel_last(t["x"], t["dt"], t["A"], t["Bm"], t["Cm"], D=t["D"], z=t["z"],
                                      dt_bias=t["dt_bias"], delta_softplus=True)
    err = _rel_rms(y_tri, y_m)
    return Row("selective_scan vs mamba-ssm", f"{name} B={b} L={L} D={d} N={n}", "fp32", _max_abs(y_tri, y_m),
               err, None, None, None, None, err <= FP32_REL_RMS, "independent reference (mamba-ssm)")


def run_verify(
    device: str = "cpu",
    shapes: str = "small",
    dtypes: Sequence[str] = ("fp32", "fp16", "bf16"),
    reps: Optional[int] = None,
    progress: Optional[Callable[[Row], None]] = None,
) -> List[Row]:
    """Run every op on both backends; return one :class:`Row` per (op, shape, dtype)."""
    dev = prepare_device(device)
    if shapes not in SHAPES:
        raise ValueError(f"unknown shape set {shapes!r}; expected one of {sorted(SHAPES)}")
    for name in dtypes:
        if name not in DTYPES:
            raise ValueError(f"unknown dtype {name!r}; expected some of {sorted(DTYPES)}")
    if reps is None:
        reps = 10 if dev.type == "cuda" else 1
    rows: List[Row] = []

    def add(new):
        for row in new:
            if row is None:
                continue
            rows.append(row)
            if progress is not None:
                progress(row)

    for case in SHAPES[shapes]["cluster"]:
        for name in dtypes:
            add(_cluster_rows(case, dev, name, reps))
    for case in SHAPES[shapes]["scan"]:
        for name in dtypes:
            add(_scan_rows(case, dev, name, reps))
        if "fp32" in dtypes:
            add([_mamba_row(case, dev)])
    return rows


def _fmt(value, kind: str) -> str:
    if value is None:
        return "-"
    if kind == "bool":
        return "yes" if value else "NO"
    if kind == "ms":
        return f"{value:.3f}" if value < 100 else f"{value:.1f}"
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return str(value)
    return f"{value:.2e}"


def format_table(rows: Sequence[Row], device_name: str = "") -> str:
    """The parity table as aligned text, then a one-line verdict."""
    head = ["op", "case", "dtype", "max abs err", "rel RMS", "exact", "determ.", "ref ms", "triton ms",
            "ok", "note"]
    body = [
        [r.op, r.case, r.dtype, _fmt(r.max_abs, "e"), _fmt(r.rel_rms, "e"), _fmt(r.exact, "bool"),
         _fmt(r.deterministic, "bool"), _fmt(r.t_ref_ms, "ms"), _fmt(r.t_triton_ms, "ms"),
         "PASS" if r.ok else "FAIL", r.note]
        for r in rows
    ]
    widths = [max(len(str(x)) for x in col) for col in zip(head, *body)]
    line = lambda cells: "  ".join(str(c).ljust(w) for c, w in zip(cells, widths)).rstrip()  # noqa: E731
    out = []
    if device_name:
        out.append(f"device: {device_name}")
    out += [line(head), line(["-" * w for w in widths])] + [line(b) for b in body]
    failed = [r for r in rows if not r.ok]
    verdict = "PASS" if rows and not failed else "FAIL"
    out.append(f"verify: {verdict} ({len(rows) - len(failed)}/{len(rows)} checks pass)")
    return "\n".join(out)


def device_description(device: str) -> str:
    import triton

    if device == "cuda":
        name = torch.cuda.get_device_name()
    else:
        name = "CPU (Triton interpreter: fused timings are not performance figures)"
    return f"{name}; torch {torch.__version__}, triton {triton.__version__}"


def rows_as_dicts(rows: Sequence[Row]) -> List[dict]:
    return [asdict(r) for r in rows]


__all__ = ["Row", "run_verify", "format_table", "prepare_device", "device_description", "rows_as_dicts", "SHAPES"]
