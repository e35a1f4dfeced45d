"""Model size and FLOPs, reported beside the paper's Table 1 (24.88 M parameters, 53.41 G FLOPs
on a 768×512 Kodak image).

FLOPs are counted with ``torch.utils.flop_counter.FlopCounterMode`` over ``model(x)`` (the
CompressAI forward: g_a, SVD-RRM, h_a, h_s, both checkerboard passes of every slice, g_s). It
counts convolutions, matmuls and attention with 2 FLOPs per multiply-add; element-wise ops, the
SVD and the entropy models' likelihoods are not counted. The selective scans:

- triton backend: the custom ops ``samic_fast::sass_scan`` / ``selective_scan`` carry a FLOP
  formula (``9·B·L·D·N``, kernels/sass_scan.py) that the counter uses;
- reference backend: the PyTorch scan would be counted only in part (its einsum), so during the
  count it is replaced by a shape-only stand-in and the same analytic ``9·B·L·D·N`` is added.
  The FLOPs of everything else do not depend on values, only on shapes.

The paper does not say which convention it used; profilers common in compression papers
(fvcore, thop, ptflops) report multiply-adds, so ``macs_G = flops_G / 2`` is given as well.
"""

from __future__ import annotations

import contextlib
from unittest import mock

import torch
from torch.utils.flop_counter import FlopCounterMode

from samic_fast import ref
from samic_fast.backend import resolve_backend
from samic_fast.sass import SASS

PAPER_PARAMS_M = 24.88
PAPER_FLOPS_G = 53.41


def scan_flops(batch: int, seqlen: int, dim: int, nstate: int) -> int:
    """Analytic FLOPs of one selective scan, ``9·B·L·D·N`` (as kernels/sass_scan.py counts)."""
    return 9 * batch * seqlen * dim * nstate


@contextlib.contextmanager
def _counted_reference_scan(record: list):
    """Replace the reference scan by a shape-only stand-in that records its analytic FLOPs."""

    def stand_in(x, dt, A, Bm, Cm, *args, **kwargs):
        record.append(scan_flops(x.shape[0], x.shape[1], x.shape[2], A.shape[1]))
        return torch.zeros_like(x)

    with mock.patch.object(ref, "sass_scan_ref", stand_in), mock.patch.object(ref, "selective_scan_ref", stand_in):
        yield


def count_parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@torch.no_grad()
def model_complexity(model: torch.nn.Module, height: int = 512, width: int = 768) -> dict:
    """Parameters and FLOPs of ``model`` (a :class:`samic_fast.model.SAMIC`) on one
    ``height × width`` image (multiples of 64). Returns ``params``, ``params_M``, ``flops``,
    ``flops_G``, ``macs_G``, ``scan_flops_G``, the paper's figures and a ``note``."""
    device = next(model.parameters()).device
    sass = [m for m in model.modules() if isinstance(m, SASS)]
    on_triton = bool(sass) and all(resolve_backend(m.backend, device) == "triton" for m in sass)
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(1, 3, height, width, generator=gen).to(device)
    was_training = model.training
    model.eval()
    scans: list[int] = []
    try:
        with contextlib.ExitStack() as stack:
            if not on_triton:
                stack.enter_context(_counted_reference_scan(scans))
            counter = stack.enter_context(FlopCounterMode(display=False))
            model(x)
        counted = int(counter.get_total_flops())
    finally:
        model.train(was_training)
    scan_total = sum(scans)
    flops = counted + scan_total
    params = count_parameters(model)
    if on_triton:
        note = "FlopCounterMode; scans counted by the samic_fast custom ops' formula (9*B*L*D*N)"
    else:
        note = ("FlopCounterMode over the network + analytic 9*B*L*D*N for the "
                f"{len(scans)} reference scans (not traced)")
    return {
        "params": params,
        "params_M": params / 1e6,
        "flops": flops,
        "flops_G": flops / 1e9,
        "macs_G": flops / 2e9,
        "scan_flops_G": scan_total / 1e9 if not on_triton else None,
        "height": height,
        "width": width,
        "paper_params_M": PAPER_PARAMS_M,
        "paper_flops_G": PAPER_FLOPS_G,
        "note": note + "; 2 FLOPs per multiply-add (macs_G = flops_G / 2)",
    }


__all__ = ["model_complexity", "count_parameters", "scan_flops", "PAPER_PARAMS_M", "PAPER_FLOPS_G"]
