"""Read images into the codec's one pixel format: a numpy ``(H, W, 3)`` uint8 RGB array.

Conversion rules (every other input is refused with :class:`ImageFormatError`):

* 8-bit RGB: used as is.
* Grayscale (``L``, ``1``): the gray value is copied to R, G and B.
* Alpha (``RGBA``, ``LA``, ``PA``, ``La``, ``RGBa``, palette with transparency): composited over a
  white background, ``out = round((c·a + 255·(255 − a)) / 255)`` in integers, which is what a viewer
  shows; dropping the alpha would instead reveal whatever colour hides under transparent pixels.
* Palette (``P``): expanded to RGB (to RGBA first when it has a transparent entry).
* 16-bit (``I;16`` and variants, and ``I`` when every value lies in 0..65535): keep the high byte,
  ``v >> 8``. Pillow already does exactly that for 16-bit RGB(A) PNGs, so 16-bit gray and 16-bit
  colour follow one rule. ``I`` with values outside 0..65535 and float ``F`` images are refused:
  their range is unknown.
* Other colour spaces Pillow can convert (``CMYK``, ``YCbCr``, ``LAB``, ``HSV``): Pillow's RGB
  conversion.
* Files: the first frame of an animation; the EXIF orientation is applied (as viewers do).

Numpy input: ``uint8`` or ``uint16`` arrays of shape ``(H, W)``, ``(H, W, 1)``, ``(H, W, 3)`` or
``(H, W, 4)`` follow the same rules. Empty images and images above the container's limits
(:data:`samic_fast.fileformat.MAX_SIDE`, :data:`~samic_fast.fileformat.MAX_PIXELS`) are refused
before their pixels are decoded.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Union

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from samic_fast.errors import ImageFormatError
from samic_fast.fileformat import MAX_PIXELS, MAX_SIDE

ImageLike = Union[str, os.PathLike, Image.Image, np.ndarray]

_GRAY_16 = ("I;16", "I;16L", "I;16B", "I;16N")
_ALPHA_MODES = ("RGBA", "LA", "PA", "La", "RGBa")
_PILLOW_CONVERTIBLE = ("CMYK", "YCbCr", "LAB", "HSV")


def load_rgb(image: ImageLike) -> np.ndarray:
    """Return ``image`` as a C-contiguous ``(H, W, 3)`` uint8 RGB array (rules: module docstring)."""
    if isinstance(image, np.ndarray):
        return _array_to_rgb(image)
    if isinstance(image, Image.Image):
        return _pil_to_rgb(image, name="image")
    if isinstance(image, (str, os.PathLike)):
        return read_image_file(image)
    raise ImageFormatError(
        f"expected a path, a PIL image or a numpy array, got {type(image).__name__}"
    )


def read_image_file(path: Union[str, os.PathLike]) -> np.ndarray:
    """Open an image file and convert it (see the module docstring)."""
    p = Path(path)
    if not p.exists():
        raise ImageFormatError(f"{p}: no such file")
    if not p.is_file():
        raise ImageFormatError(f"{p}: not a file")
    try:
        with warnings.catch_warnings():
            # Our own size limit applies below; Pillow's bomb warning would only add noise.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(p) as im:
                _check_dims(im.width, im.height, str(p))
                im = ImageOps.exif_transpose(im) or im
                return _pil_to_rgb(im, name=str(p))
    except ImageFormatError:
        raise
    except UnidentifiedImageError:
        raise ImageFormatError(f"{p}: not an image file Pillow can read") from None
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError, EOFError) as exc:
        # Truncated or malformed files surface from Pillow's decoders as any of these.
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ImageFormatError(f"{p}: cannot decode image ({msg})") from None


def image_size(path: Union[str, os.PathLike]) -> tuple:
    """``(width, height)`` of an image file from its header, without decoding its pixels (EXIF
    rotation may swap them later; the pixel count stays). Errors as :func:`read_image_file`'s."""
    p = Path(path)
    if not p.is_file():
        return read_image_file(p)  # raises the same "no such file" / "not a file" errors
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(p) as im:
                return im.width, im.height
    except UnidentifiedImageError:
        raise ImageFormatError(f"{p}: not an image file Pillow can read") from None
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError, EOFError) as exc:
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ImageFormatError(f"{p}: cannot decode image ({msg})") from None


