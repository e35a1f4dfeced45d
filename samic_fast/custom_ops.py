"""The fused ops as ``torch.library`` custom ops over the Triton launchers of :mod:`samic_fast.kernels`.

Each op (``torch.ops.samic_fast.<name>``) has a fake implementation, so ``torch.compile`` treats
it as one opaque node (no graph break, no tracing into Triton); the scans carry a FLOP formula
for ``torch.utils.flop_counter`` and a backward that recomputes with the pure-PyTorch reference.
The functions at the bottom have exactly the signatures of their references in
:mod:`samic_fast.ref` and are what :mod:`samic_fast.ops` calls for ``backend="triton"``.

This module imports no triton: the launchers are imported when an op first runs.
"""

# No `from __future__ import annotations`: torch.library.custom_op reads the annotations
# to build each op's schema, and real types work on every torch version.
from typing import Optional

import torch

from samic_fast import ref


def _launchers():
    import samic_fast.kernels as kernels

    return kernels


def state_dtype(x: torch.Tensor) -> torch.dtype:
    """dtype of a scan's state (and ``last_state``): float64 for float64 ``x``, else float32."""
    return torch.float64 if x.dtype == torch.float64 else torch.float32


def scan_flops(batch: int, seqlen: int, dim: int, nstate: int) -> int:
    """FLOPs of one scan: ``9 * B * L * D * N``.

    Per (token, channel, state): delta*A (1), exp (counted as 2: a multiply and an ex2 on GPUs),
    decay*h + (delta*x)*Bm (3: two multiplies and an add), Cm*h accumulated into y (2), the
    product delta*x amortised over N (~1). Per-(token, channel) terms (softplus, D skip, gate)
    are O(B*L*D) and left out.
    """
    return 9 * batch * seqlen * dim * nstate


# --------------------------------------------------------------------------- cluster assignment


@torch.library.custom_op("samic_fast::cluster_assign", mutates_args=())
def _cluster_assign_op(
    feat: torch.Tensor, centers: torch.Tensor, pos_row: torch.Tensor, pos_col: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    return _launchers().cluster_assign_fwd(feat, centers, pos_row, pos_col, ref.NORM_EPS)


@_cluster_assign_op.register_fake
def _(feat, centers, pos_row, pos_col):
    batch, _, height, width = feat.shape
    k = centers.shape[0]
    cluster = feat.new_empty((batch, height * width), dtype=torch.int32)
    sums = [feat.new_empty((batch, k), dtype=torch.int64) for _ in range(3)]
    return cluster, sums[0], sums[1], sums[2]


#: Positional tables per (H, W, C, device): built on the CPU in float64 and copied to the device,
#: they are the same for every call at one resolution, and a SAMIC forward makes dozens of calls
#: at a handful of resolutions (a rebuild is ~25 small ops and a host-to-device copy each time).
_POS_TABLES: dict = {}
_POS_TABLES_MAX = 64


def _positional_tables(height: int, width: int, channels: int, device: torch.device):
    if torch.compiler.is_compiling():  # inside a graph the tables are traced constants anyway
        return ref.positional_tables(height, width, channels, device)
    key = (height, width, channels, str(device))
    tables = _POS_TABLES.get(key)
    if tables is None:
        if len(_POS_TABLES) >= _POS_TABLES_MAX:
            _POS_TABLES.clear()
        tables = _POS_TABLES[key] = ref.positional_tables(height, width, channels, device)
    return tables


def cluster_assign(feat: torch.Tensor, centers: torch.Tensor, tau=None):
    """Fused twin of :func:`samic_fast.ref.cluster_assign_ref` (same signature and outputs).

    ``feat: (B, C, H, W)``, ``centers: (K, C)``; ``tau`` is accepted for the signature and
    ignored (a positive scale does not move the argmax). The positional-encoding tables come from
    :func:`samic_fast.ref.positional_tables`, the reference's own. No gradient flows through it.
    """
    del tau
    _, c_sem, height, width = feat.shape
    pos_row, pos_col = _positional_tables(height, width, c_sem, feat.device)
    return torch.ops.samic_fast.cluster_assign(feat.detach(), centers.detach(), pos_row, pos_col)


# --------------------------------------------------------------------------------- scan order


@torch.library.custom_op("samic_fast::scan_order", mutates_args=())
def _scan_order_op(
    cluster: torch.Tensor, count: torch.Tensor, rowsum: torch.Tensor, colsum: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    return _launchers().scan_order_fwd(cluster, count, rowsum, colsum)


@_scan_order_op.register_fake
def _(cluster, count, rowsum, colsum):
    return torch.empty_like(cluster, dtype=torch.int32), torch.empty_like(cluster, dtype=torch.int32)


def scan_order(cluster, count, rowsum, colsum, height: int, width: int):
    """Fused twin of :func:`samic_fast.ref.scan_order_ref` (same signature, bit-identical output)."""
    del height, width
    return torch.ops.samic_fast.scan_order(cluster, count, rowsum, colsum)


# -------------------------------------------------------------------------------------- scans


def _scan_launch(x, dt, A, Bm, Cm, perm, D, z, dt_bias, delta_softplus):
    last = torch.empty(x.shape[0], x.shape[2], A.shape[1], device=x.device, dtype=state_dtype(x))
    y = _launchers().sass_scan_fwd(x, dt, A, Bm, Cm, perm, D, z, dt_bias, delta_softplus, last_state=last)
    return y, last


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
) -> tuple[torch.Tensor, torch.Tensor]:
    return _scan_launch(x, dt, A, Bm, Cm, None, D, z, dt_bias, delta_softplus)


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
) -> tuple[torch.Tensor, torch.Tensor]:
    return _scan_launch(x, dt, A, Bm, Cm, perm, D, z, dt_bias, delta_softplus)


