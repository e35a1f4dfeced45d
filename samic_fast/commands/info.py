"""``samic-fast info [--json]``: the model's size and cost beside the paper's, and its config.

Three counts (samic_fast.complexity): parameters; thop multiply-adds at 1x3x512x512, the unit of
the paper's Table 1 "FLOPs"; and FLOPs at 768x512 with the scans included (or at --width x
--height). Also the SASS call shapes of the model at 768x512.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
from typing import Any, Dict

from samic_fast.commands.common import add_model_arguments, model_from_args, status

# samic_fast.complexity (the paper's figures, the FLOP counter) is imported when the command runs:
# torch.utils.flop_counter imports triton, which `verify` must be able to configure first.

INFO_WIDTH, INFO_HEIGHT = 768, 512


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "info", help="model parameters, FLOPs and configuration",
        description="The model's parameters and FLOPs (at 768x512, the Kodak size of the paper's "
                    "Table 1) beside the paper's figures, its configuration and digests.")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--width", type=int, default=INFO_WIDTH,
                   help=f"image width for the extra FLOP count (default {INFO_WIDTH}, Kodak's)")
    p.add_argument("--height", type=int, default=INFO_HEIGHT,
                   help=f"image height for the FLOP count (default {INFO_HEIGHT})")
    add_model_arguments(p)
    p.set_defaults(func=run)


def _jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {k: _jsonable(v) for k, v in dataclasses.asdict(value).items()}
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def collect(args: argparse.Namespace) -> Dict[str, Any]:
    """Everything ``info`` reports, as a JSON-ready dict."""
    import torch

    from samic_fast.backend import resolve_backend
    from samic_fast.config import arch_name
    from samic_fast.codec import model_digests
    from samic_fast.complexity import PAPER_GMACS_512, PAPER_PARAMS_M, model_complexity
    from samic_fast.fileformat import FORMAT_VERSION
    from samic_fast.shapes import trace_sass_shapes

    from samic_fast.errors import SamicError

    if args.width < 1 or args.height < 1 or args.width % 64 or args.height % 64:
        raise SamicError(f"--width/--height must be positive multiples of 64, got "
                         f"{args.width}x{args.height}")
    model = model_from_args(args)
    device = next(model.parameters()).device
    with status(f"counting FLOPs at {args.width}x{args.height}"):
        stats = model_complexity(model, height=args.height, width=args.width)
    config_digest, weights = model_digests(model)
    try:
        import triton

        triton_version = triton.__version__
    except Exception:  # absent or broken: info still runs
        triton_version = None
    shapes = trace_sass_shapes(model.config, INFO_HEIGHT, INFO_WIDTH)
    return {
        "params": stats["params"],
        "params_M": stats["params_M"],
        "paper_gmacs_512": stats["paper_gmacs_512"],
        "gflops_768x512": stats["gflops_768x512"],
        "flops_G": stats["flops_G"],
        "flops_at": f"{args.width}x{args.height}",
        "paper": {"params_M": PAPER_PARAMS_M, "paper_gmacs_512": PAPER_GMACS_512},
        "sass_shapes_768x512": [s._asdict() for s in shapes],
        "arch": arch_name(model.config),
        "complexity": _jsonable(stats),
        "config": _jsonable(model.config),
        "config_digest": config_digest.hex(),
        "weights_digest": weights.hex(),
        "weights": str(args.checkpoint) if args.checkpoint else "default (seeded, untrained)",
        "backend": resolve_backend(args.backend, device),
        "device": str(device),
        "file_format_version": FORMAT_VERSION,
        "versions": {"python": platform.python_version(), "torch": torch.__version__,
                     "triton": triton_version},
    }


def run(args: argparse.Namespace) -> int:
    from samic_fast.complexity import PAPER_GMACS_512, PAPER_PARAMS_M  # paper, Table 1

    info = collect(args)
    if args.json:
        print(json.dumps(info, indent=2, sort_keys=True))
        return 0
    print(f"arch        {info['arch'] or 'custom'}")
    print(f"parameters  {info['params_M']:.2f} M   (paper: {PAPER_PARAMS_M} M)")
    print(f"thop MACs   {info['paper_gmacs_512']:.2f} G at 512x512   (paper's 'FLOPs': {PAPER_GMACS_512} G)")
    print(f"FLOPs       {info['gflops_768x512']:.2f} G at {INFO_WIDTH}x{INFO_HEIGHT}, scans included")
    if info["flops_at"] != f"{INFO_WIDTH}x{INFO_HEIGHT}":
        print(f"FLOPs       {info['flops_G']:.2f} G at {info['flops_at']}")
    print("SASS calls at 768x512 (L x D x N: count): " + ", ".join(
        f"{s['L']}x{s['D']}x{s['N']}: {s['count']}" for s in info["sass_shapes_768x512"]))
    print(f"weights     {info['weights']}  sha256 {info['weights_digest'][:16]}")
    print(f"config      sha256 {info['config_digest'][:16]}")
    print(f"backend     {info['backend']} on {info['device']}")
    print(f"format      .samic version {info['file_format_version']}")
    versions = info["versions"]
    print(f"versions    python {versions['python']}, torch {versions['torch']}, "
          f"triton {versions['triton']}")
    print("config fields:")
    for key, value in sorted(info["config"].items()) if isinstance(info["config"], dict) else []:
        print(f"  {key} = {value}")
    return 0
