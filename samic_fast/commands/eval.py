"""``samic-fast eval DIR|FILES...``: bitrate and quality of real bitstreams over a set of images.

Prints (and with ``--json OUT`` writes) CompressAI's ``eval_model`` JSON: bpp of the bytes
``compress`` writes, PSNR and MS-SSIM on RGB, LPIPS when installed locally, synchronised encode
and decode times. Under ``torchrun --nproc_per_node=N -m samic_fast eval ...`` the images are
sharded over the ranks (one GPU each) and rank 0 writes the same JSON as one process would.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from samic_fast.commands.common import add_model_arguments
from samic_fast.errors import SamicError


def register(subparsers) -> None:
    p = subparsers.add_parser("eval", help="evaluate bpp, PSNR, MS-SSIM over images",
                              description="Bitrate and quality of real bitstreams over a set of images. Writes "
                              "CompressAI's eval_model JSON: bpp of the bytes compress writes, PSNR "
                              "and MS-SSIM on RGB, LPIPS "
                              "when installed locally, synchronised encode and decode times. Under "
                              "torchrun the images are sharded over the ranks.")
    p.add_argument("inputs", nargs="+", type=Path, metavar="DIR|FILE",
                   help="image files or folders (their image files, in name order)")
    add_model_arguments(p)
    p.add_argument("--json", type=Path, default=None, metavar="OUT",
                   help="also write the JSON here (it is always printed on stdout)")
    p.add_argument("--per-image", action="store_true",
                   help="lists of per-image values in input order instead of means")
    p.add_argument("--warmup", type=int, default=None, metavar="N",
                   help="untimed round trips of each process's first image (default: 1 on CUDA, "
                        "to exclude Triton's compile; 0 on CPU)")
    p.set_defaults(func=run)


def _description(model, args, device) -> str:
    import torch

    from samic_fast import __version__
    from samic_fast.backend import resolve_backend

    where = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    weights = str(args.checkpoint) if args.checkpoint else "default seeded weights (untrained)"
    return (f"Inference (samic_fast {__version__}, backend {resolve_backend(args.backend, device)} "
            f"on {where}, weights {weights}; bpp of the whole .samic file; times in seconds of "
            "encode_image/decode_image, device synchronised)")


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from samic_fast.codec import atomic_write, load_model
    from samic_fast.commands.compress import expand_inputs
    from samic_fast.config import arch_name
    from samic_fast.distributed import ProcessGroup, gather, shard
    from samic_fast.evaluate import evaluate, summarize
    from samic_fast.imageio import read_image_file
    from samic_fast.loss import load_lpips

    files, _ = expand_inputs(args.inputs)
    for path in files:  # every rank checks every input: a bad one fails all ranks alike, early
        read_image_file(path)
    if args.json is not None and args.json.is_dir():
        raise SamicError(f"{args.json}: is a folder; --json needs a file name")
    with ProcessGroup(args.device) as group:
        model = load_model(args.checkpoint, args.backend, device=group.device, arch=args.arch)
        device = next(model.parameters()).device
        lpips_fn, lpips_reason = load_lpips()
        warmup = args.warmup if args.warmup is not None else (1 if device.type == "cuda" else 0)
        mine = shard(files, group.rank, group.world_size)
        label = "eval" if group.world_size == 1 else f"eval rank 0/{group.world_size}"

        def progress(items):
            return tqdm(items, unit="img", file=sys.stderr, desc=label,
                        disable=None if group.is_main else True)

        records = evaluate(model, mine, lpips_fn=lpips_fn, warmup=warmup, progress=progress)
        everything = [r for part in gather(records, group) for r in part]
        if not group.is_main:
            return 0
        name = f"samic_fast-{arch_name(model.config) or 'custom'}"
        result, notes = summarize(everything, name, _description(model, args, device),
                                  per_image=args.per_image, images=[str(f) for f in files])
        if lpips_reason:
            notes.append(f"lpips: omitted, {lpips_reason}")
        if args.checkpoint is None:
            notes.append("the default weights are untrained: bitrate and quality are not meaningful")
        for note in notes:
            print(f"note: {note}", file=sys.stderr)
        text = json.dumps(result, indent=2)
        if args.json is not None:
            try:
                atomic_write(args.json, lambda tmp: Path(tmp).write_text(text + "\n"))
            except OSError as exc:
                raise SamicError(f"{args.json}: cannot write ({exc.strerror or exc})") from None
        print(text)
    return 0
