"""Model size and cost, counted three ways, beside the paper's Table 1 / Table 3.

- ``params``: every parameter of the model (``sum(p.numel())``), as the paper's "Params (M)".
- ``paper_gmacs_512``: the paper's unit. Its Table 1 "FLOPs (G)" are multiply-accumulates counted
  by the ``thop`` package on one 1×3×512×512 input, whatever the image the table is about (the
  same group's ICISP, released code profiled that way, gives exactly the 76.06 G that Table 1
  lists; §4.5.6 quotes the same 53.41 G for a 4K image). thop sums a rule per module of a known
  type (convolutions and transposed convolutions: ``out_elements · C_in/groups · k²``; linear:
  ``out_elements · in_features``; affine LayerNorm: ``4 · elements``) over ``model(x)`` and sees nothing
  called functionally. So every layer with weights in this package is a module (SAMB's two
  ``in_proj`` halves are ``nn.Linear``; the checkerboard-masked convolution, a Conv2d subclass
  that thop would skip, is given thop's own convolution rule), and the count is complete in
  thop's sense. Like the paper's figure, it leaves out what thop never sees: the selective scans,
  the cosine cluster scores, the attention products of the window attention and the SVD of
  SVD-RRM.
- ``gflops_768x512``: ``torch.utils.flop_counter.FlopCounterMode`` (2 FLOPs per multiply-add,
  convolutions, matmuls and attention at their real cost) over ``model(x)`` on a 768×512 Kodak
  image, plus the analytic cost of what runs in the SASS ops: ``9·B·L·D·N`` per scan (as
  kernels/sass_scan.py's FLOP formula) and ``2·B·L·K·C_sem`` for the cluster scores.

Both counts run on the ``meta`` device: shapes only, no arithmetic, no memory, milliseconds. The
SASS modules run their semantic branch and projections for real (on meta), and a shape-only
stand-in replaces the data-dependent scan order and the scan (:func:`shape_only_sass`), which
records every call's ``(H, W, D, N, K, C_sem)``; :mod:`samic_fast.shapes` traces the SASS call
shapes the same way.
"""

from __future__ import annotations

import contextlib
import warnings
from typing import Iterator, Optional
from unittest import mock

import torch
import torch.nn as nn
from torch.utils.flop_counter import FlopCounterMode

from samic_fast.custom_ops import scan_flops  # the one FLOP formula of a scan (also the ops')

#: Paper Table 1 (SAMIC row): parameters and thop GMACs at 1x3x512x512.
PAPER_PARAMS_M = 24.88
PAPER_GMACS_512 = 53.41
#: Paper Table 3: the same two figures for K = 4, 8, 16 clusters.
PAPER_BY_K: dict[int, dict[str, float]] = {
    4: {"params_M": 24.86, "gmacs_512": 53.40},
    8: {"params_M": 24.87, "gmacs_512": 53.40},
    16: {"params_M": 24.88, "gmacs_512": 53.41},
}
#: The image the paper's FLOP count uses and the Kodak image the repository's own count uses.
THOP_SIZE = (512, 512)
KODAK_SIZE = (512, 768)  # (height, width), landscape


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@contextlib.contextmanager
def shape_only_sass(record: Optional[list] = None) -> Iterator[list]:
    """Within the block every :class:`~samic_fast.sass.SASS` runs its semantic branch and
    projections as usual but takes the identity scan order and a zero scan output, so a forward
    pass works on the ``meta`` device. Each SASS call appends ``dict(H, W, D, N, K, C_sem, B)``
    to the yielded list (in call order)."""
    from samic_fast import ops
    from samic_fast.sass import SASS

    calls: list = [] if record is None else record

    def scan_order(self, x):
        b, h, w, d = x.shape
        self.semantic(x.permute(0, 3, 1, 2))  # the convolutions of Eq. 1 are real layers
        cfg = self.config
        calls.append(dict(B=b, H=h, W=w, D=d, N=cfg.d_state, K=cfg.num_clusters, C_sem=cfg.c_sem))
        return torch.arange(h * w, device=x.device).expand(b, h * w), None

    def sass_scan(x, *args, **kwargs):
        return torch.zeros_like(x)

    with mock.patch.object(SASS, "scan_order", scan_order), mock.patch.object(ops, "sass_scan", sass_scan):
        yield calls


class _CodecForward(nn.Module):
    """The forward pass the paper's count covers, without the likelihood models: g_a, SVD-RRM,
    h_a, h_s, both checkerboard passes of every slice of the context model, g_s. (CompressAI's
    EntropyBottleneck and GaussianConditional hold no convolutions or linear layers, and their
    quantile bookkeeping cannot run on ``meta`` tensors.)"""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m = self.model
        y = m.svd_rrm(m.g_a(x))
        z = m.h_a(y)
        psi = m.h_s(torch.round(z))
        y_hat, _ = m.context(y, psi, lambda v, scales, means=None: (v, torch.ones_like(v)))
        return m.g_s(y_hat)


def meta_model(config=None) -> nn.Module:
    """A :class:`~samic_fast.model.SAMIC` of ``config`` on the ``meta`` device (no memory)."""
    from samic_fast.model import SAMIC

    with torch.device("meta"):
        return SAMIC(config).eval()


