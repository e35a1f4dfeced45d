"""``samic-fast compress IN... -o OUT``: images to ``.samic`` files.

IN may be image files or folders (their image files, not recursive, in name order). One input
file: OUT is the output file, or a folder to put ``<stem>.samic`` in. Several inputs or a folder:
OUT is a folder (created when missing) that receives ``<stem>.samic`` for each.

A bad input is reported as one ``error:`` line and the others are still compressed; the exit
status is then 1. Outputs are written atomically, so a failed file leaves nothing behind.
``--jobs N`` compresses in N worker processes; the bytes are those of a one-by-one run.
Each file goes through :func:`samic_fast.codec.compress_file`, the library's one encode path.
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import List, NamedTuple, Optional, Tuple

from samic_fast.commands.common import add_max_pixels_argument, add_model_arguments, positive_int
from samic_fast.errors import InputFileError, SamicError

SUFFIX = ".samic"


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "compress", help="compress images to .samic files",
        description="Compress images to .samic files. IN may be image files or folders (their "
                    "image files, in name order). With one input file OUT is the output file, or a "
                    "folder to put <stem>.samic in; with several inputs or a folder OUT is a folder "
                    "(created when missing). Prints bytes, bits per pixel and time per file. A bad "
                    "input is reported in one line and the others are still compressed (exit "
                    "status 1).")
    p.add_argument("inputs", nargs="+", type=Path, metavar="IN", help="image files or folders")
    p.add_argument("-o", "--output", type=Path, required=True, metavar="OUT",
                   help="output file (one input) or folder")
    add_model_arguments(p)
    add_max_pixels_argument(p)
    p.add_argument("--jobs", type=positive_int, default=1, metavar="N",
                   help="compress in N parallel processes (default 1)")
    p.set_defaults(func=run)


def _image_extensions() -> set:
    from PIL import Image

    return {ext for ext, fmt in Image.registered_extensions().items() if fmt in Image.OPEN}


def expand_inputs(inputs: List[Path]) -> Tuple[List[Path], bool]:
    """The image files to compress, and whether the output must be a folder."""
    files: List[Path] = []
    folder_mode = len(inputs) > 1
    exts = None
    for path in inputs:
        if path.is_dir():
            folder_mode = True
            exts = exts or _image_extensions()
            found = sorted(
                p for p in path.iterdir()
                if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in exts
            )
            if not found:
                raise InputFileError(f"{path}: folder holds no image files")
            files.extend(found)
        elif path.is_file():
            files.append(path)
        elif path.exists():
            raise InputFileError(f"{path}: not a file or folder")
        else:
            raise InputFileError(f"{path}: no such file or folder")
    return files, folder_mode


def plan_outputs(files: List[Path], output: Path, folder_mode: bool) -> List[Path]:
    """Where each input's ``.samic`` goes; refuses name clashes before any work is done."""
    if folder_mode:
        if output.exists() and not output.is_dir():
            raise SamicError(f"{output}: several inputs need OUT to be a folder, and it is a file")
        outs = [output / (f.stem + SUFFIX) for f in files]
    elif output.is_dir():
        outs = [output / (files[0].stem + SUFFIX)]
    else:
        outs = [output]
    seen = {}
    for src, dst in zip(files, outs):
        key = dst.resolve()
        if key in seen:
            raise SamicError(f"{seen[key]} and {src} would both be written to {dst}")
        seen[key] = src
        if key == src.resolve():
            raise SamicError(f"{dst}: output would overwrite its input")
    return outs


def run(args: argparse.Namespace) -> int:
    files, folder_mode = expand_inputs(args.inputs)
    outs = plan_outputs(files, args.output, folder_mode)
    if folder_mode:
        try:
            args.output.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SamicError(f"{args.output}: cannot create folder ({exc.strerror})") from None
    model_args = _model_args(args)
    jobs = min(args.jobs, len(files))
    if jobs > 1:
        results = _run_parallel(files, outs, model_args, jobs)
    else:
        results = _run_sequential(files, outs, model_args)
    return 1 if any(r.error for r in results) else 0


class Result(NamedTuple):
    src: Path
    dst: Path
    size: int = 0
    pixels: int = 0
    seconds: float = 0.0
    error: Optional[str] = None


