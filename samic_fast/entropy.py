"""Spatial-channel context entropy model (paper §3.4, Eq. 11–12; after MambaIC's, with SAMBs).

The latent ``ŷ (B, M, h, w)`` is cut into ``J`` channel slices of ``S = M / J`` channels, coded
one after the other; inside a slice a checkerboard splits the positions into *anchors*
(``(r + c)`` even) coded first and *non-anchors* coded second. For slice ``j``:

- channel context ``Φ_ch^(j)`` (Eq. 11, left): ``SAMB`` stack over ``concat(Ψ, ŷ^{<j})``, one for
  the mean path (with ``Ψ_μ``) and one for the scale path (with ``Ψ_σ``) → ``(μ_ch, σ_ch)``,
  ``S`` channels each;
- spatial context ``Φ_sp`` (Eq. 11, right, ``SAMB(ŷ^j_{<i})``): in the non-anchor pass the
  slice's decoded anchors (zero at non-anchors) go through the 5×5 checkerboard-masked
  convolution that Eq. 12 names (local context) and then a ``SAMB`` stack (global context over
  every decoded symbol of the slice) → ``2S`` channels; in the anchor pass nothing of the slice is
  decoded yet and ``Φ_sp = 0``. Every output position depends on anchors only, so the decoder
  can compute it. ``sp_depth = 0`` leaves the masked convolution alone (the first release);
- parameter network ``𝒩`` (Eq. 12): ``concat(Φ_sp, μ_ch, σ_ch, Ψ)`` → 1×1 conv → ``SAMB`` stack
  (``agg_depth``; a GELU when it is 0) → 3×3 conv → ``(μ, log σ)``, each refined by a window
  local attention (WLA, Swin-style window self-attention with relative position bias).

The same two functions (:meth:`ContextEntropyModel.slice_support`, :meth:`ContextEntropyModel.
pass_params`) serve training (:meth:`ContextEntropyModel.forward`) and coding
(:meth:`ContextEntropyModel.code`); coding quantizes the parameters through a
:class:`samic_fast.entropy_params.ParamGuard` so that every backend decodes identical ``ŷ``.
"""

from __future__ import annotations

from typing import Callable, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

from samic_fast.config import SAMICConfig, SASSConfig
from samic_fast.entropy_params import ParamGuard
from samic_fast.samb import samb_stack

# Numerical range of the predicted log-scales: exp(-5) is far below the scale table's lower
# bound (0.11), exp(6) = 403 above its top (256); the clamp only stops overflow early in training.
LOG_SCALE_MIN, LOG_SCALE_MAX = -5.0, 6.0


# ---------------------------------------------------------------- checkerboard
def anchor_mask(height: int, width: int, device=None) -> torch.Tensor:
    """``(1, 1, H, W)`` bool, True at anchors (``(r + c)`` even), coded in the first pass."""
    r = torch.arange(height, device=device)[:, None]
    c = torch.arange(width, device=device)[None, :]
    return ((r + c) % 2 == 0)[None, None]


