"""``samic-fast`` command line: one subcommand per module in :mod:`samic_fast.commands`.

Exit status: 0 on success, 1 when the input is bad or the work fails (a one-line ``error: ...``
on stderr, no traceback), 2 on a usage error (argparse's own), 130 on Ctrl-C.

Registering the commands imports only argparse-level code: each command imports its heavy
dependencies (the model, CompressAI, triton, matplotlib) when it runs. That keeps ``--help``
quick, and it matters for ``verify``: on a CPU machine it must set ``TRITON_INTERPRET=1`` before
anything imports triton.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from typing import Optional, Sequence

# Each module defines ``register(subparsers)``, which adds its parser and sets ``func(args) -> int``.
COMMAND_MODULES = ("demo", "compress", "decompress", "show", "plot", "eval", "train", "info",
                   "verify", "bench")

DEBUG_ENV = "SAMIC_FAST_DEBUG"


def versions() -> str:
    """One line: this package's version and those of torch, triton and CompressAI (installed
    distributions, read without importing them)."""
    from importlib import metadata

    from samic_fast import __version__

    def dist(name: str) -> str:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return "not installed"

    import platform

    return (f"samic-fast {__version__} (torch {dist('torch')}, triton {dist('triton')}, "
            f"compressai {dist('compressai')}, python {platform.python_version()})")


class _VersionAction(argparse.Action):
    def __init__(self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS,
                 help=None):
        super().__init__(option_strings, dest=dest, default=default, nargs=0, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        print(versions())
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="samic-fast",
        description="Fast SAMIC image codec and SASS Triton kernels.",
    )
    parser.add_argument("--version", action=_VersionAction,
                        help="print the versions of samic-fast, torch, triton and CompressAI")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"samic_fast.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"samic_fast.commands.{name}":
                raise
            continue  # command not in this build
        module.register(sub)
    return parser


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def main(argv: Optional[Sequence[str]] = None) -> int:
    from samic_fast.errors import SamicError

    parser = build_parser()
    args = parser.parse_args(argv)
    debug = os.environ.get(DEBUG_ENV, "") not in ("", "0")
    try:
        if hasattr(args, "threads"):
            from samic_fast.commands.common import apply_threads

            apply_threads(args)
        return int(args.func(args) or 0)
    except SamicError as exc:
        print(f"error: {_one_line(exc)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # `samic-fast info --json | head`: the reader left; exit quietly like other Unix tools.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except MemoryError:
        if debug:
            raise
        print("error: out of memory (try a smaller image, or --device cpu)", file=sys.stderr)
        return 1
    except OSError as exc:
        if debug:
            raise
        where = f"{exc.filename}: " if getattr(exc, "filename", None) else ""
        print(f"error: {where}{exc.strerror or _one_line(exc)}", file=sys.stderr)
        return 1
    except Exception as exc:  # a bug or an environment problem: still one line, with a way to see more
        if debug:
            raise
        name = type(exc).__name__
        if name == "OutOfMemoryError":  # torch.cuda.OutOfMemoryError, without importing torch here
            print("error: the GPU ran out of memory (try a smaller image, or --device cpu)",
                  file=sys.stderr)
        else:
            print(f"error: {name}: {_one_line(exc)} (set {DEBUG_ENV}=1 for the traceback)",
                  file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
