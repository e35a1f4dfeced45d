"""SVD-RRM: SVD-inspired redundancy reduction module (paper §3.3, Fig. 4, Eq. 7–10).

For each image the latent ``H (C, H, W)`` is flattened to ``H~ (C, N)`` with ``N = H·W`` and
decomposed, ``H~ = U diag(s) V^T`` (Eq. 7). A learnable soft threshold shrinks the singular
values, ``s'_i = max(s_i - θ, 0)`` (Eq. 8); the low-rank feature ``Ĥ = U diag(s') V^T`` (Eq. 9)
corrects ``H`` with a learnable strength: ``y = H + α (Ĥ - H)`` (Eq. 10).

``θ = 0`` gives ``Ĥ = H`` (up to float rounding) whatever ``α``; ``α = 0`` disables the module;
a large ``θ`` removes the smallest components, lowering the rank of ``Ĥ``. Gradients reach ``θ``
through ``s'`` and ``α`` directly. It sits at the end of g_a, so only the encoder runs it: the
decoder never needs it and its float behaviour cannot affect decoding.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from samic_fast.errors import ShapeError


class SVDRRM(nn.Module):
    """``forward(h)``: ``(B, C, H, W) -> (B, C, H, W)``, per-image low-rank correction (Eq. 7–10).

    Args:
        theta: initial soft threshold θ (paper: learnable; 0 makes the module an identity).
        alpha: initial residual strength α.
    """

    def __init__(self, theta: float = 0.0, alpha: float = 1.0) -> None:
        super().__init__()
        self.theta = nn.Parameter(torch.tensor(float(theta)))
        self.alpha = nn.Parameter(torch.tensor(float(alpha)))

    def low_rank(self, h: torch.Tensor) -> torch.Tensor:
        """Eq. 7–9: ``Ĥ`` of shape ``(B, C, H, W)``. Computed in float32 at least (SVD in half
        precision is not supported and would be inaccurate)."""
        b, c, hh, ww = h.shape
        cd = torch.float64 if h.dtype == torch.float64 else torch.float32
        mat = h.reshape(b, c, hh * ww).to(cd)
        u, s, vh = torch.linalg.svd(mat, full_matrices=False)  # u (B,C,k), s (B,k), vh (B,k,N)
        s_shrunk = torch.relu(s - self.theta.to(cd))
        low = (u * s_shrunk[:, None, :]) @ vh
        return low.reshape(b, c, hh, ww).to(h.dtype)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        if h.dim() != 4:
            raise ShapeError(f"SVDRRM expects (B, C, H, W), got shape {tuple(h.shape)}")
        if h.numel() == 0:
            raise ShapeError(f"SVDRRM got an empty tensor of shape {tuple(h.shape)}")
        return h + self.alpha.to(h.dtype) * (self.low_rank(h) - h)

    def extra_repr(self) -> str:
        return f"theta={float(self.theta):.4g}, alpha={float(self.alpha):.4g}"
