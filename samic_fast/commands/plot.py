"""``samic-fast plot RESULTS.json... -o rd.png``: rate-distortion curves.

Reads results in CompressAI's ``eval_model`` JSON layout (what ``samic-fast eval`` writes)::

    {"name": "...", "description": "...",
     "results": {"psnr-rgb": [...], "ms-ssim-rgb": [...], "bpp": [...], ...}}

(``results`` may also be the top-level object; a scalar is one point) and draws two panels, bits
per pixel against PSNR and against MS-SSIM, one curve per file, as CompressAI's plot utility
does: MS-SSIM is shown in dB, ``-10 log10(1 - MS-SSIM)``, so that differences near 1 stay
visible. Files that lack a metric are left out of that panel.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from samic_fast.commands.common import add_threads_argument
from samic_fast.errors import InputFileError, SamicError

PANELS = (("psnr-rgb", "PSNR [dB]"), ("ms-ssim-rgb", "MS-SSIM [dB]"))


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "plot", help="rate-distortion curves from eval JSON files",
        description="Draw rate-distortion curves (bits per pixel against PSNR and against MS-SSIM "
                    "in dB, two panels) from JSON files in CompressAI's eval_model layout, as "
                    "samic-fast eval writes them: one curve per file, named by its \"name\" field "
                    "or its file name.")
    p.add_argument("inputs", nargs="+", type=Path, metavar="RESULTS.json", help="result files")
    p.add_argument("-o", "--output", type=Path, required=True, metavar="OUT.png",
                   help="image to write (format from the extension: .png, .pdf, .svg)")
    p.add_argument("--title", default=None, help="figure title")
    add_threads_argument(p)
    p.set_defaults(func=run)


def _numbers(value, key: str, path: Path) -> List[float]:
    values = value if isinstance(value, list) else [value]
    out = []
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise SamicError(f"{path}: results[{key!r}] must hold finite numbers, got {v!r}")
        out.append(float(v))
    return out


def load_curve(path: Path) -> Dict:
    """``{"name", "bpp": [...], "psnr-rgb": [...] | None, "ms-ssim-rgb": [...] | None}``."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputFileError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputFileError(f"{path}: cannot read ({getattr(exc, 'strerror', None) or exc})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SamicError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(data, dict):
        raise SamicError(f"{path}: expected a JSON object with \"results\"")
    results = data.get("results", data)
    if not isinstance(results, dict) or "bpp" not in results:
        raise SamicError(f"{path}: no \"bpp\" in its results (CompressAI eval_model layout expected)")
    bpp = _numbers(results["bpp"], "bpp", path)
    curve = {"name": str(data.get("name") or path.stem), "bpp": bpp}
    found = False
    for key, _ in PANELS:
        if key not in results:
            curve[key] = None
            continue
        ys = _numbers(results[key], key, path)
        if len(ys) != len(bpp):
            raise SamicError(f"{path}: {len(bpp)} bpp values but {len(ys)} {key} values")
        if key == "ms-ssim-rgb":
            if any(not 0.0 <= y < 1.0 for y in ys):
                raise SamicError(f"{path}: ms-ssim-rgb values must lie in [0, 1)")
            ys = [-10.0 * math.log10(1.0 - y) for y in ys]
        curve[key] = ys
        found = True
    if not found:
        raise SamicError(f"{path}: its results hold neither psnr-rgb nor ms-ssim-rgb")
    return curve


def draw(curves: Sequence[Dict], output, title: Optional[str] = None, fmt: str = "png") -> None:
    """Write the two-panel figure of ``curves`` to ``output`` in format ``fmt``."""
    import matplotlib

    matplotlib.use("Agg")  # files only: no display needed
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5))
    try:
        for ax, (key, label) in zip(axes, PANELS):
            for curve in curves:
                if curve[key] is None:
                    continue
                points = sorted(zip(curve["bpp"], curve[key]))
                ax.plot([p[0] for p in points], [p[1] for p in points], marker="o",
                        markersize=4, linewidth=1.2, label=curve["name"])
            ax.set_xlabel("Bit-rate [bpp]")
            ax.set_ylabel(label)
            ax.grid(True, alpha=0.4)
            if ax.lines:
                ax.legend(loc="lower right")
            else:
                ax.text(0.5, 0.5, f"no {key} in the inputs", ha="center", va="center",
                        transform=ax.transAxes)
        if title:
            fig.suptitle(title)
        fig.tight_layout()
        fig.savefig(output, dpi=150, format=fmt)
    finally:
        plt.close(fig)


def run(args: argparse.Namespace) -> int:
    from samic_fast.codec import atomic_write

    curves = [load_curve(path) for path in args.inputs]
    suffix = args.output.suffix.lower().lstrip(".")
    if suffix not in ("png", "pdf", "svg", "jpg", "jpeg"):
        raise SamicError(f"{args.output}: use a .png, .pdf, .svg or .jpg name")
    try:
        atomic_write(args.output, lambda tmp: draw(curves, tmp, args.title, suffix))
    except OSError as exc:
        raise SamicError(f"{args.output}: cannot write ({exc.strerror or exc})") from None
    print(f"wrote {args.output} ({len(curves)} curve{'s' if len(curves) != 1 else ''})")
    return 0

