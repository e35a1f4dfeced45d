"""``samic-fast`` command line: one subcommand per module in :mod:`samic_fast.commands`.

Exit status: 0 on success, 1 when the input is bad (a one-line ``error: ...`` on stderr, no
traceback), 2 on a usage error (argparse's own).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Optional, Sequence

from samic_fast.errors import SamicError

# Each module defines ``register(subparsers)``, which adds its parser and sets ``func(args) -> int``.
COMMAND_MODULES = ("demo", "compress", "decompress", "eval", "train", "info", "verify", "bench")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="samic-fast",
        description="Fast SAMIC image codec and SASS Triton kernels.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"samic_fast.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"samic_fast.commands.{name}":
                raise
            continue  # command not built yet
        module.register(sub)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if hasattr(args, "threads"):
            from samic_fast.commands.common import apply_threads

            apply_threads(args)
        return int(args.func(args) or 0)
    except SamicError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # `samic-fast info --json | head`: the reader left; exit quietly like other Unix tools.
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


if __name__ == "__main__":
    sys.exit(main())
