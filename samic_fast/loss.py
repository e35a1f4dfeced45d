"""Training objective (paper §3.5, Eq. 13–15): rate + λ·distortion + β·perception.

``L = R + λ · 255² · MSE(x̂, x) + β · P(x̂, x)`` with the rate ``R`` in bits per pixel (Eq. 14:
``-Σ log2 p / N_pix`` over all likelihoods) and ``P`` a pluggable perceptual term (LPIPS in the
paper, Eq. 15, β = 3.5).

Where λ goes: Eq. 13 as printed weights the rate (``λ·R + D + β·P``), but the λ values of §4.2
({0.0035, 0.0067, 0.013, 0.025}, one model per bitrate) are CompressAI's λ on the 255²-scaled MSE
(a larger λ gives a higher bitrate), so the loss weights the distortion, as CompressAI's
``RateDistortionLoss`` does. ``lambda_on="rate"`` gives the printed form instead.

The perceptual term is any callable ``(x_hat, x) -> scalar tensor``. ``perceptual="lpips"`` uses
the ``lpips`` package (AlexNet) only when it and its weights are already installed — nothing is
downloaded; otherwise the term is skipped with a warning and reported as ``None``.
"""

from __future__ import annotations

import math
import warnings
from typing import Callable, Optional, Union

import torch
import torch.nn as nn
import torch.nn.functional as F

from samic_fast.errors import ShapeError

PerceptualFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def bits_per_pixel(likelihoods: dict, num_pixels: int) -> torch.Tensor:
    """Eq. 14: ``-Σ log2 p / N_pix`` summed over every likelihood tensor (``y`` and ``z``)."""
    total = sum(torch.log(lik).sum() for lik in likelihoods.values())
    return -total / (math.log(2) * num_pixels)


#: The torchvision AlexNet backbone LPIPS builds on, as torch.hub caches it.
LPIPS_BACKBONE = "alexnet-owt-7be5be79.pth"


def load_lpips() -> tuple:
    """``(fn, None)`` with ``fn(x_hat, x)`` LPIPS-AlexNet on [0, 1] images (mean over the batch),
    or ``(None, reason)`` when the ``lpips`` package or its AlexNet backbone is not installed
    locally. Never downloads: the backbone must already be in torch.hub's cache."""
    import os

    try:
        import lpips  # type: ignore  # imports torchvision too
    except ImportError as exc:
        return None, f"the lpips package cannot be imported ({exc}); pip install lpips torchvision"
    backbone = os.path.join(torch.hub.get_dir(), "checkpoints", LPIPS_BACKBONE)
    if not os.path.exists(backbone):
        return None, f"LPIPS's AlexNet weights are not installed ({backbone} is missing; nothing is downloaded)"
    net = lpips.LPIPS(net="alex", verbose=False).eval()
    for p in net.parameters():
        p.requires_grad_(False)

    def fn(x_hat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        net.to(x.device)
        return net(x_hat * 2 - 1, x * 2 - 1).mean()  # LPIPS expects [-1, 1]

    return fn, None


def lpips_or_none() -> Optional[PerceptualFn]:
    """LPIPS-AlexNet as a callable on [0, 1] images, or None (with a warning saying why) when the
    ``lpips`` package or the AlexNet weights are not installed. Never downloads."""
    fn, reason = load_lpips()
    if fn is None:
        warnings.warn(f"the perceptual term of Eq. 13 is skipped: {reason}", RuntimeWarning, stacklevel=3)
    return fn


class RateDistortionPerceptionLoss(nn.Module):
    """Eq. 13. ``forward(output, target)`` with ``output`` a CompressAI model output
    (``{"x_hat", "likelihoods"}``) and ``target (B, 3, H, W)`` in [0, 1]. Returns a dict:
    ``loss``, ``bpp_loss``, ``mse_loss``, ``perceptual_loss`` (None when skipped)."""

    def __init__(self, lmbda: float = 0.013, beta: float = 3.5,
                 perceptual: Union[None, str, PerceptualFn] = "lpips", lambda_on: str = "distortion") -> None:
        super().__init__()
        if lmbda < 0 or beta < 0:
            raise ValueError("lmbda and beta must be >= 0")
        if lambda_on not in ("distortion", "rate"):
            raise ValueError(f"lambda_on must be 'distortion' or 'rate', got {lambda_on!r}")
        self.lmbda, self.beta, self.lambda_on = float(lmbda), float(beta), lambda_on
        if perceptual == "lpips":
            perceptual = lpips_or_none() if beta > 0 else None
        elif isinstance(perceptual, str):
            raise ValueError(f"unknown perceptual term {perceptual!r}; pass 'lpips', a callable or None")
        self.perceptual = perceptual

    def forward(self, output: dict, target: torch.Tensor) -> dict:
        x_hat = output["x_hat"]
        if x_hat.shape != target.shape:
            raise ShapeError(f"x_hat {tuple(x_hat.shape)} and target {tuple(target.shape)} differ")
        n, _, h, w = target.shape
        bpp = bits_per_pixel(output["likelihoods"], n * h * w)
        mse = F.mse_loss(x_hat, target)
        distortion = 255.0 ** 2 * mse
        if self.lambda_on == "distortion":
            loss = bpp + self.lmbda * distortion
        else:
            loss = self.lmbda * bpp + distortion
        perc = None
        if self.perceptual is not None and self.beta > 0:
            perc = self.perceptual(x_hat, target)
            loss = loss + self.beta * perc
        return {"loss": loss, "bpp_loss": bpp, "mse_loss": mse, "perceptual_loss": perc}


__all__ = ["RateDistortionPerceptionLoss", "bits_per_pixel", "lpips_or_none", "load_lpips"]
