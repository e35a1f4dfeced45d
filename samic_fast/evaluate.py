"""Rate-distortion evaluation on real bitstreams (``samic-fast eval``).

For each image: ``codec.encode_image`` writes the exact bytes ``samic-fast compress`` would write
(header included), ``codec.decode_image`` decodes them, and the metrics compare the decoded 8-bit
image with the original, as a user would see them:

- ``bpp``: ``8 × file bytes / (H × W)`` of the original (unpadded) image;
- ``psnr-rgb``: ``10 log10(255² / MSE)`` over all pixels and the three channels;
- ``ms-ssim-rgb``: pytorch-msssim's MS-SSIM (5 scales, 11×11 Gaussian window, data range 255).
  Its four downsamplings need both sides ≥ :data:`MS_SSIM_MIN_SIDE` (161) pixels. Smaller images
  are not padded (padding would be measured too): their value is ``null`` and the mean is over the
  images large enough, which a note on stderr states;
- ``lpips`` (only when the ``lpips`` package and its AlexNet weights are installed locally;
  otherwise the key is absent and a note says why): LPIPS-AlexNet, lower is better;
- ``encoding_time``/``decoding_time``: wall seconds of ``encode_image``/``decode_image`` (network,
  entropy coding and the container), the device synchronised before each clock read.

The output follows CompressAI's ``eval_model`` JSON: ``{"name", "description", "results": {...}}``
with the means, or per-image lists (in input order) with ``per_image``.
"""

from __future__ import annotations

import math
import time
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np
import torch

MS_SSIM_MIN_SIDE = 161  # pytorch-msssim: smaller side > (win_size - 1) * 2**4 with win_size 11
METRICS = ("psnr-rgb", "ms-ssim-rgb", "bpp", "encoding_time", "decoding_time", "lpips")

Record = Dict[str, object]


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB of two uint8 images (inf when identical)."""
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return math.inf if mse == 0 else 10.0 * math.log10(255.0**2 / mse)


def _as_batch(rgb: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.array(rgb, dtype=np.float32)).permute(2, 0, 1).unsqueeze(0)


def ms_ssim_rgb(a: np.ndarray, b: np.ndarray) -> Optional[float]:
    """MS-SSIM of two ``(H, W, 3)`` uint8 images, or None when a side is below 161 pixels."""
    from pytorch_msssim import ms_ssim

    if min(a.shape[:2]) < MS_SSIM_MIN_SIDE:
        return None
    return float(ms_ssim(_as_batch(a), _as_batch(b), data_range=255.0, size_average=True))


def timed(fn: Callable, sync: Callable[[], None]):
    """Run ``fn()`` between two device synchronisations; returns ``(result, seconds)``."""
    sync()
    start = time.perf_counter()
    result = fn()
    sync()
    return result, time.perf_counter() - start


def device_sync(device: torch.device) -> Callable[[], None]:
    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    return sync


def evaluate_image(model, rgb: np.ndarray, sync: Callable[[], None],
                   lpips_fn: Optional[Callable] = None) -> Record:
    """Encode, decode and measure one ``(H, W, 3)`` uint8 image (keys: :data:`METRICS`)."""
    from samic_fast.codec import decode_image, encode_image

    data, t_enc = timed(lambda: encode_image(model, rgb), sync)
    decoded, t_dec = timed(lambda: decode_image(model, data), sync)
    h, w = rgb.shape[:2]
    record: Record = {
        "psnr-rgb": psnr(rgb, decoded),
        "ms-ssim-rgb": ms_ssim_rgb(rgb, decoded),
        "bpp": 8.0 * len(data) / (h * w),
        "encoding_time": t_enc,
        "decoding_time": t_dec,
    }
    if lpips_fn is not None:
        with torch.no_grad():
            record["lpips"] = float(lpips_fn(_as_batch(decoded) / 255.0, _as_batch(rgb) / 255.0))
    return record


def evaluate(model, items: Sequence[Tuple[int, object]], lpips_fn: Optional[Callable] = None,
             warmup: int = 0, progress: Optional[Callable[[Iterable], Iterable]] = None) -> List[Record]:
    """Evaluate ``items`` (``(index, path or array)`` pairs, e.g. a rank's :func:`shard`); each
    record carries its ``index`` so shards can be merged in input order. ``warmup`` untimed
    round trips of the first image come first (Triton compiles on first use on a GPU)."""
    from samic_fast.codec import decode_image, encode_image
    from samic_fast.imageio import load_rgb

    device = next(model.parameters()).device
    sync = device_sync(device)
    records: List[Record] = []
    for n, (index, image) in enumerate(progress(items) if progress else items):
        rgb = load_rgb(image)
        if n == 0:
            for _ in range(max(0, warmup)):
                decode_image(model, encode_image(model, rgb))
        record = evaluate_image(model, rgb, sync, lpips_fn)
        record["index"] = index
        records.append(record)
    return records


def _mean(values: List[Optional[float]]) -> Optional[float]:
    kept = [v for v in values if v is not None]
    return float(np.mean(kept)) if kept else None


def summarize(records: List[Record], name: str, description: str, per_image: bool = False,
              images: Optional[Sequence[str]] = None) -> Tuple[dict, List[str]]:
    """CompressAI ``eval_model`` JSON of ``records`` (sorted by ``index``) and the notes to print.

    ``results`` holds each metric's mean, or its list in image order with ``per_image`` (then the
    top-level ``images`` lists the inputs). MS-SSIM's mean skips images too small for it; a metric
    no image has is left out.
    """
    records = sorted(records, key=lambda r: int(r["index"]))
    notes: List[str] = []
    results: Dict[str, object] = {}
    for key in METRICS:
        values = [r.get(key) for r in records]
        if all(v is None for v in values):
            continue
        results[key] = values if per_image else _mean(values)
    small = sum(r.get("ms-ssim-rgb") is None for r in records)
    if small:
        where = "null in the per-image list" if per_image else "left out of the mean"
        notes.append(f"ms-ssim-rgb: {small} of {len(records)} image(s) have a side under "
                     f"{MS_SSIM_MIN_SIDE} px, too small for MS-SSIM's 4 downsamplings ({where})")
    out = {"name": name, "description": description, "results": results}
    if per_image and images is not None:
        out["images"] = [str(images[int(r["index"])]) for r in records]
    return out, notes


__all__ = ["MS_SSIM_MIN_SIDE", "METRICS", "psnr", "ms_ssim_rgb", "timed", "evaluate_image",
           "evaluate", "summarize"]
