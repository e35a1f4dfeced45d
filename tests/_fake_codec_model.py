"""A tiny stand-in with the codec model's interface, for fast tests of the codec's own logic.

It "compresses" by quantising to 8 bits and deflating, in two string lists (as a hyperprior model
has y and z strings), with a latent shape of the padded size / 64 like the real model's z. It is
lossless on 8-bit input, which lets tests check padding and cropping exactly.
"""

from __future__ import annotations

import hashlib
import zlib

import torch
from torch import nn


class FakeConfig:
    """Only what the codec reads from a config: a digest."""

    def __init__(self, name: str = "fake") -> None:
        self.name = name

    def digest(self) -> bytes:
        return hashlib.sha256(f"fake-config:{self.name}".encode()).digest()


class FakeCodecModel(nn.Module):
    """``compress``/``decompress`` with the CompressAI signature; padded sizes must be 64-aligned."""

    def __init__(self, seed: int = 0, config_name: str = "fake") -> None:
        super().__init__()
        self.config = FakeConfig(config_name)
        self.register_buffer("weight", torch.tensor([float(seed)]))
        self.compress_calls = 0
        self.decompress_calls = 0

    def weights_digest(self) -> bytes:
        return hashlib.sha256(self.weight.numpy().tobytes()).digest()

    def compress(self, x: torch.Tensor) -> dict:
        self.compress_calls += 1
        assert x.dim() == 4 and x.shape[0] == 1 and x.shape[1] == 3
        h, w = x.shape[-2:]
        assert h % 64 == 0 and w % 64 == 0, "the codec must pad to multiples of 64"
        q = (x[0] * 255.0).round().clamp(0, 255).to(torch.uint8).numpy().tobytes()
        y = zlib.compress(q, 6)
        z = zlib.compress(bytes([h // 64 % 256, w // 64 % 256]))
        return {"strings": [[y], [z]], "shape": [h // 64, w // 64]}

    def decompress(self, strings, shape) -> dict:
        self.decompress_calls += 1
        h, w = shape[0] * 64, shape[1] * 64
        try:
            raw = zlib.decompress(strings[0][0])
        except zlib.error as exc:
            raise ValueError(f"bad payload: {exc}") from exc
        if len(raw) != 3 * h * w:
            raise ValueError("payload size does not match the shape")
        x = torch.frombuffer(bytearray(raw), dtype=torch.uint8).reshape(1, 3, h, w)
        return {"x_hat": x.float() / 255.0}
