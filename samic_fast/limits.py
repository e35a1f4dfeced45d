"""How much work one image may ask for, checked before any model work.

A ``.samic`` file is untrusted input: a 1 KB file with valid checksums can declare an 8192x8192
image, and the decoder would then run g_s at that size, needing tens of gigabytes and many minutes
before failing. The container's own limits (:mod:`samic_fast.fileformat`: 16384 per side,
2**26 pixels) only say what the format can hold. Two checks here bound the work:

1. **Pixel count**, in the spirit of Pillow's ``Image.MAX_IMAGE_PIXELS`` (which refuses images
   whose decoded RGB buffer would pass a few hundred MiB). This codec's working set is not 3 bytes
   but about 1.3 KB per pixel (below), so the same idea gives a far smaller count: the default
   :data:`DEFAULT_MAX_PIXELS` = 2**24 (4096x4096, 16.8 M pixels) is the largest image whose
   estimated working set, for the widest named layout (``mambaic``, 1.4 KB per pixel: 24 GB),
   fits a 24 GB GPU such as the paper's RTX 4090. It covers 4K UHD (8.3 M) and 12-16 MP photos;
   ``--max-pixels`` (``max_pixels=``) raises it.
2. **Memory**: the estimated peak (:func:`working_set_bytes`) must fit what the device has free
   (``torch.cuda.mem_get_info`` on a GPU; ``MemAvailable`` from ``/proc/meminfo``, or
   ``os.sysconf`` elsewhere, on the CPU). When the free memory cannot be read the check is skipped.

The estimate. The largest activations live at the first stage of g_a / the last of g_s, at half
the image resolution: a SAMB there holds its input (C channels) and about five tensors of its
inner width ``expand * C`` (the in-projection halves, the convolution output, dt, the scan output)
in float32 over ``H/2 x W/2`` positions, that is ``4 * C * (1 + 5 * expand) / 4`` bytes per image
pixel. Measured peak resident memory above the loaded model (reference backend, CPU, 256x256 to
1024x1024, the slope between two sizes): 1,249 B/pixel encoding and 1,238 decoding for the
first release's layout (now ``mambaic``: C = 128, expand 2; the estimate gives 1,408), 180 and
167 for ``tiny`` (C = 16, expand 2: 176).
"""

from __future__ import annotations

import os
from typing import Optional

from samic_fast.errors import ResourceLimitError

DEFAULT_MAX_PIXELS = 1 << 24

#: Allocator slack, CDF tables, buffers and (before it is loaded) the model's weights, beside
#: the activations.
OVERHEAD_BYTES = 256 << 20

#: Bytes per pixel when the model has no SAMIC configuration to estimate from (the default
#: model's figure, rounded up).
FALLBACK_BYTES_PER_PIXEL = 1408


def bytes_per_pixel(config=None) -> float:
    """Estimated peak activation bytes per image pixel of a model with ``config`` (module doc).

    Each stage ``i`` (stride ``2**(i+1)``) costs ``C_i * (1 + 5 * expand)`` float32 values per
    position when it has SAMBs, ``2 * C_i`` (a convolution's input and output) when it has none;
    the largest stage sets the peak.
    """
    try:
        channels = [int(c) for c in config.channels[:3]]
        depths = [int(d) for d in config.depths[:3]]
        expand = float(config.sass.expand)
    except (AttributeError, TypeError, ValueError):
        return float(FALLBACK_BYTES_PER_PIXEL)
    per_stage = []
    for i, (c, d) in enumerate(zip(channels, depths)):
        floats = c * (1 + 5 * expand) if d > 0 else 2 * c
        per_stage.append(4.0 * floats / 4 ** (i + 1))
    return max(per_stage + [4.0 * 3 * 2])  # the full-resolution input and output planes


def working_set_bytes(width: int, height: int, config=None) -> int:
    """Estimated peak memory to code one ``width x height`` image (padded to multiples of 64)."""
    from samic_fast.fileformat import padded_size

    pixels = padded_size(width) * padded_size(height)
    return int(pixels * bytes_per_pixel(config)) + OVERHEAD_BYTES


def free_memory(device=None) -> Optional[int]:
    """Bytes the device can still allocate, or None when that cannot be read."""
    kind = getattr(device, "type", None) or (str(device).split(":")[0] if device else "cpu")
    if kind == "cuda":
        import torch

        try:
            free, _total = torch.cuda.mem_get_info(device)
        except Exception:  # no driver, bad index: the model load will say so in its own words
            return None
        # The caching allocator's reserved-but-unused blocks are free to this process too.
        return int(free) + int(torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device))
    if kind != "cpu":
        return None
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None


def check_image_work(width: int, height: int, *, max_pixels: Optional[int] = DEFAULT_MAX_PIXELS,
                     config=None, device=None, what: str = "image") -> None:
    """Raise :class:`ResourceLimitError` (one line) when a ``width x height`` image is above
    ``max_pixels`` (None: no pixel limit) or its estimated working set exceeds the free memory
    of ``device``."""
    pixels = int(width) * int(height)
    if max_pixels is not None and pixels > max_pixels:
        raise ResourceLimitError(
            f"{what} is {width}x{height} = {pixels:,} pixels, above the limit of {max_pixels:,} "
            f"(pass --max-pixels {pixels} to allow it; it needs about "
            f"{_gb(working_set_bytes(width, height, config))} of memory)"
        )
    need = working_set_bytes(width, height, config)
    free = free_memory(device)
    if free is not None and need > free:
        raise ResourceLimitError(
            f"{what} is {width}x{height}: coding it needs about {_gb(need)} of memory, but "
            f"{device or 'cpu'} has {_gb(free)} free"
        )


def _gb(n: int) -> str:
    return f"{n / 1e9:.1f} GB"
