"""Typed errors raised by samic_fast.

Every error the package raises on bad input derives from :class:`SamicError`, and also from the
builtin class a caller would naturally catch (``ValueError`` for bad values, ``TypeError`` for bad
dtypes), so ``except ValueError`` keeps working for code that does not know this package.
"""

from __future__ import annotations


class SamicError(Exception):
    """Base class of every error raised by samic_fast on bad input or state."""


class ShapeError(SamicError, ValueError):
    """A tensor has the wrong rank, an inconsistent size, or is empty."""


class DTypeError(SamicError, TypeError):
    """A tensor has a dtype the op does not accept."""


class DeviceError(SamicError, ValueError):
    """Tensors that must live on one device do not, or the backend cannot run on that device."""


class LayoutError(SamicError, ValueError):
    """A tensor is not contiguous where the op needs a dense row-major layout."""


class BackendError(SamicError, RuntimeError):
    """The requested backend is unknown or unavailable."""


class BitstreamError(SamicError, ValueError):
    """A compressed file cannot be decoded: base class of the bitstream errors below."""


class NotASamicFileError(BitstreamError):
    """The data does not start with the samic_fast magic bytes."""


class UnsupportedVersionError(BitstreamError):
    """The file was written by a format version this build cannot read."""


class TruncatedBitstreamError(BitstreamError):
    """The file ends before the lengths in its header say it should."""


class CorruptBitstreamError(BitstreamError):
    """The file's checksum or internal structure is inconsistent."""


class ModelMismatchError(BitstreamError):
    """The file was encoded with a different model configuration or weights."""


class ImageFormatError(SamicError, ValueError):
    """An input image cannot be read or has a pixel format the codec refuses."""


class InputFileError(SamicError, OSError):
    """An input path (image, folder, checkpoint) does not exist or cannot be read."""


class ConfigError(SamicError, ValueError):
    """A model configuration or checkpoint is unknown, malformed, or does not fit the model."""


class ResourceLimitError(SamicError, ValueError):
    """An image (to encode, or declared by a file to decode) would need more pixels or memory
    than the configured limits allow; refused before any model work."""
