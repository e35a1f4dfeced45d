"""SAMB: semantic-aware Mamba block (paper §3.2, Fig. 3a).

A VMamba-style block whose 2-D selective scan (SS2D, four directions) is replaced by one
semantic-aware scan (:class:`samic_fast.sass.SASS`)::

    t = LayerNorm(x)                         channel-last (B, H, W, C)
    u, z = Linear_u(t), Linear_z(t)          d_inner = expand * C (VMamba's in_proj, in halves)
    u = SiLU(DepthwiseConv3x3(u))
    y = SASS(u, gate=z)                      y = scan(u) * silu(z), fused into the scan op
    out = x + Linear(LayerNorm(y))

The gate ``silu(z)`` is applied inside the scan op (Mamba-1 places it there; it saves a pass
over ``(B, L, d_inner)``), and the output norm follows it. Like MambaIC's blocks, there is no MLP.

Every layer with weights is a module called as a module (the two halves of VMamba's ``in_proj``
are two ``nn.Linear``): module-hook profilers such as ``thop`` then see all of them
(:mod:`samic_fast.complexity`). Each half's output is contiguous and the full ``2 * d_inner``
projection is never alive at once.
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

from samic_fast.config import SASSConfig
from samic_fast.sass import SASS


class SAMB(nn.Module):
    """``forward(x)``: ``(B, C, H, W) -> (B, C, H, W)`` with ``C = dim``.

    The block works channel-last. ``contiguous_output`` (not state; :func:`samb_stack` sets it)
    says what it returns: True (the default), a contiguous ``(B, C, H, W)`` tensor; False, its
    channel-last result viewed as ``(B, C, H, W)`` (``channels_last`` memory), for a next SAMB
    whose layer norm then reads it without a copy. Values are the same either way; in a stack of
    n blocks that is one layout copy at each end instead of one per block (the norm of a
    ``(B, C, H, W)`` input viewed channel-last copies it first on CUDA).
    """

    contiguous_output: bool = True

    def __init__(self, dim: int, config: Optional[SASSConfig] = None) -> None:
        super().__init__()
        cfg = config or SASSConfig()
        d_inner = cfg.inner_dim(dim)
        self.dim, self.d_inner = dim, d_inner
        self.norm = nn.LayerNorm(dim)
        self.in_proj_x = nn.Linear(dim, d_inner, bias=False)
        self.in_proj_z = nn.Linear(dim, d_inner, bias=False)
        self.conv = nn.Conv2d(d_inner, d_inner, cfg.conv_kernel, padding=cfg.conv_kernel // 2,
                              groups=d_inner)
        self.sass = SASS(d_inner, cfg, d_model=dim)
        self.out_norm = nn.LayerNorm(d_inner)
        self.out_proj = nn.Linear(d_inner, dim, bias=False)

    @property
    def backend(self) -> str:
        return self.sass.backend

    @backend.setter
    def backend(self, value: str) -> None:
        self.sass.backend = value

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != self.dim:
            from samic_fast.errors import ShapeError

            raise ShapeError(f"SAMB({self.dim}) expects (B, {self.dim}, H, W), got {tuple(x.shape)}")
        t = x.permute(0, 2, 3, 1)  # (B, H, W, C)
        normed = self.norm(t)
        u = self.in_proj_x(normed).permute(0, 3, 1, 2)
        u = F.silu(self.conv(u), inplace=not torch.is_grad_enabled())
        # A channel-last view, no copy: the convolution's output layout (channels_last under
        # cuDNN, whose input here is a channels_last view) goes to the scan, which takes strides.
        u = u.permute(0, 2, 3, 1)
        z = self.in_proj_z(normed)
        del normed
        y = self.sass(u, z)
        del u, z
        res = self.out_proj(self.out_norm(y))
        # An elementwise result takes the layout of its first operand when they differ, and
        # t + res == res + t exactly: t first keeps x's (B, C, H, W) layout, so returning it
        # contiguous is free when x was; res first keeps it channel-last for the next SAMB.
        if self.contiguous_output:
            return (t + res).permute(0, 3, 1, 2).contiguous()
        return (res + t).permute(0, 3, 1, 2)


def samb_stack(dim: int, depth: int, config: Optional[SASSConfig] = None) -> list[SAMB]:
    """``depth`` SAMBs of width ``dim`` to run one after another (splice them into an
    ``nn.Sequential``): all but the last hand the next their result without a layout copy
    (:attr:`SAMB.contiguous_output`); the stack's output is contiguous as a single block's is."""
    blocks = [SAMB(dim, config) for _ in range(depth)]
    for block in blocks[:-1]:
        block.contiguous_output = False
    return blocks


def set_backend(module: nn.Module, backend: str) -> nn.Module:
    """Switch every SASS inside ``module`` to ``backend`` ("auto", "reference", "triton") and
    return ``module``. The one place a backend is chosen: modules are built with "auto".
    An unknown name raises :class:`~samic_fast.errors.BackendError` here, not at the first call."""
    from samic_fast.backend import BACKENDS
    from samic_fast.errors import BackendError

    if backend not in BACKENDS:
        raise BackendError(f"unknown backend {backend!r}; expected one of {BACKENDS}")
    for m in module.modules():
        if isinstance(m, SASS):
            m.backend = backend
    return module