def _fake_scan(x, A):
    # empty_like keeps x's strides, as the launcher's y does (a (B, D, L) caller gets (B, D, L)).
    return torch.empty_like(x), x.new_empty((x.shape[0], x.shape[2], A.shape[1]), dtype=state_dtype(x))


@_selective_scan_op.register_fake
def _(x, dt, A, Bm, Cm, D, z, dt_bias, delta_softplus):
    return _fake_scan(x, A)


@_sass_scan_op.register_fake
def _(x, dt, A, Bm, Cm, perm, D, z, dt_bias, delta_softplus):
    return _fake_scan(x, A)


def reference_scan(x, dt, A, Bm, Cm, perm=None, D=None, z=None, dt_bias=None, delta_softplus=True):
    """The reference scan for every layout the ops accept, ``(y, last_state)``: grouped
    ``Bm, Cm (B, G, L, N)`` run as one reference call per group of ``D / G`` channels."""
    kw = dict(delta_softplus=delta_softplus, return_last_state=True)
    if Bm.dim() == 3:
        if perm is None:
            return ref.selective_scan_ref(x, dt, A, Bm, Cm, D, z, dt_bias, **kw)
        return ref.sass_scan_ref(x, dt, A, Bm, Cm, perm, D, z, dt_bias, **kw)
    groups = Bm.shape[1]
    size = x.shape[2] // groups
    ys, states = [], []
    for g in range(groups):
        ch = slice(g * size, (g + 1) * size)
        part = lambda t: None if t is None else t[..., ch]  # noqa: E731
        y, s = reference_scan(x[..., ch], dt[..., ch], A[ch], Bm[:, g], Cm[:, g], perm, part(D), part(z),
                              part(dt_bias), delta_softplus)
        ys.append(y)
        states.append(s)
    return torch.cat(ys, dim=2), torch.cat(states, dim=1)


_DIFF = ("x", "dt", "A", "Bm", "Cm", "D", "z", "dt_bias")
_SEL_ARGS = _DIFF + ("delta_softplus",)
_SASS_ARGS = ("x", "dt", "A", "Bm", "Cm", "perm", "D", "z", "dt_bias", "delta_softplus")


