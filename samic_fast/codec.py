"""Encode and decode whole images to and from ``.samic`` files (docs/design.md §6).

The container itself (bytes, limits, checksums) is :mod:`samic_fast.fileformat`; pixel formats are
:mod:`samic_fast.imageio`. This module joins them to a model that has the CompressAI interface::

    model.compress(x)  -> {"strings": list[list[bytes]], "shape": list[int]}   x: (1, 3, H, W)
    model.decompress(strings, shape) -> {"x_hat": (1, 3, H, W)}

with ``H`` and ``W`` multiples of 64, plus ``model.config.digest()`` and
:func:`samic_fast.model.weights_digest`. Nothing here depends on the model's internals.

Padding: an image of any size is padded on the right and bottom to the next multiple of 64 by
replicating its last row and column (``numpy.pad(mode="edge")``): unlike reflection this works for
a 1-pixel side, and unlike zeros it adds no edge for the codec to spend bits on. The decoder crops
the padding away.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Callable, Optional, Tuple, Union

import numpy as np
import torch

from samic_fast.errors import (
    BitstreamError,
    CorruptBitstreamError,
    InputFileError,
    ModelMismatchError,
    SamicError,
)
from samic_fast.fileformat import Header, pack, padded_size, unpack
from samic_fast.fileformat import read_header as _read_header
from samic_fast.imageio import ImageLike, format_for_path, image_size, load_rgb, save_rgb
from samic_fast.limits import DEFAULT_MAX_PIXELS, check_image_work

PathLike = Union[str, os.PathLike]

__all__ = [
    "Header",
    "encode_image",
    "decode_image",
    "read_header",
    "compress_file",
    "decompress_file",
    "model_digests",
    "load_model",
    "resolve_device",
    "pad_image",
    "check_work",
]


def read_header(data: bytes) -> Header:
    """Parse and check a ``.samic`` file's header (see :func:`samic_fast.fileformat.read_header`)."""
    return _read_header(data)


def model_digests(model) -> Tuple[bytes, bytes]:
    """``(config digest, weights digest)`` of ``model``, the two SHA-256 values a file records."""
    from samic_fast.model import weights_digest  # lazy: the container does not need the model

    return bytes(model.config.digest()), bytes(weights_digest(model))


def load_model(checkpoint: Optional[PathLike] = None, backend: str = "auto",
               device=None, arch: Optional[str] = None):
    """The model the CLI codes with: ``checkpoint``'s weights, or the seeded default model.

    The configuration is the checkpoint's own when it records one (checkpoints written by
    ``samic-fast train`` do); otherwise ``arch`` names it (:data:`samic_fast.config.ARCHS`; default
    ``samic``). An ``arch`` that contradicts the checkpoint raises
    :class:`~samic_fast.errors.ConfigError`. Plain state_dicts and CompressAI-style dicts
    (``state_dict``, ``network``, ``model_state_dict``; ``module.`` prefixes) are accepted, see
    :func:`samic_fast.model.load_checkpoint`. ``device`` (a ``torch.device`` or its name) defaults
    to CUDA when present. A missing or unreadable checkpoint raises
    :class:`~samic_fast.errors.SamicError` with one readable line.
    """
    from samic_fast import model as samic_model
    from samic_fast.config import get_config

    device = resolve_device(device)
    if checkpoint is None:
        model = samic_model.default_model(get_config(arch) if arch is not None else None, backend=backend)
    else:
        path = Path(checkpoint)
        if not path.is_file():
            raise InputFileError(f"checkpoint {path}: no such file")
        try:
            model = samic_model.load_checkpoint(path, backend=backend, arch=arch)
        except SamicError:
            raise
        except Exception as exc:  # torch.load's failures have no common type
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise InputFileError(f"checkpoint {path}: cannot load ({first})") from exc
    return model.to(device).eval()


def resolve_device(device=None) -> torch.device:
    """``device`` as a ``torch.device`` (default: CUDA when present, else CPU); a malformed name or
    a CUDA device this machine lacks raises :class:`~samic_fast.errors.DeviceError`."""
    from samic_fast.errors import DeviceError

    try:
        dev = torch.device(device) if device is not None else torch.device(
            "cuda" if torch.cuda.is_available() else "cpu")
    except (RuntimeError, TypeError) as exc:
        raise DeviceError(f"bad device {device!r} ({str(exc).splitlines()[0]})") from None
    if dev.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise DeviceError(f"device {device!r}: no CUDA GPU is available here")
        if dev.index is not None and dev.index >= count:
            raise DeviceError(f"device {device!r}: only {count} CUDA GPU(s) are visible")
    return dev


def pad_image(rgb: np.ndarray) -> np.ndarray:
    """Pad an ``(H, W, 3)`` array on the bottom and right to multiples of 64 (edge replication)."""
    h, w = rgb.shape[:2]
    return np.pad(rgb, ((0, padded_size(h) - h), (0, padded_size(w) - w), (0, 0)), mode="edge")


def _model_device(model) -> torch.device:
    try:
        return next(model.parameters()).device
    except (AttributeError, StopIteration):
        return torch.device("cpu")


def check_work(model, width: int, height: int, max_pixels: Optional[int] = DEFAULT_MAX_PIXELS,
               what: str = "image") -> None:
    """Refuse (:class:`~samic_fast.errors.ResourceLimitError`) an image above ``max_pixels`` or
    too large for ``model``'s device's free memory (:mod:`samic_fast.limits`)."""
    check_image_work(width, height, max_pixels=max_pixels, config=getattr(model, "config", None),
                     device=_model_device(model), what=what)