class CheckerboardMaskedConv2d(nn.Conv2d):
    """Conv whose kernel only sees anchor neighbours of a non-anchor centre: taps at offsets
    ``(di, dj)`` with ``di + dj`` odd (for 5×5: 12 of 25 taps). ``(B, Cin, H, W) -> (B, Cout, H, W)``.
    The mask multiplies the weight in ``forward`` (never in place), so the weight stays a plain
    parameter and masked taps get zero gradient."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 5) -> None:
        super().__init__(in_channels, out_channels, kernel_size, padding=kernel_size // 2)
        k = torch.arange(kernel_size)
        mask = ((k[:, None] + k[None, :]) % 2 == 1).float()
        self.register_buffer("mask", mask[None, None].expand_as(self.weight).clone(), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(x, self.weight * self.mask, self.bias)


# ---------------------------------------------------------------- window local attention
class WindowBlock(nn.Module):
    """Swin-style block on non-overlapping ``ws × ws`` windows: ``t += MSA(LN(t))``,
    ``t += MLP(LN(t))``; relative position bias per head. ``(B, C, H, W) -> (B, C, H, W)``.

    Sizes that are not multiples of ``ws`` are zero-padded; padded keys are masked out, so
    results at real positions do not depend on the padding.
    """

    def __init__(self, dim: int, head_dim: int, window: int, mlp_ratio: float) -> None:
        super().__init__()
        self.dim, self.window = dim, window
        self.heads = max(1, dim // head_dim)
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        hidden = int(round(dim * mlp_ratio))
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))
        self.rel_bias = nn.Parameter(torch.zeros(self.heads, (2 * window - 1) ** 2))
        idx = torch.arange(window)
        rr, cc = torch.meshgrid(idx, idx, indexing="ij")
        rr, cc = rr.flatten(), cc.flatten()
        rel = (rr[:, None] - rr[None, :] + window - 1) * (2 * window - 1) + (cc[:, None] - cc[None, :] + window - 1)
        self.register_buffer("rel_index", rel, persistent=False)

    def attention_mask(self, h: int, w: int, dtype: torch.dtype, device) -> torch.Tensor:
        """Additive mask ``(1, windows, heads, ws², ws²)`` of an ``h × w`` input: the relative
        position bias plus ``-inf`` at padded keys.

        Without autograd it is cached per ``(h, w, dtype, device)``: it depends only on them and
        on ``rel_bias`` (its storage and version counter are part of the key, so an update is
        never missed), and building it costs about eight small launches per call. Not state."""
        if torch.is_grad_enabled() or torch.compiler.is_compiling():
            return self._attention_mask(h, w, dtype, device)
        bias = self.rel_bias
        key = (h, w, dtype, str(device), bias.data_ptr(), bias._version)
        cache = self.__dict__.setdefault("_mask_cache", {})
        mask = cache.get(key)
        if mask is None:
            if len(cache) >= 16:  # a handful of resolutions per image; never grow without bound
                cache.clear()
            mask = cache[key] = self._attention_mask(h, w, dtype, device)
        return mask

    def _attention_mask(self, h: int, w: int, dtype: torch.dtype, device) -> torch.Tensor:
        ws = self.window
        ph, pw = -h % ws, -w % ws
        nh, nw = (h + ph) // ws, (w + pw) // ws
        valid = F.pad(torch.ones(1, 1, h, w, device=device, dtype=torch.bool), (0, pw, 0, ph))
        valid = valid.reshape(nh, ws, nw, ws).permute(0, 2, 1, 3).reshape(1, nh * nw, 1, 1, ws * ws)
        bias = self.rel_bias[:, self.rel_index].to(dtype)  # (heads, ws², ws²)
        return bias[None, None] + torch.where(valid, 0.0, float("-inf")).to(dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        ws = self.window
        ph, pw = -h % ws, -w % ws
        # F.pad copies even when it pads nothing: skip it then (the window reshape copies anyway).
        t = (F.pad(x, (0, pw, 0, ph)) if ph or pw else x).permute(0, 2, 3, 1)  # (B, Hp, Wp, C)
        hp, wp = h + ph, w + pw
        nh, nw = hp // ws, wp // ws
        tok = t.reshape(b, nh, ws, nw, ws, c).permute(0, 1, 3, 2, 4, 5).reshape(b * nh * nw, ws * ws, c)
        mask = self.attention_mask(h, w, tok.dtype, x.device)
        mask = mask.expand(b, nh * nw, self.heads, ws * ws, ws * ws).reshape(-1, self.heads, ws * ws, ws * ws)

        q, k, v = self.qkv(self.norm1(tok)).reshape(tok.shape[0], ws * ws, 3, self.heads, c // self.heads) \
            .permute(2, 0, 3, 1, 4)
        att = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        tok = tok + self.proj(att.transpose(1, 2).reshape(tok.shape[0], ws * ws, c))
        tok = tok + self.mlp(self.norm2(tok))
        out = tok.reshape(b, nh, nw, ws, ws, c).permute(0, 5, 1, 3, 2, 4).reshape(b, c, hp, wp)
        return out[:, :, :h, :w].contiguous()


class WLA(nn.Module):
    """Window local attention on ``S`` channels (§3.4): ``x + Conv1x1(WindowBlock(Conv1x1(x)))``
    at width ``inner``. ``(B, S, H, W) -> (B, S, H, W)``."""

    def __init__(self, channels: int, inner: int, head_dim: int, window: int, mlp_ratio: float) -> None:
        super().__init__()
        self.inp = nn.Conv2d(channels, inner, 1)
        self.block = WindowBlock(inner, head_dim, window, mlp_ratio)
        self.out = nn.Conv2d(inner, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.out(self.block(self.inp(x)))


# ---------------------------------------------------------------- per-slice networks
def _conv(cin: int, cout: int, k: int) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, k, padding=k // 2)


class ChannelContext(nn.Sequential):
    """``Φ_ch`` for one path (Eq. 11): ``Conv1x1 → SAMB × depth → Conv3x3 → GELU → Conv3x3``,
    ``(B, cin, h, w) -> (B, S, h, w)``."""

    def __init__(self, cin: int, width: int, hidden: int, out: int, depth: int, sass: SASSConfig) -> None:
        super().__init__(_conv(cin, width, 1), *samb_stack(width, depth, sass),
                         _conv(width, hidden, 3), nn.GELU(), _conv(hidden, out, 3))


class SpatialContext(nn.Sequential):
    """``Φ_sp`` of the non-anchor pass (Eq. 11, right): ``MaskedConv5x5 → SAMB × depth → Conv1x1``
    at width ``width``, ``(B, S, h, w) -> (B, out, h, w)``; with ``depth = 0`` the masked
    convolution alone, straight to ``out`` channels."""

    def __init__(self, channels: int, width: int, out: int, depth: int, sass: SASSConfig) -> None:
        if depth == 0:
            super().__init__(CheckerboardMaskedConv2d(channels, out, 5))
        else:
            super().__init__(CheckerboardMaskedConv2d(channels, width, 5), *samb_stack(width, depth, sass),
                             _conv(width, out, 1))


class ParamAggregation(nn.Sequential):
    """``𝒩`` before the WLA (Eq. 12): ``Conv1x1 → SAMB × depth → Conv3x3`` (a GELU in place of
    the SAMBs when ``depth = 0``), ``-> (B, 2S, h, w)``."""

    def __init__(self, cin: int, width: int, out: int, depth: int, sass: SASSConfig) -> None:
        mixer = samb_stack(width, depth, sass) if depth else [nn.GELU()]
        super().__init__(_conv(cin, width, 1), *mixer, _conv(width, out, 3))


def grid_ste(mu: torch.Tensor, grid: int) -> torch.Tensor:
    """``round(μ·G)/G`` in the forward pass, identity gradient (straight-through)."""
    return mu + (torch.round(mu * grid) / grid - mu).detach()


def round_ste(x: torch.Tensor) -> torch.Tensor:
    return x + (torch.round(x) - x).detach()


class ContextEntropyModel(nn.Module):
    """Parameters of ``p(ŷ | ẑ)`` slice by slice and pass by pass (see the module docstring).

    ``psi``: the hyper-decoder output ``(B, 2M, h, w)``, ``Ψ_μ`` then ``Ψ_σ``.
    """

    def __init__(self, config: SAMICConfig) -> None:
        super().__init__()
        cfg = config
        self.config = cfg
        c5, c6 = int(cfg.channels[4]), int(cfg.channels[5])
        m, s, j = cfg.M, cfg.slice_channels, cfg.num_slices
        self.M, self.S, self.J = m, s, j
        sup = [self._support_count(i) for i in range(j)]
        self.mean_ctx = nn.ModuleList(
            ChannelContext(m + s * sup[i], c6, c5, s, cfg.ctx_depth, cfg.sass) for i in range(j))
        self.scale_ctx = nn.ModuleList(
            ChannelContext(m + s * sup[i], c6, c5, s, cfg.ctx_depth, cfg.sass) for i in range(j))
        self.sp_ctx = nn.ModuleList(SpatialContext(s, c5, 2 * s, cfg.sp_depth, cfg.sass) for _ in range(j))
        self.agg = nn.ModuleList(
            ParamAggregation(4 * s + 2 * m, c5, 2 * s, cfg.agg_depth, cfg.sass) for _ in range(j))
        self.wla_mean = nn.ModuleList(WLA(s, c5, cfg.head_dim, cfg.window_size, cfg.mlp_ratio) for _ in range(j))
        self.wla_scale = nn.ModuleList(WLA(s, c5, cfg.head_dim, cfg.window_size, cfg.mlp_ratio) for _ in range(j))

    def _support_count(self, j: int) -> int:
        k = self.config.max_support_slices
        return j if k < 0 else min(j, k)

    def slice_support(self, j: int, psi: torch.Tensor, prev: list[torch.Tensor]):
        """``(μ_ch, σ_ch)`` of slice ``j`` from ``Ψ`` and the decoded slices ``ŷ^{<j}``."""
        psi_mu, psi_sigma = psi.chunk(2, dim=1)
        support = prev[: self._support_count(j)]
        mu_ch = self.mean_ctx[j](torch.cat([psi_mu, *support], dim=1))
        sigma_ch = self.scale_ctx[j](torch.cat([psi_sigma, *support], dim=1))
        return mu_ch, sigma_ch

    def pass_params(self, j: int, psi, mu_ch, sigma_ch, anchors_hat: Optional[torch.Tensor]):
        """``(μ, log σ)`` ``(B, S, h, w)`` for the anchor pass (``anchors_hat=None``) or the
        non-anchor pass (``anchors_hat``: the slice's decoded anchors, zero at non-anchors)."""
        if anchors_hat is None:
            ctx = psi.new_zeros(psi.shape[0], 2 * self.S, *psi.shape[2:])
        else:
            ctx = self.sp_ctx[j](anchors_hat)
        h = self.agg[j](torch.cat([ctx, mu_ch, sigma_ch, psi], dim=1))
        mu, log_sigma = h.chunk(2, dim=1)
        mu = self.wla_mean[j](mu)
        log_sigma = self.wla_scale[j](log_sigma).clamp(LOG_SCALE_MIN, LOG_SCALE_MAX)
        return mu, log_sigma

    def forward(self, y: torch.Tensor, psi: torch.Tensor, gaussian_conditional):
        """Training/eval pass: ``(ŷ, likelihoods)``, both ``(B, M, h, w)``; ``ŷ`` rounded with a
        straight-through gradient around grid-quantized means, as the coder does."""
        grid = self.config.mean_grid
        anchors = anchor_mask(y.shape[2], y.shape[3], y.device)
        y_hat_slices, likelihoods = [], []
        for j, y_j in enumerate(y.chunk(self.J, dim=1)):
            mu_ch, sigma_ch = self.slice_support(j, psi, y_hat_slices)
            mu_a, ls_a = self.pass_params(j, psi, mu_ch, sigma_ch, None)
            mu_qa = grid_ste(mu_a, grid)
            anchors_hat = torch.where(anchors, round_ste(y_j - mu_qa) + mu_qa, torch.zeros_like(y_j))
            mu_n, ls_n = self.pass_params(j, psi, mu_ch, sigma_ch, anchors_hat)
            mu_q = grid_ste(torch.where(anchors, mu_a, mu_n), grid)
            sigma = torch.exp(torch.where(anchors, ls_a, ls_n))
            _, lik = gaussian_conditional(y_j, sigma, means=mu_q)
            likelihoods.append(lik)
            y_hat_slices.append(round_ste(y_j - mu_q) + mu_q)
        return torch.cat(y_hat_slices, dim=1), torch.cat(likelihoods, dim=1)

    @torch.no_grad()
    def code(self, psi: torch.Tensor, guard: ParamGuard, tables: tuple, *, y: Optional[torch.Tensor] = None,
             encoder=None, decoder=None,
             param_hook: Optional[Callable[[str, torch.Tensor], torch.Tensor]] = None) -> torch.Tensor:
        """Encode ``y`` into ``encoder`` or decode from ``decoder``; returns the exact ``ŷ``.

        ``tables = (cdfs, cdf_lengths, offsets)`` as lists (CompressAI's GaussianConditional).
        Both directions run the same sequence of guarded decisions (``guard``): per slice the
        SAMBs of ``Φ_ch``, then per pass the aggregation SAMBs, the means and the scale indices.
        Symbols ``round(y - μ_q)`` are coded in row-major order of the pass's positions.
        ``param_hook(name, tensor)`` (tests only) may alter ``μ`` / ``log σ`` before quantization.
        """
        b, _, h, w = psi.shape
        anchors = anchor_mask(h, w, psi.device)
        passes = (anchors, ~anchors)
        y_slices = y.chunk(self.J, dim=1) if y is not None else None
        y_hat_slices: list[torch.Tensor] = []
        for j in range(self.J):
            mu_ch, sigma_ch = self.slice_support(j, psi, y_hat_slices)
            y_hat_j = psi.new_zeros(b, self.S, h, w)
            for p, mask in enumerate(passes):
                mu, log_sigma = self.pass_params(j, psi, mu_ch, sigma_ch, None if p == 0 else y_hat_j)
                if param_hook is not None:
                    mu, log_sigma = param_hook("mean", mu), param_hook("log_scale", log_sigma)
                if not (torch.isfinite(mu).all() and torch.isfinite(log_sigma).all()):
                    raise FloatingPointError("non-finite entropy parameters")
                mu_q = guard.mean(mu, mask)
                index = guard.scale(log_sigma, mask)
                sel = mask.expand_as(mu_q)
                idx_list = index[sel].tolist()
                if encoder is not None:
                    symbols = torch.round(y_slices[j] - mu_q.to(y_slices[j].dtype))[sel].to(torch.int32)
                    encoder.encode_with_indexes(symbols.tolist(), idx_list, *tables)
                else:
                    values = decoder.decode_stream(idx_list, *tables)
                    symbols = torch.tensor(values, dtype=torch.int32, device=psi.device)
                y_hat_j[sel] = (symbols.to(mu_q.dtype) + mu_q[sel]).to(y_hat_j.dtype)
            y_hat_slices.append(y_hat_j)
        return torch.cat(y_hat_slices, dim=1)
