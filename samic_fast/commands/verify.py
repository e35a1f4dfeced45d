"""``samic-fast verify [--device cpu|cuda] [--shapes small|kodak] [--dtype fp32,fp16,bf16]``:
parity of the fused Triton ops against the reference (docs/design.md §5).

Runs every op on both backends and prints a table: max abs error, relative RMS error (scans,
against the reference in float64), exactness (cluster sums, permutations), determinism (repeated
fused runs bitwise equal) and each backend's time. Exits 0 only when every rule holds.
Defaults: CUDA with the Kodak shapes of docs/design.md §3 when a GPU is present; otherwise CPU, where
the kernels run in Triton's interpreter, with small shapes.
"""

from __future__ import annotations

import argparse
import json
import sys


def register(subparsers) -> None:
    p = subparsers.add_parser("verify", help="parity of the Triton kernels against the reference",
                              description=__doc__.split("\n\n")[0])
    p.add_argument("--device", choices=("cpu", "cuda"), default=None,
                   help="where to run (default: cuda if available, else cpu under the interpreter)")
    p.add_argument("--shapes", choices=("small", "kodak"), default=None,
                   help="shape set (default: kodak on cuda, small on cpu)")
    p.add_argument("--dtype", default="fp32,fp16,bf16",
                   help="comma-separated input dtypes among fp32, fp16, bf16 (default: all three)")
    p.add_argument("--reps", type=int, default=None,
                   help="timed repetitions per op after one warm-up (default: 10 on cuda, 1 on cpu)")
    p.add_argument("--json", action="store_true", help="print the rows as JSON instead of a table")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import torch

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    shapes = args.shapes or ("kodak" if device == "cuda" else "small")
    dtypes = [d.strip() for d in args.dtype.split(",") if d.strip()]
    if args.reps is not None and args.reps < 1:
        print("error: --reps must be >= 1", file=sys.stderr)
        return 2

    from samic_fast import verify

    unknown = [d for d in dtypes if d not in verify.DTYPES]
    if not dtypes or unknown:
        print(f"error: --dtype takes a comma-separated subset of {', '.join(verify.DTYPES)}; "
              f"got {args.dtype!r}", file=sys.stderr)
        return 2

    if device == "cpu" and shapes == "kodak":
        print("warning: Kodak shapes in Triton's CPU interpreter take hours; try --shapes small",
              file=sys.stderr)

    def progress(row):
        if not args.json:
            print(f"  {row.op:<28} {row.case:<30} {row.dtype:<5} {'ok' if row.ok else 'FAIL'}",
                  file=sys.stderr, flush=True)

    # DeviceError / BackendError (no GPU, no triton) propagate to the CLI: one line, exit 1.
    rows = verify.run_verify(device, shapes, dtypes, reps=args.reps, progress=progress)
    if args.json:
        print(json.dumps({"device": verify.device_description(device), "shapes": shapes,
                          "rows": verify.rows_as_dicts(rows), "ok": all(r.ok for r in rows)}, indent=1))
    else:
        print(verify.format_table(rows, verify.device_description(device)))
    return 0 if rows and all(r.ok for r in rows) else 1
