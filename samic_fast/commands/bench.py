"""``samic-fast bench``: kernel and network benchmark report (the code lives in
:mod:`samic_fast.bench.report`).

Prints, per device, the device name and torch/triton/CUDA versions, (a) a kernel table per shape,
(b) the paper's Table 1/3 replica, (c) the performance targets with met / missed. Without
``--device`` it runs CUDA (when present) and then CPU, the CPU section timing the reference path.

``--static`` needs no GPU: it compiles the fused op's kernels for sm_90 and predicts H100 times
from their SASS (:mod:`samic_fast.bench.static`).
"""

from __future__ import annotations

import argparse
import json
import sys

from samic_fast.commands.common import add_threads_argument


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "bench",
        help="benchmark the SASS ops and the network; print tables and targets",
        description="Benchmark the SASS ops and the SAMIC network: kernel tables per shape, the "
                    "paper's Table 1/3 replica, and the performance targets. --threads 1 gives "
                    "stable CPU timings on a machine shared with other work.",
    )
    p.add_argument("--static", action="store_true",
                   help="no GPU needed: compile the fused SASS op's kernels for sm_90 at each shape, "
                        "count their SASS and predict H100 times (default shapes: s1,s2,s3 and the "
                        "model's SASS shapes)")
    p.add_argument("--arch", metavar="NAME",
                   help="with --static: the architecture whose whole network (encode/decode at "
                        "768x512 and 3840x2160) is predicted (default samic; --no-model: none)")
    p.add_argument("--dump", metavar="DIR", help="with --static: write each kernel variant's SASS "
                   "and PTX to DIR")
    p.add_argument("--compare-static", metavar="FILE",
                   help="a `bench --static --json` file: print the fused op's measured time against "
                        "its prediction and put both in the JSON")
    p.add_argument("--model-size", metavar="WxH",
                   help="network input size for the network table (default 768x512; 3840x2160 "
                        "evaluates the 4K targets)")
    p.add_argument("--quick", action="store_true",
                   help="fewer repetitions, no torch.compile; on CPU reduced shapes and a 128x128 "
                        "network input (under 5 minutes on 2 cores)")
    p.add_argument("--device", choices=("cpu", "cuda"), action="append",
                   help="device to benchmark (repeatable); default: cuda if present, then cpu")
    p.add_argument("--json", metavar="OUT", help="also write all results as JSON to OUT")
    p.add_argument("--shapes", metavar="LIST",
                   help="comma-separated shapes instead of the defaults: s1,s2,s3,lat,tiny or "
                        "reduced ones such as s1/4")
    p.add_argument("--ops", metavar="LIST", help="comma-separated subset of the ops")
    p.add_argument("--providers", metavar="LIST", help="comma-separated subset of the providers")
    p.add_argument("--no-model", action="store_true", help="skip the network table")
    p.add_argument("--no-kernels", action="store_true", help="skip the kernel tables")
    p.add_argument("--ks", metavar="LIST", help="cluster counts for the network table (default 4,8,16)")
    add_threads_argument(p)  # 1 gives stable CPU timings on a machine shared with other work
    p.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.static:
        from samic_fast.bench.static import run as run_static

        arch = None if args.no_model else (args.arch or "samic")
        return run_static(args.shapes, args.json, args.dump, quiet=args.quiet, arch=arch)
    import torch

    from samic_fast.bench.providers import OPS, PROVIDERS
    from samic_fast.bench.report import default_plan, parse_shapes, run_device
    from samic_fast.errors import SamicError

    devices = args.device or (["cuda", "cpu"] if torch.cuda.is_available() else ["cpu"])
    if "cuda" in devices and not torch.cuda.is_available():
        raise SamicError("--device cuda: no CUDA GPU is visible to torch")
    ops = _subset(args.ops, OPS, "--ops")
    providers = _subset(args.providers, PROVIDERS, "--providers")
    try:
        ks = tuple(int(k) for k in args.ks.split(",")) if args.ks else None
    except ValueError as exc:
        raise SamicError(f"--ks must be comma-separated integers ({exc})") from None
    size = _model_size(args.model_size) if args.model_size else None
    static = None
    if args.compare_static:
        try:
            with open(args.compare_static, encoding="utf-8") as fh:
                static = json.load(fh)
        except (OSError, ValueError) as exc:
            raise SamicError(f"--compare-static: cannot read {args.compare_static}: {exc}") from None
    log = (lambda s: None) if args.quiet else (lambda s: print(f"[bench] {s}", file=sys.stderr, flush=True))

    print("# samic-fast " + " ".join(sys.argv[1:] if sys.argv[1:2] == ["bench"] else ["bench"]))
    report = {"quick": args.quick, "devices": {}}
    for device in dict.fromkeys(devices):  # ordered, de-duplicated
        plan = default_plan(device, args.quick)
        try:
            plan.shapes = parse_shapes(args.shapes, plan.shapes)
        except ValueError as exc:
            raise SamicError(str(exc)) from None
        plan.ops, plan.providers = ops or plan.ops, providers or plan.providers
        plan.model, plan.kernels = not args.no_model, not args.no_kernels
        if ks:
            plan.model_ks = ks
        if size:
            plan.model_size = size
        report["devices"][device] = run_device(plan, sys.stdout, log, static)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(report, fh, indent=2, default=str)
        print(f"\nwrote {args.json}")
    return 0


def _model_size(spec: str) -> tuple[int, int]:
    """``"WxH"`` -> ``(height, width)`` as the plan stores it."""
    from samic_fast.errors import SamicError

    try:
        w, h = (int(v) for v in spec.lower().split("x"))
    except ValueError:
        raise SamicError(f"--model-size must be WxH, e.g. 3840x2160, got {spec!r}") from None
    if w < 16 or h < 16:
        raise SamicError(f"--model-size must be at least 16x16, got {spec!r}")
    return h, w


def _subset(spec, allowed, flag):
    from samic_fast.errors import SamicError

    if not spec:
        return None
    names = [s.strip() for s in spec.split(",") if s.strip()]
    bad = [n for n in names if n not in allowed]
    if bad:
        raise SamicError(f"{flag}: unknown {', '.join(bad)}; expected from {', '.join(allowed)}")
    return names
