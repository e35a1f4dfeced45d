"""Configuration dataclasses.

:class:`SASSConfig` configures one semantic-aware selective scan (paper §3.2; docs/design.md §1);
the codec's :class:`SAMICConfig` (paper §4.2) follows below it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class SASSConfig:
    """Hyper-parameters of SASS / SAMB.

    Attributes:
        num_clusters: K learnable cluster centers (paper default 16; Table 3 tries 4, 8, 16).
        c_sem: channels of the semantic feature space the centers live in.
        tau: temperature of the cosine scores (Eq. 3).
        learnable_tau: train ``tau`` (stored as its logarithm) instead of fixing it.
        gumbel_tau: temperature of the straight-through Gumbel-softmax used in training.
        d_state: N, SSM state channels per feature channel (VMamba/MambaIC: 16).
        expand: inner width factor of the block (VMamba's ssm_ratio: 2).
        dt_rank: rank of the delta projection; 0 means ``ceil(d_model / 16)`` with ``d_model`` the
            block's width (VMamba, MambaIC), not its inner width.
        dt_min, dt_max, dt_init_floor: Mamba's initial range of delta.
        conv_kernel: depthwise convolution before the scan (VMamba's d_conv: 3).
    """

    num_clusters: int = 16
    c_sem: int = 32
    tau: float = 0.1
    learnable_tau: bool = False
    gumbel_tau: float = 1.0
    d_state: int = 16
    expand: float = 2.0
    dt_rank: int = 0
    dt_min: float = 0.001
    dt_max: float = 0.1
    dt_init_floor: float = 1e-4
    conv_kernel: int = 3

    def __post_init__(self) -> None:
        if not 1 <= self.num_clusters <= 64:
            raise ValueError(f"num_clusters must be in [1, 64], got {self.num_clusters}")
        if not 1 <= self.d_state <= 64:
            raise ValueError(f"d_state must be in [1, 64], got {self.d_state}")
        if self.c_sem < 1 or self.tau <= 0 or self.expand <= 0:
            raise ValueError("c_sem must be >= 1, tau and expand > 0")

    def inner_dim(self, dim: int) -> int:
        return int(round(self.expand * dim))

    def resolved_dt_rank(self, d_model: int) -> int:
        """``dt_rank`` of a block of width ``d_model`` (the SAMB's, before the expansion)."""
        return self.dt_rank if self.dt_rank > 0 else math.ceil(d_model / 16)


@dataclass(frozen=True)
class SAMICConfig:
    """Hyper-parameters of the SAMIC codec (paper §3–4.2; docs/design.md §7).

    The defaults are the named configuration ``samic`` (:data:`ARCHS`).

    Widths (paper §4.2: ``{C1..C6} = {128, 128, 128, 192, 128, 192}``, ``M = 192``, ``N = 64``):
    ``C1..C3`` are the g_a/g_s stage widths (full/2, /4, /8 resolution), ``C4 = M`` the latent
    ``y``, ``C5`` the width of h_a/h_s, of the spatial context, of the parameter-aggregation
    network and of the window attention, ``C6`` the width of the channel-context (Φ_ch) SAMBs.
    ``N`` is the number of channels of ``z``.

    Layout (the paper gives the widths only; the rest is fitted so that both of its complexity
    figures hold, counted its way, see :mod:`samic_fast.complexity`): 24.66 M parameters
    (Table 1: 24.88 M, -0.9 %) and 54.49 G thop-MACs at 512×512 (53.41 G, +2.0 %).

    - ICISP's placement (the same group's previous codec, whose figure SAMIC's Fig. 2 follows):
      ``depths = (1, 1, 1)``, one SAMB after each stride-2 convolution of g_a, mirrored in g_s;
      ``hyper_depth = 1``, one SAMB in each of h_a and h_s; ``end_kernel = 3``, 3×3 first and
      last layers, as ICISP's residual stem and sub-pixel output (a 5×5 would add 2 G).
    - ``sass.expand = 1`` (ICISP's SS2D ratio) and ``sass.c_sem = 8``: at H/2 a SAMB costs
      about 4.4 G of the 53 G, so a wider block or semantic space does not fit.
    - Context model (Eq. 11–12): ``num_slices = 6`` slices of 32 channels; ``ctx_depth = 8``
      SAMBs in each of the mean and scale channel contexts Φ_ch, ``sp_depth = 4`` SAMBs in the
      spatial context Φ_sp, ``agg_depth = 0`` (𝒩 is the masked convolution, 1×1/3×3 convolutions
      and the WLA, as Eq. 12 describes it). The context model holds 21.7 M of the parameters.
    - Why so deep a context: Table 3 says K = 4 → 16 adds 0.01–0.03 M parameters, and only the
      centres depend on K, so ``12 · c_sem · (number of SASS)`` must lie in that range; with
      ``c_sem = 8`` that takes 105–312 SASS (here 128: +0.0123 M). And at 32×32 every parameter
      costs about 1 K thop-MACs, while the transforms, whose cost the paper's widths fix (about
      29 G), hold only 1.5 M: the remaining ~23 M parameters must sit in the one-pass part of
      the context model (the channel contexts and Φ_sp), not in the two-pass aggregation.

    ``ARCHS["mambaic"]`` keeps the first release's MambaIC-like layout (depths (2, 2, 9), 64
    SAMBs at expand 2), which exercises the longest SASS sequences.

    Entropy parameters (``entropy_params.py``): means are quantized to multiples of
    ``1 / mean_grid``, scales to indices of a log-uniform table of ``scale_levels`` scales in
    ``[scale_min, scale_max]`` (CompressAI's default table); elements whose mean, log-scale or SASS
    cluster score lies within ``mean_eps`` / ``log_scale_eps`` / ``cluster_eps`` of a decision
    boundary are written as side information, so any backend decodes identical latents.
    """

    channels: tuple = (128, 128, 128, 192, 128, 192)
    N: int = 64
    depths: tuple = (1, 1, 1)
    hyper_depth: int = 1
    num_slices: int = 6
    max_support_slices: int = -1
    ctx_depth: int = 8
    agg_depth: int = 0
    sp_depth: int = 4
    end_kernel: int = 3
    window_size: int = 8
    head_dim: int = 16
    mlp_ratio: float = 2.0
    mean_grid: int = 8
    scale_min: float = 0.11
    scale_max: float = 256.0
    scale_levels: int = 64
    mean_eps: float = 1.25e-4
    log_scale_eps: float = 1.25e-4
    cluster_eps: float = 2e-4
    sass: SASSConfig = SASSConfig(expand=1.0, c_sem=8)

    def __post_init__(self) -> None:
        if len(self.channels) != 6 or any(int(c) < 1 for c in self.channels):
            raise ValueError(f"channels must be 6 positive widths C1..C6, got {self.channels}")
        if len(self.depths) != 3 or any(int(d) < 0 for d in self.depths):
            raise ValueError(f"depths must be 3 non-negative ints, got {self.depths}")
        if self.num_slices < 1 or self.M % self.num_slices:
            raise ValueError(f"num_slices={self.num_slices} must divide M={self.M}")
        if self.mean_grid < 1 or self.mean_grid & (self.mean_grid - 1):
            # A power of two keeps q / mean_grid exact in float32, so y_hat is exact.
            raise ValueError(f"mean_grid must be a power of two, got {self.mean_grid}")
        if not 0 < self.scale_min < self.scale_max or self.scale_levels < 2:
            raise ValueError("need 0 < scale_min < scale_max and scale_levels >= 2")
        if min(self.mean_eps, self.log_scale_eps, self.cluster_eps) < 0:
            raise ValueError("guard bands must be >= 0")
        if self.window_size < 1 or self.head_dim < 1:
            raise ValueError("window_size and head_dim must be >= 1")
        if min(self.hyper_depth, self.ctx_depth, self.agg_depth, self.sp_depth) < 0:
            raise ValueError("hyper_depth, ctx_depth, agg_depth and sp_depth must be >= 0")
        if self.end_kernel < 1 or self.end_kernel % 2 == 0:
            raise ValueError(f"end_kernel must be odd and >= 1, got {self.end_kernel}")

    @property
    def M(self) -> int:
        """Channels of the latent ``y`` (C4)."""
        return int(self.channels[3])

    @property
    def slice_channels(self) -> int:
        return self.M // self.num_slices

    def canonical(self) -> dict:
        """Field values as plain JSON types, nested SASSConfig included, keys sorted."""
        import dataclasses

        def plain(v):
            if dataclasses.is_dataclass(v):
                return {f.name: plain(getattr(v, f.name)) for f in dataclasses.fields(v)}
            if isinstance(v, (tuple, list)):
                return [plain(e) for e in v]
            if isinstance(v, float):
                return repr(float(v))  # repr round-trips exactly; avoids 1e-4 vs 0.0001 drift
            return v

        return plain(self)

    def digest(self) -> bytes:
        """SHA-256 (32 bytes) of the canonical field values; stable across runs and machines."""
        import hashlib
        import json

        text = json.dumps(self.canonical(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(b"SAMICConfig/v1\0" + text.encode()).digest()

    @classmethod
    def from_dict(cls, data: dict) -> "SAMICConfig":
        """Inverse of :meth:`canonical` (what checkpoints store). Unknown keys raise
        :class:`~samic_fast.errors.ConfigError`; missing keys take their defaults."""
        import dataclasses

        from samic_fast.errors import ConfigError

        def build(klass, values):
            if not isinstance(values, dict):
                raise ConfigError(f"{klass.__name__}: expected a mapping, got {type(values).__name__}")
            fields = {f.name: f for f in dataclasses.fields(klass)}
            unknown = sorted(set(values) - set(fields))
            if unknown:
                raise ConfigError(f"{klass.__name__}: unknown field(s) {', '.join(unknown)}")
            kwargs = {}
            for name, value in values.items():
                default = fields[name].default
                if dataclasses.is_dataclass(default):
                    value = build(type(default), value)
                elif isinstance(default, tuple):
                    value = tuple(value)
                elif isinstance(default, float):
                    value = float(value)  # canonical() stores floats as repr strings
                kwargs[name] = value
            try:
                return klass(**kwargs)
            except (TypeError, ValueError) as exc:
                raise ConfigError(f"{klass.__name__}: {exc}") from None

        return build(cls, data)


#: The named configurations (``--arch NAME`` on the CLI, ``"arch"`` in checkpoints).
#: ``samic`` is the default codec (the paper's layout, see :class:`SAMICConfig`); ``mambaic`` is
#: the MambaIC-like layout of the first release (depths (2, 2, 9), 64 SAMBs at expand 2, 24.0 M
#: parameters, 119 G thop-MACs: the longest SASS sequences); ``tiny`` is for tests and quick trials.
ARCHS: dict = {
    "samic": SAMICConfig(),
    "mambaic": SAMICConfig(depths=(2, 2, 9), hyper_depth=3, num_slices=4, ctx_depth=3, agg_depth=2,
                           sp_depth=0, end_kernel=5, sass=SASSConfig(expand=2.0, c_sem=32)),
    "tiny": SAMICConfig(channels=(16, 16, 16, 32, 16, 32), N=16, depths=(1, 1, 1), hyper_depth=1,
                        num_slices=2, ctx_depth=1, agg_depth=0, sp_depth=1, window_size=4,
                        sass=SASSConfig(num_clusters=4, c_sem=8, d_state=4)),
}
DEFAULT_ARCH = "samic"


def get_config(name: str = DEFAULT_ARCH) -> SAMICConfig:
    """The named configuration ``name`` (one of :data:`ARCHS`)."""
    from samic_fast.errors import ConfigError

    try:
        return ARCHS[name]
    except KeyError:
        raise ConfigError(f"unknown arch {name!r}; choose one of {', '.join(ARCHS)}") from None


def arch_name(config: SAMICConfig) -> str | None:
    """The name under which ``config`` is registered, or None for a custom configuration."""
    return next((name for name, cfg in ARCHS.items() if cfg == config), None)
