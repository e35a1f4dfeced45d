"""``samic-fast demo``: compress and decompress a real photo, and say what happened.

The photo is scikit-image's bundled ``astronaut`` (512x512, public domain, NASA), so the demo needs
no network. It reports bits per pixel, PSNR, encode and decode wall time (the device synchronised
before each clock read), and which backend ran. With the default model the weights are untrained:
the pipeline runs end to end, but bitrate and quality are not meaningful.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Optional, Tuple

import numpy as np

from samic_fast.commands.common import (
    add_max_pixels_argument,
    add_model_arguments,
    check_work_before_loading,
    model_from_args,
    status,
)
from samic_fast.errors import SamicError


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "demo", help="compress and decompress a bundled photo",
        description="Compress and decompress a real photo (scikit-image's astronaut, 512x512, or "
                    "--image) and report bits per pixel, PSNR, encode and decode time and the "
                    "backend that ran. The default weights are untrained: the figures show that "
                    "the pipeline runs, not the paper's rate-distortion results.")
    add_model_arguments(p)
    add_max_pixels_argument(p)
    p.add_argument("--image", type=Path, default=None,
                   help="use this image instead of the bundled astronaut photo")
    p.add_argument("--save", type=Path, default=None, metavar="OUT.png",
                   help="also write the decoded image here")
    p.add_argument("--warmup", type=int, default=None, metavar="N",
                   help="untimed runs first (default: 1 on CUDA, to exclude Triton's compile; "
                        "0 on CPU)")
    p.set_defaults(func=run)


def load_demo_image(path: Optional[Path]) -> Tuple[np.ndarray, str]:
    """The demo photo as ``(H, W, 3)`` uint8, with a description."""
    from samic_fast.imageio import read_image_file

    if path is not None:
        return read_image_file(path), str(path)
    try:
        from skimage import data
    except ImportError:
        raise SamicError(
            "the demo photo comes from scikit-image: pip install scikit-image, or pass --image PATH"
        ) from None
    return np.ascontiguousarray(data.astronaut()), "astronaut (scikit-image, 512x512)"


def run(args: argparse.Namespace) -> int:
    import torch

    from samic_fast.backend import resolve_backend
    from samic_fast.codec import atomic_write, decode_image, encode_image
    from samic_fast.evaluate import device_sync, psnr, timed
    from samic_fast.imageio import format_for_path, save_rgb

    fmt = format_for_path(args.save) if args.save is not None else None
    image, label = load_demo_image(args.image)
    check_work_before_loading(image.shape[1], image.shape[0], args, what=label)
    model = model_from_args(args)
    device = next(model.parameters()).device
    ran = resolve_backend(args.backend, device)

    sync = device_sync(device)
    warmup = args.warmup if args.warmup is not None else (1 if device.type == "cuda" else 0)
    limit = args.max_pixels
    for _ in range(max(0, warmup)):
        with status("warm-up run"):
            decode_image(model, encode_image(model, image, limit), limit)

    with status("encoding"):
        data, t_enc = timed(lambda: encode_image(model, image, limit), sync)
    with status("decoding"):
        decoded, t_dec = timed(lambda: decode_image(model, data, limit), sync)
    h, w = image.shape[:2]
    bpp = 8.0 * len(data) / (h * w)

    device_name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(f"image    {label}")
    print(f"backend  {ran} on {device_name}")
    print(f"size     {len(data)} bytes = {bpp:.4f} bits per pixel (whole file, header included)")
    print(f"PSNR     {psnr(image, decoded):.2f} dB")
    print(f"encode   {t_enc:.3f} s   decode {t_dec:.3f} s   (wall clock, device synchronised, "
          f"{max(0, warmup)} warm-up run(s), entropy coding included)")
    if args.save is not None:
        atomic_write(args.save, lambda tmp: save_rgb(decoded, tmp, fmt))
        print(f"saved    {args.save}")
    if args.checkpoint is None:
        print("note     the default weights are untrained (seeded random init): bitrate and "
              "quality are NOT meaningful; this shows the pipeline runs end to end")
    return 0
