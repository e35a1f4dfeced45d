"""Arguments shared by the commands that run the model, and the one way they build it.

Every coding command (compress, decompress, demo, eval, info, train) calls
:func:`add_model_arguments` and then :func:`model_from_args`, so ``--backend``, ``--checkpoint``,
``--arch``, ``--device`` and ``--threads`` mean the same everywhere.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from pathlib import Path
from typing import Iterator


def default_threads() -> int:
    """The cores this process may use, or ``OMP_NUM_THREADS`` when set (what torch would honour)."""
    env = os.environ.get("OMP_NUM_THREADS", "").strip()
    if env.isdigit() and int(env) > 0:
        return int(env)
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def add_threads_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--threads", type=positive_int, default=None, metavar="N",
                        help="CPU threads for torch (default: the cores this process may use, "
                             "or OMP_NUM_THREADS)")


def apply_threads(args: argparse.Namespace) -> None:
    import torch

    torch.set_num_threads(args.threads or default_threads())


def add_max_pixels_argument(parser: argparse.ArgumentParser) -> None:
    from samic_fast.limits import DEFAULT_MAX_PIXELS

    parser.add_argument("--max-pixels", type=positive_int, default=DEFAULT_MAX_PIXELS, metavar="N",
                        help=f"refuse images of more than N pixels before any model work (default "
                             f"{DEFAULT_MAX_PIXELS} = 4096x4096, about 24 GB of working memory); "
                             f"images that would not fit the device's free memory are refused too")


def check_work_before_loading(width: int, height: int, args: argparse.Namespace,
                              what: str = "image") -> None:
    """Bound the work of one ``width x height`` image before any model is built: ``--max-pixels``
    and the free memory of the device ``--device`` names, estimated with ``--arch``'s
    configuration (the codec checks again with the loaded model)."""
    import torch

    from samic_fast.config import DEFAULT_ARCH, get_config
    from samic_fast.limits import check_image_work

    device = getattr(args, "device", None) or ("cuda" if torch.cuda.is_available() else "cpu")
    check_image_work(width, height, max_pixels=args.max_pixels,
                     config=get_config(getattr(args, "arch", None) or DEFAULT_ARCH),
                     device=device, what=what)


def interactive() -> bool:
    """True when stderr is a terminal: progress and status lines go there, and only there, so
    that logs and pipes receive results and one-line errors only."""
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


@contextlib.contextmanager
def status(text: str) -> Iterator[None]:
    """Say on a terminal what a step that may take a while is doing, then how long it took."""
    if not interactive():
        yield
        return
    print(f"{text} ...", end="", file=sys.stderr, flush=True)
    start = time.perf_counter()
    try:
        yield
    except BaseException:
        print(" failed", file=sys.stderr, flush=True)
        raise
    print(f" done ({time.perf_counter() - start:.1f} s)", file=sys.stderr, flush=True)


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """``--backend``, ``--checkpoint``, ``--arch``, ``--device`` and ``--threads``."""
    from samic_fast.backend import BACKENDS
    from samic_fast.config import ARCHS

    parser.add_argument("--backend", choices=BACKENDS, default="auto",
                        help="kernel path: auto (triton on CUDA, else reference), reference, triton")
    parser.add_argument("--checkpoint", type=Path, default=None,
                        help="model checkpoint (default: the seeded, untrained default model)")
    parser.add_argument("--arch", choices=sorted(ARCHS), default=None,
                        help="named configuration (default: the checkpoint's own, else samic)")
    parser.add_argument("--device", default=None,
                        help="torch device, e.g. cpu, cuda, cuda:1 (default: cuda when present)")
    add_threads_argument(parser)


def model_from_args(args: argparse.Namespace):
    """The model the parsed arguments name (see :func:`samic_fast.codec.load_model`)."""
    from samic_fast.codec import load_model

    with status("loading the model"):
        return load_model(args.checkpoint, backend=args.backend, device=args.device, arch=args.arch)