def _setup_context(ctx, inputs, output):
    ctx.save_for_backward(*[t if isinstance(t, torch.Tensor) else None for t in inputs[:-1]])
    ctx.delta_softplus = inputs[-1]


def _recompute_backward(ctx, grad_y, grad_last, names):
    """Gradients by recomputing the op with the pure-PyTorch reference under autograd.

    The fused kernels are forward-only; this costs a reference forward and backward (memory of
    the reference's blocked temporaries) but is exact to the reference's precision.
    """
    saved = dict(zip(names[:-1], ctx.saved_tensors))
    wants = [n for i, n in enumerate(names[:-1]) if ctx.needs_input_grad[i] and n in _DIFF]
    with torch.enable_grad():
        args = {n: (t if t is None or n == "perm" else t.detach().requires_grad_(n in wants))
                for n, t in saved.items()}
        y, last = reference_scan(args["x"], args["dt"], args["A"], args["Bm"], args["Cm"], args.get("perm"),
                                 args["D"], args["z"], args["dt_bias"], ctx.delta_softplus)
        outs, grads_out = [y], [grad_y]
        if grad_last is not None:
            outs.append(last)
            grads_out.append(grad_last)
        grads = torch.autograd.grad(outs, [args[n] for n in wants], grads_out, allow_unused=True) if wants else ()
    by_name = dict(zip(wants, grads))
    return tuple(by_name.get(n) for n in names)


_selective_scan_op.register_autograd(
    lambda ctx, gy, gs: _recompute_backward(ctx, gy, gs, _SEL_ARGS), setup_context=_setup_context
)
_sass_scan_op.register_autograd(
    lambda ctx, gy, gs: _recompute_backward(ctx, gy, gs, _SASS_ARGS), setup_context=_setup_context
)


def _register_flops() -> None:
    from torch.utils.flop_counter import flop_registry, register_flop_formula

    def formula(x_shape, dt_shape, A_shape, *args, out_shape=None, **kwargs) -> int:
        return scan_flops(x_shape[0], x_shape[1], x_shape[2], A_shape[1])

    for op in (torch.ops.samic_fast.selective_scan, torch.ops.samic_fast.sass_scan):
        if op not in flop_registry:
            register_flop_formula(op)(formula)


_register_flops()


def selective_scan(x, dt, A, Bm, Cm, D=None, z=None, dt_bias=None, delta_softplus=True,
                   return_last_state=False):
    """Fused twin of :func:`samic_fast.ref.selective_scan_ref` (same signature): Mamba-1 scan in
    raster order. ``x, dt, z: (B, L, D)`` (any strides), ``A: (D, N)``, ``Bm, Cm: (B, L, N)`` or
    grouped ``(B, G, L, N)``, ``D, dt_bias: (D,)``; returns ``y (B, L, D)`` in ``x``'s dtype
    (strides of ``x``), and ``last_state (B, D, N)`` float32 when ``return_last_state``.

    Forward runs the Triton kernels; backward recomputes with the reference (exact gradients,
    reference speed and memory) until a fused backward exists.
    """
    y, last = torch.ops.samic_fast.selective_scan(x, dt, A, Bm, Cm, D, z, dt_bias, bool(delta_softplus))
    return (y, last) if return_last_state else y


def sass_scan(x, dt, A, Bm, Cm, perm, D=None, z=None, dt_bias=None, delta_softplus=True,
              return_last_state=False):
    """Fused twin of :func:`samic_fast.ref.sass_scan_ref` (same signature): scan the rows in the
    order ``perm (B, L)`` and write each output to its raster row, ``y[perm[t]] = scan_t``.
    Shapes as :func:`selective_scan`; ``last_state`` is the state after step ``L - 1``.
    """
    y, last = torch.ops.samic_fast.sass_scan(x, dt, A, Bm, Cm, perm, D, z, dt_bias, bool(delta_softplus))
    return (y, last) if return_last_state else y


__all__ = ["cluster_assign", "scan_order", "selective_scan", "sass_scan", "reference_scan", "scan_flops",
           "state_dtype"]