def encode_image(model, image: ImageLike, max_pixels: Optional[int] = DEFAULT_MAX_PIXELS) -> bytes:
    """Compress one image (path, PIL image or numpy array; see :mod:`samic_fast.imageio`).

    Images above ``max_pixels`` (None: no limit) or too large for the free memory are refused
    before their pixels are decoded (:mod:`samic_fast.limits`).
    """
    if isinstance(image, (str, os.PathLike)):
        check_work(model, *image_size(image), max_pixels=max_pixels, what=str(image))
    rgb = load_rgb(image)
    height, width = rgb.shape[:2]
    check_work(model, width, height, max_pixels=max_pixels,
               what=str(image) if isinstance(image, (str, os.PathLike)) else "image")
    padded = pad_image(rgb)
    x = torch.from_numpy(padded).permute(2, 0, 1).unsqueeze(0).to(torch.float32).div_(255.0)
    x = x.to(_model_device(model))
    with torch.inference_mode():
        out = model.compress(x)
    strings = [[bytes(s) for s in lst] for lst in out["strings"]]
    shape = [int(s) for s in out["shape"]]
    config_digest, weights = model_digests(model)
    return pack(
        config_digest=config_digest, weights_digest=weights, width=width, height=height,
        latent_shape=shape, strings=strings,
    )


def decode_image(model, data: bytes, max_pixels: Optional[int] = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Decompress a ``.samic`` file's bytes into an ``(H, W, 3)`` uint8 RGB array.

    Every structural check (magic, version, checksums, sizes, counts, the model digests) runs
    before the entropy decoder sees a byte; failures raise a
    :class:`~samic_fast.errors.BitstreamError` subclass. A declared size above ``max_pixels``
    (None: no limit) or too large for the free memory raises
    :class:`~samic_fast.errors.ResourceLimitError` first.
    """
    header, strings = unpack(data)
    check_work(model, header.width, header.height, max_pixels=max_pixels,
               what="the file's image")
    check_model(header, model)
    try:
        with torch.inference_mode():
            out = model.decompress(strings, list(header.latent_shape))
    except BitstreamError:
        raise  # the model's own typed verdict on the payload
    except torch.cuda.OutOfMemoryError:
        raise  # not the file's fault
    except (RuntimeError, ValueError, IndexError) as exc:
        # Only a crafted file with valid checksums can get here; report it as what it is.
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CorruptBitstreamError(f"the entropy-coded payload cannot be decoded ({first})") from exc
    x_hat = out["x_hat"]
    expected = (1, 3, header.padded_height, header.padded_width)
    if tuple(x_hat.shape) != expected:
        raise CorruptBitstreamError(
            f"decoded image has shape {tuple(x_hat.shape)}, expected {expected}"
        )
    x_hat = x_hat[0, :, : header.height, : header.width]
    pixels = x_hat.detach().float().clamp_(0.0, 1.0).mul_(255.0).round_().to(torch.uint8)
    return np.ascontiguousarray(pixels.permute(1, 2, 0).cpu().numpy())


def check_model(header: Header, model) -> None:
    """Raise :class:`ModelMismatchError` unless ``model`` is the one that wrote ``header``."""
    config_digest, weights = model_digests(model)
    if header.config_digest != config_digest:
        raise ModelMismatchError(
            f"file was encoded with model config {header.config_digest.hex()[:16]}, "
            f"but this model's config is {config_digest.hex()[:16]}"
        )
    if header.weights_digest != weights:
        raise ModelMismatchError(
            f"file was encoded with weights {header.weights_digest.hex()[:16]}, "
            f"but this model's weights are {weights.hex()[:16]}; decode with the same checkpoint"
        )


def atomic_write(path: PathLike, write: Callable[[str], None]) -> None:
    """Call ``write(tmp_path)`` then rename the temporary file onto ``path``.

    The temporary file lives in the destination folder (so ``os.replace`` is an atomic rename on
    one file system) and is removed on any error, so a failed write never leaves partial output.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent or ".")
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        # mkstemp creates 0600 files; give the result the permissions a plain open() would.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def _write_bytes(data: bytes) -> Callable[[str], None]:
    def write(tmp: str) -> None:
        with open(tmp, "wb") as f:
            f.write(data)

    return write


def compress_file(in_path: PathLike, out_path: PathLike, model,
                  max_pixels: Optional[int] = DEFAULT_MAX_PIXELS) -> int:
    """Compress the image file ``in_path`` into ``out_path``; returns the bytes written."""
    data = encode_image(model, Path(in_path), max_pixels=max_pixels)
    atomic_write(out_path, _write_bytes(data))
    return len(data)


def decompress_file(in_path: PathLike, out_path: PathLike, model,
                    max_pixels: Optional[int] = DEFAULT_MAX_PIXELS) -> Tuple[int, int]:
    """Decode the ``.samic`` file ``in_path`` to the image ``out_path`` (format from its
    extension, e.g. ``.png``); returns ``(width, height)``."""
    fmt = format_for_path(out_path)  # refuse an unknown extension before decoding anything
    try:
        data = Path(in_path).read_bytes()
    except OSError as exc:
        raise InputFileError(f"{in_path}: cannot read ({exc.strerror or exc})") from None
    rgb = decode_image(model, data, max_pixels=max_pixels)
    atomic_write(out_path, lambda tmp: save_rgb(rgb, tmp, fmt))
    return rgb.shape[1], rgb.shape[0]
