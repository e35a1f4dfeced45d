"""``samic-fast show IMAGE -o OUT.png [--block NAME]``: the SASS clusters of one SAMB and its
scan order, drawn over the image (as the paper's Fig. 1 and 5 do).

The image runs through the model until the chosen block's SASS computes its semantic features
(captured with :attr:`samic_fast.sass.SASS.feature_hook`; the run stops there). The cluster of
every position and the scan order are then computed with the same ops the block uses
(``cluster_assign``, ``scan_order``), so the picture is the order the block really scans in:

- each cluster is tinted with a colour of a sequential colour map by its place in the scan, with
  its boundary outlined;
- each non-empty cluster's centroid carries its number in the scan (1 = scanned first);
- a line with arrows joins the centroids in that order: the path of the one Mamba scan.

Inside a cluster the scan runs in raster order. Blocks are named as in the model
(``g_a.1``, ``h_s.2``, ``context.mean_ctx.0.1``, ...): ``--block list`` prints them. With the
default (untrained) weights the clusters are those of random centers.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Dict, List

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
        "show", help="draw one SAMB's semantic clusters and scan order over an image",
        description="Draw the SASS clusters of one SAMB over IMAGE, numbered and coloured in the "
                    "order the block scans them, with the scan's path through the cluster "
                    "centroids. Blocks are named as in the model: g_a.N, g_s.N, h_a.N, h_s.N and "
                    "context.* (--block list prints the names); the default is the first SAMB of "
                    "g_a, at half the image resolution.")
    p.add_argument("image", type=Path, metavar="IMAGE", help="image file")
    p.add_argument("-o", "--output", type=Path, required=True, metavar="OUT.png",
                   help="picture to write (format from the extension: .png, .pdf, .svg, .jpg)")
    p.add_argument("--block", default=None, metavar="NAME",
                   help="which SAMB (default: the first of g_a); 'list' prints the valid names")
    add_model_arguments(p)
    add_max_pixels_argument(p)
    p.set_defaults(func=run)


def block_names(model) -> List[str]:
    """Names of the model's SAMBs, in module order."""
    from samic_fast.samb import SAMB

    return [name for name, module in model.named_modules() if isinstance(module, SAMB)]


class _Captured(Exception):
    """Raised by the feature hook to stop the forward pass once the block's features are in."""


def capture_features(model, block: str, x):
    """Run ``model`` on ``x (1, 3, H, W)`` until SAMB ``block`` computes its semantic features;
    returns them ``(1, c_sem, h, w)`` with the block's SASS module."""
    import torch

    sass = model.get_submodule(block).sass
    box: Dict[str, torch.Tensor] = {}

    def hook(feat):
        box["feat"] = feat.detach().clone()
        raise _Captured

    previous = sass.feature_hook
    sass.feature_hook = hook
    try:
        with torch.inference_mode():
            stage = block.split(".")[0]
            if stage == "g_a":
                model.g_a(x)  # the encoder's first network is all it takes
            else:
                model(x)
    except _Captured:
        pass
    finally:
        sass.feature_hook = previous
    if "feat" not in box:
        raise SamicError(f"block {block} did not run on this image")
    return box["feat"], sass


def scan_clusters(feat, sass) -> Dict[str, np.ndarray]:
    """Cluster ids ``(h, w)``, the clusters in scan order, and their centroids ``(row, col)``."""
    import torch

    from samic_fast import ops

    _, _, h, w = feat.shape
    feat = feat.float().contiguous()
    cluster, count, rowsum, colsum = ops.cluster_assign(
        feat, sass.centers.detach().float(), sass.tau.detach().float(), backend="reference")
    perm, _ = ops.scan_order(cluster, count, rowsum, colsum, h, w, backend="reference")
    visited = torch.unique_consecutive(cluster[0, perm[0].long()])
    count = count[0].double()
    safe = count.clamp_min(1)
    return {
        "cluster": cluster[0].reshape(h, w).cpu().numpy(),
        "order": visited.cpu().numpy(),
        "rows": (rowsum[0].double() / safe).cpu().numpy(),
        "cols": (colsum[0].double() / safe).cpu().numpy(),
        "count": count.cpu().numpy(),
    }


