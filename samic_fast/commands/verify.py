"""``samic-fast verify``: parity of the fused Triton ops against the reference
(docs/design.md §5).

Runs every op on both backends and prints a table: max abs error, relative RMS error (scans,
against the reference in float64), exactness (cluster sums, permutations), determinism (repeated
fused runs bitwise equal) and each backend's time; exits 0 only when every rule holds. Defaults:
CUDA with the default model's Kodak shapes (samic_fast.shapes) when a GPU is present; otherwise CPU, where the kernels run in Triton's
interpreter (set up here: ``TRITON_INTERPRET=1`` before triton is imported), with small shapes.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

from samic_fast.commands.common import add_threads_argument


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "verify", help="parity of the Triton kernels against the reference",
        description="Check the fused Triton ops against the pure-PyTorch reference: errors, "
                    "exactness of integer outputs, determinism and time, one row per op, shape and "
                    "dtype; exit status 0 only when every rule holds. Without a GPU the kernels run "
                    "on the CPU in Triton's interpreter, which this command enables itself.")
    p.add_argument("--device", choices=("cpu", "cuda"), default=None,
                   help="where to run (default: cuda if available, else cpu under the interpreter)")
    p.add_argument("--shapes", choices=("quick", "small", "kodak"), default=None,
                   help="shape set: quick (one odd shape per op, seconds on CPU), small, or kodak "
                        "(the 768x512 network's shapes); default: kodak on cuda, small on cpu")
    p.add_argument("--dtype", default="fp32,fp16,bf16",
                   help="comma-separated input dtypes among fp32, fp16, bf16 (default: all three)")
    p.add_argument("--reps", type=int, default=None,
                   help="timed repetitions per op after one warm-up (default: 10 on cuda, 1 on cpu)")
    p.add_argument("--json", action="store_true", help="print the rows as JSON instead of a table")
    add_threads_argument(p)
    p.set_defaults(func=run)


def _interpreter_ready() -> bool:
    """Enable Triton's interpreter for a CPU run; False if triton was already imported without it
    (then only a fresh process can have it)."""
    if os.environ.get("TRITON_INTERPRET", "0") not in ("", "0"):
        return True
    if "triton" in sys.modules:
        return False
    os.environ["TRITON_INTERPRET"] = "1"
    return True


def run(args: argparse.Namespace) -> int:
    import torch

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    shapes = args.shapes or ("kodak" if device == "cuda" else "small")
    dtypes = [d.strip() for d in args.dtype.split(",") if d.strip()]
    if args.reps is not None and args.reps < 1:
        print("error: --reps must be >= 1", file=sys.stderr)
        return 2
    if device == "cpu" and not _interpreter_ready():
        # Something in this process imported triton first (an embedding program, a test): rerun
        # the same command in a fresh interpreter-enabled process.
        env = dict(os.environ, TRITON_INTERPRET="1")
        argv = [sys.executable, "-m", "samic_fast", "verify", "--device", "cpu", "--shapes", shapes,
                "--dtype", args.dtype, "--threads", str(torch.get_num_threads())]
        argv += (["--reps", str(args.reps)] if args.reps else []) + (["--json"] if args.json else [])
        return subprocess.call(argv, env=env)

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
