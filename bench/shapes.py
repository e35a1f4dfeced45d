"""Benchmark shapes, deterministic inputs, and the bytes each op must move.

``s1``, ``s2``, ``s3`` and ``lat`` are stress shapes (docs/design.md §3): the SASS scans of
the first release's layout (``--arch mambaic``) on a Kodak image, D = 256 at 384×256. The shapes
of the default model come from :mod:`samic_fast.shapes` (its one home), as :data:`MODEL_SHAPES`
(768×512) and :data:`MODEL_SHAPES_4K` (3840×2160). ``tiny`` is small enough for the Triton
interpreter on CPU. :func:`reduced` shrinks a shape for quick CPU
runs; the result carries its own name (``s1/4`` = a quarter of the tokens) so tables never pass a
reduced shape off as the real one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Optional

import torch


@dataclass(frozen=True)
class Shape:
    """One SASS problem size: ``L = height * width`` tokens of ``dim`` channels, ``nstate`` states.

    ``c_sem`` and ``clusters`` size the cluster assignment (paper defaults 32 and 16).
    """

    name: str
    height: int
    width: int
    dim: int
    nstate: int = 16
    batch: int = 1
    c_sem: int = 32
    clusters: int = 16

    @property
    def seqlen(self) -> int:
        return self.height * self.width

    def describe(self) -> str:
        return f"{self.name} ({self.height}x{self.width}, L={self.seqlen:,}, D={self.dim}, N={self.nstate})"


#: Stress shapes (docs/design.md §3): the first release's scans on a Kodak image, batch 1.
SHAPES: dict[str, Shape] = {
    "s1": Shape("s1", 384, 256, 256),
    "s2": Shape("s2", 192, 128, 256),
    "s3": Shape("s3", 96, 64, 256),
    "lat": Shape("lat", 48, 32, 384),
}


def _model_shapes(table) -> dict[str, Shape]:
    from samic_fast.shapes import DEFAULT_C_SEM, DEFAULT_CLUSTERS, shape_name

    return {shape_name(s): Shape(shape_name(s), s.height, s.width, s.D, s.N, c_sem=DEFAULT_C_SEM,
                                 clusters=DEFAULT_CLUSTERS) for s in table}


def _tables():
    from samic_fast.shapes import SASS_SHAPES_768x512, SASS_SHAPES_3840x2160

    return SASS_SHAPES_768x512, SASS_SHAPES_3840x2160


#: The default model's SASS calls on a Kodak image (768×512) and on a 4K image, by name
#: ``"<height>x<width>d<D>"`` (samic_fast.shapes).
MODEL_SHAPES: dict[str, Shape] = _model_shapes(_tables()[0])
MODEL_SHAPES_4K: dict[str, Shape] = _model_shapes(_tables()[1])
#: Small enough for the Triton interpreter on CPU (seconds, not minutes).
TINY = Shape("tiny", 16, 16, 32)
ALL_SHAPES: dict[str, Shape] = {**SHAPES, **MODEL_SHAPES, **MODEL_SHAPES_4K, "tiny": TINY}


def reduced(shape: Shape, factor: int) -> Shape:
    """``shape`` with height and width divided by ``factor`` (``factor**2`` fewer tokens), renamed
    ``"<name>/<factor**2>"``; channels are kept so per-token costs stay representative."""
    if factor <= 1:
        return shape
    return replace(
        shape,
        name=f"{shape.name}/{factor * factor}",
        height=max(1, shape.height // factor),
        width=max(1, shape.width // factor),
    )


def get_shape(name: str) -> Shape:
    """Look up a shape by name: ``s1``, ``s2``, ``s3``, ``lat``, a model shape such as
    ``256x384d128``, ``tiny``, or ``<name>/<k*k>``."""
    if name in ALL_SHAPES:
        return ALL_SHAPES[name]
    base, _, div = name.partition("/")
    if base in ALL_SHAPES and div.isdigit():
        factor = math.isqrt(int(div))
        if factor * factor == int(div):
            return reduced(ALL_SHAPES[base], factor)
    raise ValueError(f"unknown shape {name!r}; expected one of {sorted(ALL_SHAPES)} or e.g. 's1/4'")


def make_inputs(
    shape: Shape,
    device: torch.device | str,
    dtype: torch.dtype = torch.float32,
    seed: int = 0,
    with_order: bool = True,
) -> dict:
    """Deterministic inputs for every op at ``shape``.

    Values follow Mamba's initialisation so the scan sees realistic decays: ``A = -[1..N]`` per
    channel, ``softplus(dt + dt_bias)`` around the log-uniform ``[1e-3, 1e-1]`` of ``dt_bias``.
    With ``with_order`` the cluster assignment and permutation come from the reference ops on the
    random semantic features, so ``perm`` has the realistic cluster-run structure of SASS (not a
    uniformly random permutation, which would be a harsher gather pattern than the model makes).
    """
    device = torch.device(device)
    g = torch.Generator().manual_seed(seed)
    b, L, d, n = shape.batch, shape.seqlen, shape.dim, shape.nstate

    def randn(*size: int, scale: float = 1.0) -> torch.Tensor:
        return (torch.randn(*size, generator=g) * scale).to(device=device, dtype=dtype)

    dt_init = torch.exp(torch.rand(d, generator=g) * (math.log(0.1) - math.log(1e-3)) + math.log(1e-3))
    inputs = {
        "shape": shape,
        "x": randn(b, L, d),
        "dt": randn(b, L, d, scale=0.1),
        "A": -torch.arange(1, n + 1, dtype=torch.float32).repeat(d, 1).to(device),
        "Bm": randn(b, L, n),
        "Cm": randn(b, L, n),
        "D": torch.ones(d, device=device),
        "dt_bias": (dt_init + torch.log(-torch.expm1(-dt_init))).to(device),
        "feat": torch.randn(b, shape.c_sem, shape.height, shape.width, generator=g).to(device),
        "centers": torch.randn(shape.clusters, shape.c_sem, generator=g).to(device),
        "tau": 0.1,
    }
    if with_order:
        from samic_fast import ref

        cluster, count, rowsum, colsum = ref.cluster_assign_ref(inputs["feat"], inputs["centers"], 0.1)
        perm, inv = ref.scan_order_ref(cluster, count, rowsum, colsum, shape.height, shape.width)
        inputs.update(cluster=cluster, count=count, rowsum=rowsum, colsum=colsum, perm=perm, inv=inv)
    return inputs


def bytes_moved(op: str, shape: Shape, dtype: torch.dtype = torch.float32) -> Optional[int]:
    """Bytes an ideal single-pass implementation of ``op`` must read and write (the roofline's
    numerator); None for ops whose traffic is not a fixed function of the shape (the SASS module,
    whose convolutions and projections are cuDNN/cuBLAS work).

    - ``cluster_assign``: read ``feat`` and the centers; write ``cluster`` (int32) and three
      ``(B, K)`` int64 sums.
    - ``scan_order``: read ``cluster`` and the sums; write ``perm`` and ``inv`` (int32).
    - ``selective_scan``: read ``x, dt`` ``(B, L, D)``, ``Bm, Cm`` ``(B, L, N)``, ``A, D, dt_bias``;
      write ``y`` ``(B, L, D)``. ``sass_scan`` adds the ``perm`` read (docs/design.md §3: ~315 MB at s1).
    """
    es = torch.empty((), dtype=dtype).element_size()
    b, L, d, n, k, c = shape.batch, shape.seqlen, shape.dim, shape.nstate, shape.clusters, shape.c_sem
    sums = 3 * b * k * 8
    if op == "cluster_assign":
        return b * c * L * 4 + k * c * 4 + b * L * 4 + sums
    if op == "scan_order":
        return b * L * 4 + sums + 2 * b * L * 4
    scan = 3 * b * L * d * es + 2 * b * L * n * es + d * n * 4 + 2 * d * 4
    if op == "selective_scan":
        return scan
    if op == "sass_scan":
        return scan + b * L * 4
    return None


__all__ = ["Shape", "SHAPES", "TINY", "ALL_SHAPES", "reduced", "get_shape", "make_inputs", "bytes_moved"]
