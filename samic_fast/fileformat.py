"""The ``.samic`` container (docs/design.md §6): pure bytes in, bytes out; no model, no torch.

Layout, all integers little-endian::

    offset size  field
    0      8     magic            b"\\x89SMC\\r\\n\\x1a\\n" (PNG-style: catches text-mode mangling)
    8      1     version          FORMAT_VERSION (1)
    9      1     flags            0 (reserved; non-zero is refused)
    10     1     pad_mode         0 = replicate (edge) padding, the only mode written
    11     1     latent_ndim      number of used entries of latent_shape (1..4)
    12     32    config_digest    SHA-256 of the model configuration
    44     32    weights_digest   SHA-256 of the model weights
    76     4+4   width, height    original image size in pixels
    84     4+4   padded_width, padded_height  (the next multiples of ALIGN)
    92     4x4   latent_shape     the model's ``shape`` (unused entries 0)
    108    2     n_lists          number of string lists
    110    2     reserved         0
    112    8     total_length     length of the whole file, final CRC included
    120    4     header_crc       CRC32 of bytes 0..119
    124    ...   string table     per list: u32 count; then per string of that list: u32 length
    ...    ...   payload          the strings, list by list, concatenated
    end-4  4     file_crc         CRC32 of every byte before it (header, table and payload)

Why two checksums: the header CRC lets every header field be trusted (or the file refused as
corrupt) before any field is used, so a flipped bit in a size cannot be mistaken for truncation;
``total_length`` then separates a truncated file from a corrupt one. The magic and the version are
checked before the header CRC, because another version may lay its header out differently.

:func:`unpack` checks, in this order: magic, version, header length, header CRC, every header field
against the limits below, the file length, the file CRC, then each count and length of the string
table against the bytes that remain, before a single payload byte is sliced. A crafted file with
valid checksums and a consistent table still reaches the entropy decoder with whatever bytes it
holds; the container cannot judge entropy-coded content.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from typing import List, Sequence, Tuple

from samic_fast.errors import (
    CorruptBitstreamError,
    NotASamicFileError,
    TruncatedBitstreamError,
    UnsupportedVersionError,
)

MAGIC = b"\x89SMC\r\n\x1a\n"
FORMAT_VERSION = 1
SUPPORTED_VERSIONS = (1,)
DIGEST_SIZE = 32

# Images are padded to a multiple of ALIGN (the model's total down-sampling factor).
ALIGN = 64
PAD_REPLICATE = 0
PAD_MODES = {PAD_REPLICATE: "replicate"}

# Sane limits, checked before anything is allocated. 16384 per side and 2**26 pixels (67 M) cover
# 8K UHD (7680x4320 = 33 M) with room, and keep a hostile header from asking the decoder for
# a multi-gigabyte image.
MAX_SIDE = 16384
MAX_PIXELS = 1 << 26
MAX_LATENT_NDIM = 4
MAX_LISTS = 64
MAX_STRINGS_PER_LIST = 1024
MAX_STRINGS = 4096
MAX_FILE_SIZE = 1 << 31  # 2 GiB: far above any real image's bitstream

_HEADER = struct.Struct("<8sBBBB32s32sIIII4IHHQ")
_U32 = struct.Struct("<I")
HEADER_SIZE = _HEADER.size + _U32.size  # fixed header plus its CRC: 124 bytes
CRC_SIZE = _U32.size


@dataclass(frozen=True)
class Header:
    """Everything the fixed header of a ``.samic`` file says, plus the string table's counts.

    ``string_lengths[i][j]`` is the length of string j of list i; the payload is those strings
    concatenated in that order.
    """

    version: int
    config_digest: bytes
    weights_digest: bytes
    width: int
    height: int
    padded_width: int
    padded_height: int
    latent_shape: Tuple[int, ...]
    pad_mode: int = PAD_REPLICATE
    string_lengths: Tuple[Tuple[int, ...], ...] = ()
    total_length: int = 0

    @property
    def pad_mode_name(self) -> str:
        return PAD_MODES.get(self.pad_mode, f"unknown({self.pad_mode})")

    @property
    def payload_size(self) -> int:
        return sum(sum(lengths) for lengths in self.string_lengths)


def padded_size(n: int) -> int:
    """The smallest multiple of :data:`ALIGN` that is >= ``n`` (``n`` >= 1)."""
    return -(-n // ALIGN) * ALIGN


def _crc(data: bytes | memoryview) -> int:
    return zlib.crc32(data) & 0xFFFFFFFF


def pack(
    *,
    config_digest: bytes,
    weights_digest: bytes,
    width: int,
    height: int,
    latent_shape: Sequence[int],
    strings: Sequence[Sequence[bytes]],
) -> bytes:
    """Serialise one encoded image. Raises ``ValueError`` for values the format cannot hold.

    This is the writer's side of the limits that :func:`unpack` enforces, so that everything
    written here is readable there.
    """
    for name, digest in (("config_digest", config_digest), ("weights_digest", weights_digest)):
        if not isinstance(digest, (bytes, bytearray)) or len(digest) != DIGEST_SIZE:
            raise ValueError(f"{name} must be {DIGEST_SIZE} bytes")
    _check_size(width, height, ValueError)
    latent = tuple(int(s) for s in latent_shape)
    pw, ph = padded_size(width), padded_size(height)
    _check_latent(latent, pw, ph, ValueError)
    lists = [[bytes(s) for s in lst] for lst in strings]
    _check_counts([len(lst) for lst in lists], ValueError)

    table = bytearray()
    for lst in lists:
        table += _U32.pack(len(lst))
        for s in lst:
            table += _U32.pack(len(s))
    payload = b"".join(s for lst in lists for s in lst)
    total = HEADER_SIZE + len(table) + len(payload) + CRC_SIZE
    if total > MAX_FILE_SIZE:
        raise ValueError(f"encoded file would be {total} bytes, above the {MAX_FILE_SIZE} limit")

    head = _HEADER.pack(
        MAGIC, FORMAT_VERSION, 0, PAD_REPLICATE, len(latent), bytes(config_digest),
        bytes(weights_digest), width, height, pw, ph, *(latent + (0,) * (MAX_LATENT_NDIM - len(latent))),
        len(lists), 0, total,
    )
    out = bytearray(head)
    out += _U32.pack(_crc(head))
    out += table
    out += payload
    out += _U32.pack(_crc(out))
    return bytes(out)


def read_header(data: bytes) -> Header:
    """Parse and check the fixed header and the string table; do not touch the payload.

    Raises a :class:`~samic_fast.errors.BitstreamError` subclass for anything malformed. The file
    CRC is checked here too, so a header returned by this function describes an intact file.
    """
    header, _ = _parse(data)
    return header


def unpack(data: bytes) -> Tuple[Header, List[List[bytes]]]:
    """Parse a whole file: returns its :class:`Header` and the strings, list by list."""
    header, table_end = _parse(data)
    view = memoryview(data)
    strings: List[List[bytes]] = []
    pos = table_end
    for lengths in header.string_lengths:
        lst = []
        for n in lengths:
            lst.append(bytes(view[pos:pos + n]))
            pos += n
        strings.append(lst)
    return header, strings


def _parse(data: bytes) -> Tuple[Header, int]:
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"expected bytes, got {type(data).__name__}")
    data = bytes(data)
    n = len(data)
    if n < len(MAGIC):
        if data == MAGIC[:n]:
            raise TruncatedBitstreamError(
                f"file is {n} bytes long, too short to hold the {len(MAGIC)}-byte magic"
            )
        raise NotASamicFileError("not a samic_fast file (wrong magic bytes)")
    if data[: len(MAGIC)] != MAGIC:
        raise NotASamicFileError("not a samic_fast file (wrong magic bytes)")
    if n < len(MAGIC) + 1:
        raise TruncatedBitstreamError("file ends right after the magic bytes")
    version = data[len(MAGIC)]
    if version not in SUPPORTED_VERSIONS:
        raise UnsupportedVersionError(
            f"format version {version} is not supported (this build reads {SUPPORTED_VERSIONS})"
        )
    if n < HEADER_SIZE:
        raise TruncatedBitstreamError(f"file is {n} bytes, shorter than the {HEADER_SIZE}-byte header")
    head = data[: _HEADER.size]
    (stored_crc,) = _U32.unpack_from(data, _HEADER.size)
    if _crc(head) != stored_crc:
        raise CorruptBitstreamError("header checksum mismatch (the file is corrupt)")

    (_, _, flags, pad_mode, ndim, cdig, wdig, width, height, pw, ph, l0, l1, l2, l3, n_lists,
     reserved, total) = _HEADER.unpack(head)
    if flags != 0 or reserved != 0:
        raise CorruptBitstreamError(f"reserved header fields are set (flags={flags}, reserved={reserved})")
    if pad_mode not in PAD_MODES:
        raise CorruptBitstreamError(f"unknown padding mode {pad_mode}")
    _check_size(width, height, CorruptBitstreamError)
    if (pw, ph) != (padded_size(width), padded_size(height)):
        raise CorruptBitstreamError(
            f"padded size {pw}x{ph} does not match image size {width}x{height} (align {ALIGN})"
        )
    if not 1 <= ndim <= MAX_LATENT_NDIM:
        raise CorruptBitstreamError(f"latent rank {ndim} outside 1..{MAX_LATENT_NDIM}")
    dims = (l0, l1, l2, l3)
    if any(dims[ndim:]):
        raise CorruptBitstreamError("unused latent shape entries are not zero")
    latent = dims[:ndim]
    _check_latent(latent, pw, ph, CorruptBitstreamError)
    if n_lists > MAX_LISTS:
        raise CorruptBitstreamError(f"{n_lists} string lists, above the limit of {MAX_LISTS}")
    min_total = HEADER_SIZE + 4 * n_lists + CRC_SIZE
    if not min_total <= total <= MAX_FILE_SIZE:
        raise CorruptBitstreamError(f"declared file length {total} is impossible")
    if n < total:
        raise TruncatedBitstreamError(f"file is {n} bytes but its header says {total}: truncated")
    if n > total:
        raise CorruptBitstreamError(f"{n - total} unexpected bytes after the end of the file")
    (file_crc,) = _U32.unpack_from(data, total - CRC_SIZE)
    if _crc(memoryview(data)[: total - CRC_SIZE]) != file_crc:
        raise CorruptBitstreamError("payload checksum mismatch (the file is corrupt)")

    # The table is covered by the CRC, but a crafted file can carry valid checksums: every count
    # and length is still checked against the bytes that remain before anything is sliced.
    end = total - CRC_SIZE
    pos = HEADER_SIZE
    counts: List[int] = []
    lengths_per_list: List[Tuple[int, ...]] = []
    for i in range(n_lists):
        if pos + 4 > end:
            raise CorruptBitstreamError(f"string table ends inside the count of list {i}")
        (count,) = _U32.unpack_from(data, pos)
        pos += 4
        counts.append(count)
        _check_counts(counts, CorruptBitstreamError)
        if pos + 4 * count > end:
            raise CorruptBitstreamError(f"string table of list {i} overruns the file")
        lengths = struct.unpack_from(f"<{count}I", data, pos)
        pos += 4 * count
        lengths_per_list.append(tuple(lengths))
    remaining = end - pos
    payload = sum(sum(lengths) for lengths in lengths_per_list)
    if payload != remaining:
        raise CorruptBitstreamError(
            f"string lengths add up to {payload} bytes but the payload holds {remaining}"
        )
    header = Header(
        version=version, config_digest=cdig, weights_digest=wdig, width=width, height=height,
        padded_width=pw, padded_height=ph, latent_shape=tuple(latent), pad_mode=pad_mode,
        string_lengths=tuple(lengths_per_list), total_length=total,
    )
    return header, pos


def _check_size(width: int, height: int, exc: type) -> None:
    if not (1 <= width <= MAX_SIDE and 1 <= height <= MAX_SIDE):
        raise exc(f"image size {width}x{height} outside 1..{MAX_SIDE} per side")
    if width * height > MAX_PIXELS:
        raise exc(f"image size {width}x{height} has more than {MAX_PIXELS} pixels")


def _check_latent(latent: Tuple[int, ...], pw: int, ph: int, exc: type) -> None:
    """The latent shape must be the padded size divided by one power-of-two stride <= ALIGN.

    That is all the container knows of the model, and it bounds what the decoder allocates by the
    (already bounded) image size. A rank-1 shape is only bounded by the pixel count.
    """
    if not 1 <= len(latent) <= MAX_LATENT_NDIM or any(s < 1 for s in latent):
        raise exc(f"latent shape {list(latent)} is not 1..{MAX_LATENT_NDIM} positive sizes")
    if len(latent) >= 2:
        h, w = latent[-2], latent[-1]
        stride = ph // h if h else 0
        ok = (
            stride >= 1 and stride <= ALIGN and stride & (stride - 1) == 0
            and h * stride == ph and w * stride == pw
        )
        if not ok or any(s > MAX_PIXELS for s in latent[:-2]):
            raise exc(f"latent shape {list(latent)} does not fit the padded size {pw}x{ph}")
    elif latent[0] > MAX_PIXELS:
        raise exc(f"latent shape {list(latent)} is larger than any image")


def _check_counts(counts: Sequence[int], exc: type) -> None:
    if len(counts) > MAX_LISTS:
        raise exc(f"{len(counts)} string lists, above the limit of {MAX_LISTS}")
    if any(c > MAX_STRINGS_PER_LIST for c in counts):
        raise exc(f"a string list holds more than {MAX_STRINGS_PER_LIST} strings")
    if sum(counts) > MAX_STRINGS:
        raise exc(f"more than {MAX_STRINGS} strings in all")
