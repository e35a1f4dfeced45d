"""The one home of the SASS call shapes of the default model.

Every SASS call of one network pass of the default configuration (``ARCHS["samic"]``) on a
Kodak image (768×512) and on a 4K UHD image (3840×2160, the paper's §4.5.6; the codec pads it to
3840×2176, a multiple of 64), as literal tables: ``(L, D, N, count, height, width)`` with
``L = height · width`` tokens of ``D`` channels and ``N`` states, called ``count`` times.

"One network pass" is :class:`samic_fast.complexity._CodecForward`: g_a, h_a, h_s, both
checkerboard passes of every slice of the context model, g_s (what training runs; ``compress``
runs all but g_s, ``decompress`` all but g_a and h_a). Rows are sorted by ``L``, then ``D``,
largest first.

The tables are literal on purpose (benchmarks, the verify command and GPU tests read them without
building a model); :func:`trace_sass_shapes` recomputes them from any configuration on the
``meta`` device in milliseconds, and tests/test_shapes.py checks that the two agree.
"""

from __future__ import annotations

from collections import Counter
from typing import NamedTuple


class SassShape(NamedTuple):
    """One SASS problem size and how many calls of one network pass have it."""

    L: int
    D: int
    N: int
    count: int
    height: int
    width: int


#: Kodak, 768×512 (width × height), batch 1.
SASS_SHAPES_768x512: tuple[SassShape, ...] = (
    SassShape(98304, 128, 16, 2, 256, 384),
    SassShape(24576, 128, 16, 2, 128, 192),
    SassShape(6144, 128, 16, 2, 64, 96),
    SassShape(1536, 192, 16, 96, 32, 48),
    SassShape(1536, 128, 16, 24, 32, 48),
    SassShape(384, 128, 16, 2, 16, 24),
)
#: 4K UHD, 3840×2160 padded to 3840×2176, batch 1.
SASS_SHAPES_3840x2160: tuple[SassShape, ...] = (
    SassShape(2088960, 128, 16, 2, 1088, 1920),
    SassShape(522240, 128, 16, 2, 544, 960),
    SassShape(130560, 128, 16, 2, 272, 480),
    SassShape(32640, 192, 16, 96, 136, 240),
    SassShape(32640, 128, 16, 24, 136, 240),
    SassShape(8160, 128, 16, 2, 68, 120),
)
#: The image sizes (height, width) of the two tables, as the network sees them (padded).
TABLE_SIZES = {"768x512": (512, 768), "3840x2160": (2176, 3840)}
#: The semantic space of the default model's SASS calls (for cluster-assignment shapes).
DEFAULT_C_SEM = 8
DEFAULT_CLUSTERS = 16


def shape_name(shape: SassShape) -> str:
    """A short stable name: ``"<height>x<width>d<D>"``, e.g. ``"256x384d128"``."""
    return f"{shape.height}x{shape.width}d{shape.D}"


def trace_sass_shapes(config=None, height: int = 512, width: int = 768) -> tuple[SassShape, ...]:
    """The SASS call shapes of one network pass of the model of ``config`` (None: the default) on
    a ``height × width`` image (multiples of 64), traced with hooks on the ``meta`` device."""
    from samic_fast.complexity import meta_forward

    _, calls = meta_forward(config, height, width)
    counts = Counter((c["H"], c["W"], c["D"], c["N"]) for c in calls if c["B"] == 1)
    rows = [SassShape(h * w, d, n, k, h, w) for (h, w, d, n), k in counts.items()]
    return tuple(sorted(rows, key=lambda s: (-s.L, -s.D, -s.N, s.height)))


def format_table(shapes) -> str:
    """Source text of a table, for pasting here when the default layout changes."""
    return "(\n" + "".join(f"    SassShape({s.L}, {s.D}, {s.N}, {s.count}, {s.height}, {s.width}),\n"
                           for s in shapes) + ")"


__all__ = ["SassShape", "SASS_SHAPES_768x512", "SASS_SHAPES_3840x2160", "TABLE_SIZES", "DEFAULT_C_SEM",
           "DEFAULT_CLUSTERS", "shape_name",
           "trace_sass_shapes", "format_table"]