def meta_forward(config, height: int, width: int) -> tuple[nn.Module, list]:
    """Run :class:`_CodecForward` on a meta ``1×3×height×width`` image; returns the wrapped model
    and the recorded SASS calls (see :func:`shape_only_sass`)."""
    fwd = _CodecForward(meta_model(config))
    with shape_only_sass() as calls, torch.no_grad():
        fwd(torch.zeros(1, 3, height, width, device="meta"))
    return fwd, calls


def _thop():
    with warnings.catch_warnings():  # thop 0.1.1 imports distutils (deprecated in Python 3.10+)
        warnings.simplefilter("ignore", DeprecationWarning)
        import thop
        from thop.vision.basic_hooks import count_convNd
    return thop, count_convNd


def thop_macs(module: nn.Module, *inputs: torch.Tensor) -> int:
    """``thop.profile``'s multiply-accumulates of ``module(*inputs)``, with thop's convolution rule
    also for the checkerboard-masked convolution (a Conv2d subclass, which thop matches by exact
    type and would skip) and with the SASS ops shape-only (thop does not see them anyway)."""
    from samic_fast.entropy import CheckerboardMaskedConv2d

    thop, count_convNd = _thop()
    with shape_only_sass(), torch.no_grad():
        macs, _ = thop.profile(module, inputs=inputs, custom_ops={CheckerboardMaskedConv2d: count_convNd},
                               verbose=False)
    return int(macs)


def paper_gmacs(config=None, height: int = THOP_SIZE[0], width: int = THOP_SIZE[1]) -> float:
    """thop multiply-accumulates (in G) of the model of ``config`` on a ``1×3×height×width``
    input; the defaults give the paper's unit (Table 1 "FLOPs")."""
    fwd = _CodecForward(meta_model(config))
    return thop_macs(fwd, torch.zeros(1, 3, height, width, device="meta")) / 1e9


def flop_count(config=None, height: int = KODAK_SIZE[0], width: int = KODAK_SIZE[1]) -> dict:
    """FLOPs of the model of ``config`` on one ``height×width`` image: ``flops`` (total),
    ``network_flops`` (FlopCounterMode), ``scan_flops`` and ``score_flops`` (analytic SASS parts)."""
    fwd = _CodecForward(meta_model(config))
    with shape_only_sass() as calls, torch.no_grad():
        with FlopCounterMode(display=False) as counter:
            fwd(torch.zeros(1, 3, height, width, device="meta"))
    network = int(counter.get_total_flops())
    scans = sum(scan_flops(c["B"], c["H"] * c["W"], c["D"], c["N"]) for c in calls)
    scores = sum(2 * c["B"] * c["H"] * c["W"] * c["K"] * c["C_sem"] for c in calls)
    return {"flops": network + scans + scores, "network_flops": network, "scan_flops": scans,
            "score_flops": scores, "sass_calls": len(calls)}


def model_complexity(model_or_config=None, height: int = KODAK_SIZE[0], width: int = KODAK_SIZE[1]) -> dict:
    """Size and cost of a SAMIC model (or of the model a :class:`~samic_fast.config.SAMICConfig`
    builds; None: the default). Returns ``params``, ``params_M``, ``paper_gmacs_512``,
    ``gflops_768x512``, ``flops_G`` / ``scan_flops_G`` at ``height × width`` (multiples of 64),
    the paper's figures and a ``note``. Counts depend on the configuration only, not on weights,
    device or backend."""
    config = getattr(model_or_config, "config", model_or_config)
    params = count_parameters(model_or_config) if isinstance(model_or_config, nn.Module) \
        else count_parameters(meta_model(config))
    kodak = flop_count(config, *KODAK_SIZE)
    here = kodak if (height, width) == KODAK_SIZE else flop_count(config, height, width)
    return {
        "params": params,
        "params_M": params / 1e6,
        "paper_gmacs_512": paper_gmacs(config),
        "gflops_768x512": kodak["flops"] / 1e9,
        "flops_G": here["flops"] / 1e9,
        "scan_flops_G": here["scan_flops"] / 1e9,
        "height": height,
        "width": width,
        "sass_calls": here["sass_calls"],
        "paper": {"params_M": PAPER_PARAMS_M, "paper_gmacs_512": PAPER_GMACS_512},
        "note": ("paper_gmacs_512: thop MACs at 1x3x512x512 (the paper's unit; scans, cluster scores, "
                 "attention products and the SVD not counted, as thop does not see them); "
                 "gflops_768x512: torch FlopCounterMode, 2 FLOPs per multiply-add, plus 9*B*L*D*N "
                 "per scan and 2*B*L*K*C_sem per cluster assignment"),
    }


__all__ = ["model_complexity", "paper_gmacs", "thop_macs", "flop_count", "count_parameters", "scan_flops",
           "shape_only_sass", "meta_model", "meta_forward", "PAPER_PARAMS_M", "PAPER_GMACS_512",
           "PAPER_BY_K", "THOP_SIZE", "KODAK_SIZE"]
