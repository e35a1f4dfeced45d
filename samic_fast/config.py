"""Configuration dataclasses.

:class:`SASSConfig` configures one semantic-aware selective scan (paper §3.2, DESIGN.md §2);
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
        dt_rank: rank of the delta projection; 0 means ``ceil(dim / 16)``.
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

    def resolved_dt_rank(self, dim: int) -> int:
        return self.dt_rank if self.dt_rank > 0 else math.ceil(dim / 16)
