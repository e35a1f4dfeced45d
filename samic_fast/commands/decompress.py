"""``samic-fast decompress IN -o OUT.png``: a ``.samic`` file back to an image.

The output format follows OUT's extension (``.png`` keeps the decoded pixels exactly). The file is
checked (magic, version, checksums, sizes) before the model is even loaded, and the output is
written atomically: on any error nothing is left at OUT.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from samic_fast.commands.common import add_model_arguments
from samic_fast.errors import BitstreamError, SamicError


def register(subparsers) -> None:
    p = subparsers.add_parser("decompress", help="decompress a .samic file to an image",
                              description=__doc__.split("\n\n")[0])
    p.add_argument("input", type=Path, metavar="IN", help=".samic file")
    p.add_argument("-o", "--output", type=Path, required=True, metavar="OUT",
                   help="output image (format from the extension, e.g. .png)")
    add_model_arguments(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from samic_fast.codec import atomic_write, decode_image, load_model, read_header
    from samic_fast.imageio import format_for_path, save_rgb

    src, dst = args.input, args.output
    if not src.exists():
        raise SamicError(f"{src}: no such file")
    if not src.is_file():
        raise SamicError(f"{src}: not a file")
    fmt = format_for_path(dst)
    try:
        data = src.read_bytes()
    except OSError as exc:
        raise SamicError(f"{src}: cannot read ({exc.strerror or exc})") from None
    try:
        header = read_header(data)  # cheap: refuses bad files before the model loads
        model = load_model(args.checkpoint, args.backend, device=args.device, arch=args.arch)
        rgb = decode_image(model, data)
    except BitstreamError as exc:
        raise type(exc)(f"{src}: {exc}") from None
    try:
        atomic_write(dst, lambda tmp: save_rgb(rgb, tmp, fmt))
    except OSError as exc:
        raise SamicError(f"{dst}: cannot write ({exc.strerror or exc})") from None
    print(f"{src} -> {dst} ({header.width}x{header.height})")
    return 0
