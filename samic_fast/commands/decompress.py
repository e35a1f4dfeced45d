"""``samic-fast decompress IN -o OUT``: a ``.samic`` file back to an image.

The output format follows OUT's extension (``.png`` keeps the decoded pixels exactly); OUT may be
a folder (existing, or named with a trailing slash), which then receives ``<stem>.png``. The file
is checked (magic, version, checksums, sizes) and the work it asks for is bounded
(:mod:`samic_fast.limits`) before the model is even loaded; the output is written atomically, so
on any error nothing is left at OUT. Decoding is :func:`samic_fast.codec.decompress_file`.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from samic_fast.commands.common import (
    add_max_pixels_argument,
    add_model_arguments,
    check_work_before_loading,
    model_from_args,
    status,
)
from samic_fast.errors import BitstreamError, ResourceLimitError, SamicError


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "decompress", help="decompress a .samic file to an image",
        description="Decompress a .samic file to an image. The format follows OUT's extension "
                    "(.png keeps the decoded pixels exactly); when OUT is a folder (or ends with "
                    "a slash) the image is written there as <stem>.png. Files are checked, and "
                    "their declared size bounded, before the model loads; nothing is left at OUT "
                    "on error.")
    p.add_argument("input", type=Path, metavar="IN", help=".samic file")
    # A string, not a Path: Path("out/") drops the trailing slash that marks a folder.
    p.add_argument("-o", "--output", required=True, metavar="OUT",
                   help="output image (format from the extension, e.g. .png) or folder")
    add_model_arguments(p)
    add_max_pixels_argument(p)
    p.set_defaults(func=run)


def output_path(src: Path, output: Path, raw: str) -> Path:
    """OUT itself, or ``OUT/<stem>.png`` when OUT is a folder or written with a trailing slash."""
    if output.is_dir() or raw.endswith(("/", os.sep)):
        if output.exists() and not output.is_dir():
            raise SamicError(f"{raw}: not a folder")
        try:
            output.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SamicError(f"{output}: cannot create folder ({exc.strerror})") from None
        return output / (src.stem + ".png")
    return output


def run(args: argparse.Namespace) -> int:
    from samic_fast.codec import decompress_file, read_header
    from samic_fast.imageio import format_for_path

    src = args.input
    if not src.exists():
        raise SamicError(f"{src}: no such file")
    if not src.is_file():
        raise SamicError(f"{src}: not a file")
    dst = output_path(src, Path(args.output), args.output)
    format_for_path(dst)  # refuse an unknown extension before any work
    try:
        data = src.read_bytes()
    except OSError as exc:
        raise SamicError(f"{src}: cannot read ({exc.strerror or exc})") from None
    try:
        header = read_header(data)  # cheap: refuses bad files before the model loads
        # Bound the work before loading anything: the declared size against --max-pixels and the
        # free memory of the device the model will use (checked again with the loaded model).
        check_work_before_loading(header.width, header.height, args, what="the file's image")
        model = model_from_args(args)
        start = time.perf_counter()
        with status(f"decoding {header.width}x{header.height}"):
            width, height = decompress_file(src, dst, model, max_pixels=args.max_pixels)
    except (BitstreamError, ResourceLimitError) as exc:
        raise type(exc)(f"{src}: {exc}") from None
    except OSError as exc:
        raise SamicError(f"{dst}: cannot write ({exc.strerror or exc})") from None
    print(f"{src} -> {dst}: {width}x{height}, {time.perf_counter() - start:.2f} s")
    return 0
