"""Hyper-parameters of a training run (``samic-fast train``), in a module light enough for the
command line to read their defaults without importing torch. The loop is :mod:`samic_fast.train`.
"""

from __future__ import annotations

import dataclasses
from typing import Optional

from samic_fast.errors import ConfigError


@dataclasses.dataclass
class TrainSettings:
    """Hyper-parameters of one training run (``settings`` in its checkpoints). ``steps`` is the
    planned total (from ``epochs`` when given that way); ``batch_size`` is per process."""

    lmbda: float = 0.013
    beta: float = 3.5
    steps: int = 0
    epochs: Optional[int] = None
    batch_size: int = 8
    patch_size: int = 256
    lr: float = 1e-4
    aux_lr: float = 1e-3
    clip: float = 1.0
    seed: int = 0
    amp: bool = True

    def check(self) -> None:
        if self.patch_size < 64 or self.patch_size % 64:
            raise ConfigError(f"--patch-size must be a positive multiple of 64 (the codec's stride), "
                              f"got {self.patch_size}")
        if self.lmbda < 0 or self.beta < 0 or self.lr <= 0 or self.aux_lr <= 0:
            raise ConfigError("--lambda and --beta must be >= 0, --lr > 0")


__all__ = ["TrainSettings"]
