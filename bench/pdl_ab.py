"""The fused SASS op with and without programmatic dependent launch, side by side on one GPU.

``python -m samic_fast.bench.pdl_ab [--device cuda] [--shapes s1,s3,...]`` times the op (gather +
scan + scatter, fp32, the model's options) at each shape with ``SAMIC_FAST_PDL=1`` and ``=0``
(kernels/_utils.use_pdl), interleaved round by round so that clock and thermal drift hit both,
and prints a markdown table of the medians and their ratio. It measures the one launch-cost
assumption the static model makes for PDL (``pdl_launch_us`` in bench/hardware.py).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from typing import Optional

import torch

from samic_fast.kernels import sass_scan_fwd
from samic_fast.kernels._utils import PDL_ENV

from .report import md_table
from .shapes import MODEL_SHAPES, SHAPES, get_shape, make_inputs
from .timing import time_fn

#: Rounds of (with, without) timings; each round's timing is itself a median of repetitions.
ROUNDS = 3


def time_both(shape, device: str) -> tuple[float, float]:
    """Median seconds of the fused op with and without PDL at ``shape``."""
    inp = make_inputs(shape, device)
    y = torch.empty_like(inp["x"])

    def run():
        sass_scan_fwd(inp["x"], inp["dt"], inp["A"], inp["Bm"], inp["Cm"], inp["perm"], inp["D"], None,
                      inp["dt_bias"], True, y=y)

    saved = os.environ.get(PDL_ENV)
    with_pdl, without = [], []
    try:
        for _ in range(ROUNDS):
            for flag, out in (("1", with_pdl), ("0", without)):
                os.environ[PDL_ENV] = flag
                out.append(time_fn(run, device, warmup=1, min_reps=5, max_reps=30, budget_s=0.2).median)
    finally:
        if saved is None:
            os.environ.pop(PDL_ENV, None)
        else:
            os.environ[PDL_ENV] = saved
    return statistics.median(with_pdl), statistics.median(without)


def main(argv: Optional[list[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m samic_fast.bench.pdl_ab", description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--shapes", default=None, help="comma-separated shape names (default: s1-s3 and the 768x512 scans)")
    args = ap.parse_args(argv)
    if not args.device.startswith("cuda") or not torch.cuda.is_available():
        print("pdl_ab: needs a CUDA GPU (programmatic dependent launch is a launch attribute)", file=sys.stderr)
        return 2
    names = args.shapes.split(",") if args.shapes else [*SHAPES.keys() - {"lat"}, *MODEL_SHAPES]
    rows = []
    for name in sorted(names, key=lambda n: (n not in SHAPES, n)):
        shape = get_shape(name)
        on, off = time_both(shape, args.device)
        rows.append([name, f"{shape.seqlen:,}", str(shape.dim), f"{off * 1e6:.1f}", f"{on * 1e6:.1f}",
                     f"{off / on:.2f}x"])
    print(f"### fused SASS op with programmatic dependent launch ({torch.cuda.get_device_name(args.device)})\n")
    print(md_table(["shape", "L", "D", "plain launches us", "PDL us", "plain / PDL"], rows, "lrrrrr"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