def save_rgb(array: np.ndarray, path: Union[str, os.PathLike], fmt: str) -> None:
    """Write an ``(H, W, 3)`` uint8 array to ``path`` in Pillow format ``fmt`` (e.g. ``"PNG"``)."""
    Image.fromarray(np.ascontiguousarray(array), mode=None).save(path, format=fmt)


def format_for_path(path: Union[str, os.PathLike]) -> str:
    """Pillow's writer name for ``path``'s extension; :class:`ImageFormatError` when there is none."""
    ext = Path(path).suffix.lower()
    fmt = Image.registered_extensions().get(ext)
    if fmt is None or fmt not in Image.SAVE:
        raise ImageFormatError(
            f"{path}: cannot tell which image format to write from the extension {ext or '(none)'!r}"
            " (use .png)"
        )
    return fmt


def _check_dims(width: int, height: int, name: str) -> None:
    if width < 1 or height < 1:
        raise ImageFormatError(f"{name}: empty image ({width}x{height})")
    if width > MAX_SIDE or height > MAX_SIDE or width * height > MAX_PIXELS:
        raise ImageFormatError(
            f"{name}: {width}x{height} is above the codec's limit "
            f"({MAX_SIDE} per side, {MAX_PIXELS} pixels)"
        )


def _pil_to_rgb(im: Image.Image, name: str) -> np.ndarray:
    _check_dims(im.width, im.height, name)
    mode = im.mode
    if mode == "P":
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
    elif mode == "1":
        im = im.convert("L")
    elif mode in _PILLOW_CONVERTIBLE:
        im = im.convert("RGB")
    elif mode in _GRAY_16 or mode == "I":
        return _array_to_rgb(np.asarray(im), name=name)
    elif mode == "F":
        raise ImageFormatError(f"{name}: floating-point images (mode F) are not supported")
    elif mode in ("PA", "La", "RGBa"):
        im = im.convert("LA" if mode == "La" else "RGBA")
    mode = im.mode
    if mode not in ("RGB", "L", "RGBA", "LA"):
        raise ImageFormatError(f"{name}: pixel mode {mode!r} is not supported")
    return _array_to_rgb(np.asarray(im), name=name)


def _array_to_rgb(a: np.ndarray, name: str = "array") -> np.ndarray:
    if a.ndim == 2:
        a = a[:, :, None]
    if a.ndim != 3 or a.shape[2] not in (1, 2, 3, 4):
        raise ImageFormatError(
            f"{name}: expected an (H, W), (H, W, 1..4) array, got shape {tuple(a.shape)}"
        )
    _check_dims(a.shape[1], a.shape[0], name)
    if a.dtype == np.uint8:
        a8 = a
    elif a.dtype in (np.uint16, np.dtype(">u2"), np.dtype("<u2")):
        a8 = (a.astype(np.uint16) >> 8).astype(np.uint8)
    elif a.dtype in (np.int32, np.int64, np.uint32):
        if a.size and (a.min() < 0 or a.max() > 65535):
            raise ImageFormatError(
                f"{name}: 32-bit integer pixels outside 0..65535; only 8- and 16-bit images are supported"
            )
        a8 = (a.astype(np.uint32) >> 8).astype(np.uint8)
    else:
        raise ImageFormatError(f"{name}: pixel type {a.dtype} is not supported (use uint8 or uint16)")

    channels = a8.shape[2]
    if channels in (2, 4):  # gray+alpha, RGB+alpha: composite over white
        color = a8[:, :, :-1].astype(np.uint32)
        alpha = a8[:, :, -1:].astype(np.uint32)
        a8 = ((color * alpha + 255 * (255 - alpha) + 127) // 255).astype(np.uint8)
    if a8.shape[2] == 1:
        a8 = np.repeat(a8, 3, axis=2)
    return np.ascontiguousarray(a8)
