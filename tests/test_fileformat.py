"""The ``.samic`` container on its own: header round trip, limits, and typed errors."""

from __future__ import annotations

import hashlib
import struct
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from samic_fast import fileformat as ff
from samic_fast.errors import (
    BitstreamError,
    CorruptBitstreamError,
    NotASamicFileError,
    TruncatedBitstreamError,
    UnsupportedVersionError,
)

CFG = hashlib.sha256(b"config").digest()
WTS = hashlib.sha256(b"weights").digest()


def make(width=100, height=70, latent=(2, 2), strings=((b"abc", b""), (b"\x00" * 9,))):
    return ff.pack(
        config_digest=CFG, weights_digest=WTS, width=width, height=height,
        latent_shape=latent, strings=strings,
    )


def refresh_crcs(buf: bytearray) -> bytes:
    """Recompute both checksums, as a forger (not a bit flip) would."""
    struct.pack_into("<I", buf, ff.HEADER_SIZE - 4, zlib.crc32(bytes(buf[: ff.HEADER_SIZE - 4])))
    struct.pack_into("<I", buf, len(buf) - 4, zlib.crc32(bytes(buf[:-4])))
    return bytes(buf)


def test_header_round_trip():
    data = make()
    header, strings = ff.unpack(data)
    assert data[:8] == ff.MAGIC
    assert header.version == ff.FORMAT_VERSION
    assert (header.width, header.height) == (100, 70)
    assert (header.padded_width, header.padded_height) == (128, 128)
    assert header.latent_shape == (2, 2)
    assert header.config_digest == CFG and header.weights_digest == WTS
    assert header.pad_mode_name == "replicate"
    assert header.string_lengths == ((3, 0), (9,))
    assert header.total_length == len(data)
    assert strings == [[b"abc", b""], [b"\x00" * 9]]
    assert ff.read_header(data) == header


@settings(max_examples=60, deadline=None)
@given(
    width=st.integers(1, 700),
    height=st.integers(1, 700),
    stride=st.sampled_from([16, 32, 64]),
    strings=st.lists(st.lists(st.binary(max_size=40), max_size=4), max_size=5),
)
def test_pack_unpack_property(width, height, stride, strings):
    pw, ph = ff.padded_size(width), ff.padded_size(height)
    latent = (ph // stride, pw // stride)
    data = ff.pack(config_digest=CFG, weights_digest=WTS, width=width, height=height,
                   latent_shape=latent, strings=strings)
    header, got = ff.unpack(data)
    assert got == [list(s) for s in strings]
    assert (header.width, header.height, header.latent_shape) == (width, height, latent)
    assert header.padded_width % 64 == 0 and 0 <= header.padded_width - width < 64


def test_every_truncation_is_typed_truncated():
    data = make()
    for n in range(len(data)):
        with pytest.raises(TruncatedBitstreamError):
            ff.unpack(data[:n])


def test_every_single_bit_flip_is_a_typed_error():
    data = make()
    for bit in range(len(data) * 8):
        buf = bytearray(data)
        buf[bit // 8] ^= 1 << (bit % 8)
        with pytest.raises(BitstreamError):
            ff.unpack(bytes(buf))


def test_wrong_magic_and_version():
    data = bytearray(make())
    with pytest.raises(NotASamicFileError, match="magic"):
        ff.unpack(b"\x89PNG\r\n\x1a\n" + bytes(data[8:]))
    with pytest.raises(NotASamicFileError):
        ff.unpack(b"hello")
    data[8] = 2
    with pytest.raises(UnsupportedVersionError, match="version 2"):
        ff.unpack(bytes(data))


def test_trailing_bytes_are_corrupt():
    with pytest.raises(CorruptBitstreamError, match="unexpected bytes"):
        ff.unpack(make() + b"\x00")


# Forged files: checksums recomputed, so only the field checks can catch them.
@pytest.mark.parametrize(
    "offset,fmt,value,match",
    [
        (9, "<B", 1, "reserved"),
        (10, "<B", 7, "padding mode"),
        (11, "<B", 0, "latent rank"),
        (76, "<I", 0, "image size"),
        (76, "<I", ff.MAX_SIDE + 1, "image size"),
        (84, "<I", 192, "padded size"),
        (92, "<I", 3, "latent shape"),
        (92, "<I", 0, "latent shape"),
        (100, "<I", 5, "unused latent"),
        (108, "<H", ff.MAX_LISTS + 1, "string lists"),
        (112, "<Q", 1 << 40, "file length"),
    ],
    ids=["flags", "pad_mode", "ndim0", "width0", "width_huge", "padded", "latent_bad",
         "latent_zero", "latent_unused", "n_lists", "total_length"],
)
def test_forged_header_fields_are_refused(offset, fmt, value, match):
    buf = bytearray(make())
    struct.pack_into(fmt, buf, offset, value)
    with pytest.raises(CorruptBitstreamError, match=match):
        ff.unpack(refresh_crcs(buf))


def test_forged_string_table_is_bounds_checked():
    data = make(strings=((b"abcd",),))
    table = ff.HEADER_SIZE
    # A string length far beyond the file.
    buf = bytearray(data)
    struct.pack_into("<I", buf, table + 4, 0xFFFFFFFF)
    with pytest.raises(CorruptBitstreamError):
        ff.unpack(refresh_crcs(buf))
    # A count that would need a huge allocation for its length table.
    buf = bytearray(data)
    struct.pack_into("<I", buf, table, 0x7FFFFFFF)
    with pytest.raises(CorruptBitstreamError, match="more than"):
        ff.unpack(refresh_crcs(buf))
    # Lengths that do not add up to the payload.
    buf = bytearray(data)
    struct.pack_into("<I", buf, table + 4, 3)
    with pytest.raises(CorruptBitstreamError, match="add up"):
        ff.unpack(refresh_crcs(buf))


def test_random_garbage_is_not_a_samic_file():
    import random

    rng = random.Random(1234)
    for _ in range(300):
        blob = bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 400)))
        with pytest.raises(BitstreamError):
            ff.unpack(blob)
        # Garbage behind a valid magic and version must still be typed.
        with pytest.raises(BitstreamError):
            ff.unpack(ff.MAGIC + bytes([ff.FORMAT_VERSION]) + blob)


def test_pack_refuses_what_it_cannot_write():
    with pytest.raises(ValueError):
        make(width=0)
    with pytest.raises(ValueError):
        make(latent=(3, 3))
    with pytest.raises(ValueError):
        ff.pack(config_digest=b"short", weights_digest=WTS, width=1, height=1,
                latent_shape=(1, 1), strings=())
    with pytest.raises(ValueError):
        make(strings=[[b""]] * (ff.MAX_LISTS + 1))