def draw(rgb: np.ndarray, scan: Dict[str, np.ndarray], stride: int, title: str, output,
         fmt: str) -> None:
    """The picture: image, clusters tinted by scan rank, outlines, numbers and the path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib import colormaps

    height, width = rgb.shape[:2]
    order = scan["order"]
    rank = np.full(int(max(order.max(), scan["cluster"].max())) + 1, -1, dtype=np.int64)
    rank[order] = np.arange(len(order))
    grid_rank = rank[scan["cluster"]]  # (h, w): scan rank of each position
    # Up to image resolution: each block position covers stride x stride pixels of the padded image.
    full = np.repeat(np.repeat(grid_rank, stride, axis=0), stride, axis=1)[:height, :width]
    turbo = colormaps["turbo"]

    def cmap(fraction):  # turbo without its near-black ends, so every tint stays visible
        return turbo(0.1 + 0.8 * np.asarray(fraction))

    tint = cmap(full / max(len(order) - 1, 1))[..., :3]

    inches = 8.0
    aspect = height / width
    fig, ax = plt.subplots(figsize=(inches, inches * aspect + 0.4))
    try:
        ax.imshow(rgb, interpolation="nearest")
        ax.imshow(tint, alpha=0.45, interpolation="nearest")
        edges = np.zeros(full.shape, dtype=bool)
        edges[:-1, :] |= full[:-1, :] != full[1:, :]
        edges[:, :-1] |= full[:, :-1] != full[:, 1:]
        outline = np.zeros((height, width, 4))
        outline[edges] = (1.0, 1.0, 1.0, 0.9)
        ax.imshow(outline, interpolation="nearest")

        # Centroids in image pixels: block position r covers pixels [r*stride, (r+1)*stride).
        xs = (scan["cols"][order] + 0.5) * stride - 0.5
        ys = (scan["rows"][order] + 0.5) * stride - 0.5
        ax.plot(xs, ys, color="white", linewidth=3.0, alpha=0.9, zorder=3)
        ax.plot(xs, ys, color="black", linewidth=1.2, zorder=4)
        for i in range(len(order) - 1):
            ax.annotate("", xy=(xs[i + 1], ys[i + 1]), xytext=(xs[i], ys[i]), zorder=5,
                        arrowprops=dict(arrowstyle="-|>", color="black", lw=1.2,
                                        shrinkA=9, shrinkB=9))
        size = max(7.0, min(11.0, 240.0 / max(len(order), 1)))
        for i, (x, y) in enumerate(zip(xs, ys)):
            ax.text(x, y, str(i + 1), ha="center", va="center", fontsize=size, zorder=6,
                    fontweight="bold", color="black",
                    bbox=dict(boxstyle="circle,pad=0.25", fc=cmap(i / max(len(order) - 1, 1)),
                              ec="black", lw=0.8))
        ax.set_xlim(-0.5, width - 0.5)
        ax.set_ylim(height - 0.5, -0.5)
        ax.set_axis_off()
        ax.set_title(title, fontsize=10, pad=12)
        fig.tight_layout()
        fig.savefig(output, dpi=max(100, int(min(300, 1.5 * width / inches))), format=fmt,
                    bbox_inches="tight", pad_inches=0.1)
    finally:
        plt.close(fig)


def run(args: argparse.Namespace) -> int:
    import torch

    from samic_fast.codec import atomic_write, check_work, pad_image
    from samic_fast.imageio import read_image_file

    suffix = args.output.suffix.lower().lstrip(".")
    if suffix not in ("png", "pdf", "svg", "jpg", "jpeg"):
        raise SamicError(f"{args.output}: use a .png, .pdf, .svg or .jpg name")
    rgb = read_image_file(args.image)
    check_work_before_loading(rgb.shape[1], rgb.shape[0], args, what=str(args.image))
    model = model_from_args(args)
    names = block_names(model)
    if args.block == "list":
        print("\n".join(names))
        return 0
    block = args.block or next((n for n in names if n.startswith("g_a.")), names[0])
    if block not in names:
        raise SamicError(f"--block {block}: no such SAMB; choose one of {', '.join(names)}")
    height, width = rgb.shape[:2]
    check_work(model, width, height, max_pixels=args.max_pixels, what=str(args.image))

    device = next(model.parameters()).device
    padded = pad_image(rgb)
    x = torch.from_numpy(padded).permute(2, 0, 1)[None].float().div_(255.0).to(device)
    with status(f"running the model up to {block}"):
        feat, sass = capture_features(model, block, x)
    scan = scan_clusters(feat, sass)
    stride = padded.shape[0] // feat.shape[2]
    k = sass.config.num_clusters
    title = (f"{args.image.name}: SAMB {block}, {feat.shape[2]}x{feat.shape[3]} positions "
             f"(1/{stride} scale), {len(scan['order'])} of K={k} clusters in scan order")
    try:
        atomic_write(args.output, lambda tmp: draw(rgb, scan, stride, title, tmp, suffix))
    except OSError as exc:
        raise SamicError(f"{args.output}: cannot write ({exc.strerror or exc})") from None
    print(f"wrote {args.output} (block {block}, {len(scan['order'])} clusters)")
    return 0
