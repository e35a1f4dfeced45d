"""SASS: semantic-aware selective scan (paper §3.2, Fig. 3b; docs/design.md §1).

The mixer of a :class:`samic_fast.samb.SAMB`. Given the block's inner features ``x`` (after the
depthwise convolution and SiLU, channel-last ``(B, H, W, D)``) it

1. extracts semantic features ``f = Conv1x1(SiLU(Conv3x3(SiLU(Conv3x3(x)))))`` (Eq. 1),
2. assigns every pixel to one of K learnable centers by cosine similarity of ``f`` plus the
   sinusoidal positional encoding (Eq. 2–3): argmax in eval, straight-through Gumbel-softmax in
   training,
3. orders the clusters by their mean (row, col) position and the pixels inside each cluster by
   raster order (Eq. 4) into a permutation ``perm``,
4. runs one Mamba-1 selective scan along ``perm`` and scatters the outputs back to raster order
   (Eq. 5–6), fused into one op on the triton backend.

Gradients: the order itself is discrete. In training the hard one-hot assignment ``q`` (value
exactly one-hot, gradient of the softmax) multiplies the scan output through the gate
``g_i = sum_k q_{k,i} * stopgrad(q_{k,i})``, whose value is 1, so the forward pass is unchanged
while the centers, ``tau`` and the semantic branch receive gradients. Eval mode has no gate.
"""

from __future__ import annotations

import math
from typing import Callable, Optional, Protocol

import torch
import torch.nn as nn
import torch.nn.functional as F

from samic_fast import ops, ref
from samic_fast.config import SASSConfig


class AssignmentGuard(Protocol):
    """Hook that may override an eval-mode hard assignment (the codec's near-tie guard)."""

    def cluster(self, feat: torch.Tensor, centers: torch.Tensor, tau: torch.Tensor,
                cluster: torch.Tensor) -> torch.Tensor: ...


class SemanticBranch(nn.Sequential):
    """Eq. 1: ``Conv1x1(SiLU(Conv3x3(SiLU(Conv3x3(x)))))``, ``(B, D, H, W) -> (B, c_sem, H, W)``."""

    def __init__(self, in_channels: int, c_sem: int) -> None:
        super().__init__(
            nn.Conv2d(in_channels, c_sem, 3, padding=1),
            nn.SiLU(),
            nn.Conv2d(c_sem, c_sem, 3, padding=1),
            nn.SiLU(),
            nn.Conv2d(c_sem, c_sem, 1),
        )