def _model_args(args: argparse.Namespace) -> dict:
    """What a worker process needs to build the same model (picklable)."""
    return {"checkpoint": str(args.checkpoint) if args.checkpoint is not None else None,
            "backend": args.backend, "arch": args.arch, "device": args.device,
            "max_pixels": args.max_pixels}


def _progress(total: int):
    from tqdm import tqdm

    # disable=None: a bar on a terminal, silence when stderr is a file or a pipe.
    return tqdm(total=total, unit="img", file=sys.stderr, disable=None, desc="compress")


def _report(bar, result: Result) -> None:
    if result.error:
        bar.write(f"error: {result.error}", file=sys.stderr)
    else:
        bpp = 8.0 * result.size / result.pixels
        bar.write(f"{result.src} -> {result.dst}: {result.size} bytes, {bpp:.4f} bpp, "
                  f"{result.seconds:.2f} s", file=sys.stdout)
    bar.update(1)


def _compress_one(model_box: list, src: Path, dst: Path, model_args: dict) -> Result:
    """Compress one file; a bad input becomes the result's error text, not an exception.

    The model is loaded into ``model_box`` on the first readable image, so that bad inputs fail
    fast; a bad checkpoint does raise, since it would fail every file.
    """
    from samic_fast.codec import compress_file
    from samic_fast.commands.common import check_work_before_loading, model_from_args
    from samic_fast.imageio import image_size

    args = argparse.Namespace(**model_args)
    try:
        width, height = image_size(src)
        check_work_before_loading(width, height, args, what=str(src))
    except SamicError as exc:
        return Result(src, dst, error=str(exc))
    if not model_box:
        model_box.append(model_from_args(args))
    start = time.perf_counter()
    try:
        size = compress_file(src, dst, model_box[0], max_pixels=model_args["max_pixels"])
    except SamicError as exc:
        text = str(exc)
        return Result(src, dst, error=text if text.startswith(str(src)) else f"{src}: {text}")
    except OSError as exc:
        return Result(src, dst, error=f"{dst}: cannot write ({exc.strerror or exc})")
    return Result(src, dst, size, width * height, time.perf_counter() - start)


def _run_sequential(files, outs, model_args) -> List[Result]:
    model_box: list = []  # loaded lazily, on the first readable image
    results = []
    with _progress(len(files)) as bar:
        for src, dst in zip(files, outs):
            result = _compress_one(model_box, src, dst, model_args)
            _report(bar, result)
            results.append(result)
    return results


# Worker-process state: one model per process, loaded on the worker's first readable image.
_WORKER_MODEL: list = []
_WORKER_ARGS: dict = {}


def _worker_init(model_args: dict, threads: int, devices=None) -> None:
    import torch

    # The parent's thread count, not a share of the cores: PyTorch's CPU kernels may split float
    # reductions by thread count, and a last-bit difference next to a rounding boundary would
    # change a quantized latent. The same count keeps the bytes identical to a one-by-one run,
    # at the cost of oversubscribing the cores.
    torch.set_num_threads(threads)
    _WORKER_ARGS.update(model_args)
    if devices is not None:  # the next device of the parent's plan (several GPUs: one per worker)
        _WORKER_ARGS["device"] = devices.get()


def _worker_compress(src: str, dst: str) -> Result:
    return _compress_one(_WORKER_MODEL, Path(src), Path(dst), _WORKER_ARGS)


def _run_parallel(files, outs, model_args: dict, jobs: int) -> List[Result]:
    import torch

    from samic_fast.distributed import device_for_worker

    threads = torch.get_num_threads()
    # spawn, not fork: forking a process whose torch/OpenMP thread pools already ran can hang.
    ctx = multiprocessing.get_context("spawn")
    devices = ctx.Queue()
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    for i in range(jobs):
        devices.put(device_for_worker(i, model_args["device"], gpus))
    results: List[Result] = []
    with ProcessPoolExecutor(max_workers=jobs, mp_context=ctx, initializer=_worker_init,
                             initargs=(model_args, threads, devices)) as pool, \
            _progress(len(files)) as bar:
        futures = [pool.submit(_worker_compress, str(s), str(d)) for s, d in zip(files, outs)]
        try:
            for fut in as_completed(futures):
                result = fut.result()
                _report(bar, result)
                results.append(result)
        except BaseException:
            for fut in futures:
                fut.cancel()
            raise
    return results