class SASS(nn.Module):
    """Semantic-aware selective scan over ``d_inner`` channels.

    ``forward(x, z=None)``: ``x, z: (B, H, W, d_inner)`` channel-last; returns ``(B, H, W, d_inner)``.
    ``d_model`` is the width of the enclosing block (it sets ``dt_rank = ceil(d_model / 16)``, as
    VMamba and MambaIC do); by default ``d_inner / expand``. The attribute ``backend`` ("auto",
    "reference", "triton") selects the op implementations; set it for a whole model with
    :meth:`samic_fast.model.SAMIC.set_backend` or :func:`samic_fast.samb.set_backend`.

    Two eval-mode hooks, both ``None`` by default and neither part of the state_dict:
    ``guard`` (an :class:`AssignmentGuard`) may override the hard assignment at near-tie pixels
    before the scan order is built, so that the codec's encoder and decoder scan in the same order
    whatever their backends (:mod:`samic_fast.entropy_params`); ``feature_hook`` transforms the
    semantic features first (tests use it to emulate another backend's rounding).
    """

    guard: Optional[AssignmentGuard] = None
    feature_hook: Optional[Callable[[torch.Tensor], torch.Tensor]] = None

    backend: str = "auto"

    def __init__(self, d_inner: int, config: Optional[SASSConfig] = None, d_model: Optional[int] = None) -> None:
        super().__init__()
        cfg = config or SASSConfig()
        self.config = cfg
        self.d_inner = d_inner
        if d_model is None:
            d_model = max(1, int(round(d_inner / cfg.expand)))
        n, rank = cfg.d_state, cfg.resolved_dt_rank(d_model)
        self.dt_rank = rank
        self.semantic = SemanticBranch(d_inner, cfg.c_sem)
        self.centers = nn.Parameter(torch.randn(cfg.num_clusters, cfg.c_sem))
        if cfg.learnable_tau:
            self.log_tau = nn.Parameter(torch.tensor(math.log(cfg.tau)))
        else:
            self.register_buffer("log_tau", torch.tensor(math.log(cfg.tau)), persistent=False)
        # Per-token projections, applied in raster order: a per-token linear map commutes with any
        # permutation, so projecting before the gather is exact (docs/design.md §1).
        self.x_proj = nn.Linear(d_inner, rank + 2 * n, bias=False)
        self.dt_proj = nn.Linear(rank, d_inner, bias=False)
        self.dt_bias = nn.Parameter(torch.empty(d_inner))
        self.A_log = nn.Parameter(torch.log(torch.arange(1, n + 1, dtype=torch.float32)).repeat(d_inner, 1))
        self.D = nn.Parameter(torch.ones(d_inner))
        self.reset_dt()

    @torch.no_grad()
    def reset_dt(self, generator: Optional[torch.Generator] = None) -> None:
        """Mamba's initialisation: ``softplus(dt_bias)`` log-uniform in ``[dt_min, dt_max]``."""
        cfg = self.config
        u = torch.rand(self.d_inner, generator=generator)
        dt = torch.exp(u * (math.log(cfg.dt_max) - math.log(cfg.dt_min)) + math.log(cfg.dt_min))
        dt = dt.clamp_min(cfg.dt_init_floor)
        self.dt_bias.copy_(dt + torch.log(-torch.expm1(-dt)))  # inverse softplus

    @property
    def tau(self) -> torch.Tensor:
        return self.log_tau.exp()

    def scan_order(self, x: torch.Tensor) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
        """Permutation ``perm (B, L)`` for channel-last ``x``, and in training the straight-through
        gate ``(B, L, 1)`` (None in eval)."""
        b, h, w, _ = x.shape
        feat = self.semantic(x.permute(0, 3, 1, 2))
        if self.training:
            scores = ref.cluster_scores_ref(feat, self.centers, self.tau)  # (B, L, K)
            q = F.gumbel_softmax(scores, tau=self.config.gumbel_tau, hard=True, dim=-1)
            cluster = q.detach().argmax(dim=-1).to(torch.int32)
            sums = ref.cluster_sums_ref(cluster, self.config.num_clusters, h, w)
            gate = (q * q.detach()).sum(dim=-1, keepdim=True).to(x.dtype)
        else:
            if self.feature_hook is not None:
                feat = self.feature_hook(feat)
            # feat as the convolution left it (channels_last under cuDNN): the op takes strides.
            tau = self.tau.detach()
            cluster, *sums = ops.cluster_assign(feat, self.centers, tau, backend=self.backend)
            if self.guard is not None:
                guarded = self.guard.cluster(feat, self.centers, tau, cluster)
                if guarded is not cluster:
                    # Exact integer sums of the overridden assignment: identical on every backend.
                    cluster = guarded.contiguous()
                    sums = list(ref.cluster_sums_ref(cluster, self.config.num_clusters, h, w))
            gate = None
        perm, _ = ops.scan_order(cluster, *sums, h, w, backend=self.backend)
        return perm, gate

    def scan_A(self) -> torch.Tensor:
        """``A = -exp(A_log)`` in float32, ``(d_inner, d_state)``.

        Without autograd (eval, inference) it is cached: a codec pass calls each SASS once or
        more per image, and recomputing it would cost two kernel launches a call for a value that
        only changes when ``A_log`` does. The cache is keyed on ``A_log``'s storage, device and
        version counter (bumped by every in-place update: optimizer steps, ``load_state_dict``,
        ``.copy_``), so it never serves a stale value; it is a plain attribute, not state."""
        a_log = self.A_log
        if torch.is_grad_enabled() or torch.compiler.is_compiling():
            return -torch.exp(a_log.float())
        key = (a_log.data_ptr(), a_log.device, a_log._version)
        cached = self.__dict__.get("_A_cache")
        if cached is None or cached[0] != key:
            cached = self.__dict__["_A_cache"] = (key, -torch.exp(a_log.detach().float()))
        return cached[1]

    def forward(self, x: torch.Tensor, z: Optional[torch.Tensor] = None) -> torch.Tensor:
        b, h, w, d = x.shape
        perm, gate = self.scan_order(x)
        # Views, not copies: the scan ops take any strides (the fused kernel reads each tensor
        # through its strides; the reference gathers rows), so x in whatever layout the
        # convolution left it, the Bm/Cm column slices of the projection and z go in as they are.
        tokens = x.reshape(b, h * w, d)
        proj = self.x_proj(tokens)
        dt_low, bm, cm = proj.split([self.dt_rank, self.config.d_state, self.config.d_state], dim=-1)
        dt = self.dt_proj(dt_low)
        y = ops.sass_scan(
            tokens, dt, self.scan_A(), bm, cm, perm, D=self.D.float(),
            z=None if z is None else z.reshape(b, h * w, d),
            dt_bias=self.dt_bias.float(), delta_softplus=True, backend=self.backend,
        )
        if gate is not None:
            y = y * gate
        return y.reshape(b, h, w, d)
