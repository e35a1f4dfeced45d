"""Hostile ``.samic`` files against the real default model: every failure is a typed
BitstreamError, raised before the entropy decoder sees a byte.

One real encode of a small photo crop is made per module and reused; the cases mutate its bytes.
"""

from __future__ import annotations

import random
import struct
import zlib

import numpy as np
import pytest

from samic_fast import codec
from samic_fast import fileformat as ff
from samic_fast.errors import (
    BitstreamError,
    CorruptBitstreamError,
    ModelMismatchError,
    NotASamicFileError,
    TruncatedBitstreamError,
    UnsupportedVersionError,
)

N_FLIPS = 2000


@pytest.fixture(scope="module")
def model():
    from samic_fast.model import default_model

    return default_model(backend="reference")


@pytest.fixture(scope="module")
def sample(model) -> bytes:
    from skimage import data

    crop = np.ascontiguousarray(data.coffee()[200:248, 300:361])  # 48x61: padded to 64x64
    return codec.encode_image(model, crop)


@pytest.fixture
def spy(model, monkeypatch):
    """Counts calls that reach the model's entropy decoding."""
    calls = []
    real = model.decompress

    def decompress(strings, shape):
        calls.append(shape)
        return real(strings, shape)

    monkeypatch.setattr(model, "decompress", decompress)
    return calls


def forge(data: bytes, offset: int, fmt: str, value) -> bytes:
    """Change one field and recompute both checksums, as a deliberate forger would."""
    buf = bytearray(data)
    struct.pack_into(fmt, buf, offset, value)
    struct.pack_into("<I", buf, ff.HEADER_SIZE - 4, zlib.crc32(bytes(buf[: ff.HEADER_SIZE - 4])))
    struct.pack_into("<I", buf, len(buf) - 4, zlib.crc32(bytes(buf[:-4])))
    return bytes(buf)


def test_sample_decodes(model, sample, spy):
    out = codec.decode_image(model, sample)
    assert out.shape == (48, 61, 3)
    assert len(spy) == 1  # the spy sees real decodes, so the zero counts below mean something


def test_every_truncation_point(model, sample, spy):
    for n in range(len(sample)):
        with pytest.raises(TruncatedBitstreamError):
            codec.decode_image(model, sample[:n])
    assert spy == []


def test_random_single_bit_flips(model, sample, spy):
    rng = random.Random(20261124)
    kinds = set()
    for _ in range(N_FLIPS):
        bit = rng.randrange(len(sample) * 8)
        buf = bytearray(sample)
        buf[bit // 8] ^= 1 << (bit % 8)
        try:
            codec.decode_image(model, bytes(buf))
        except BitstreamError as exc:
            kinds.add(type(exc))
        else:
            pytest.fail(f"flipping bit {bit} was not detected")
    assert spy == []
    # Flips land in the magic, the version, the header and the payload alike.
    assert CorruptBitstreamError in kinds


def test_every_header_bit_flip(model, sample, spy):
    seen = {}
    for bit in range(ff.HEADER_SIZE * 8):
        buf = bytearray(sample)
        buf[bit // 8] ^= 1 << (bit % 8)
        with pytest.raises(BitstreamError) as info:
            codec.decode_image(model, bytes(buf))
        seen.setdefault(type(info.value), bit)
    assert spy == []
    assert set(seen) == {NotASamicFileError, UnsupportedVersionError, CorruptBitstreamError}


def test_random_garbage(model, spy):
    rng = random.Random(99)
    for _ in range(200):
        blob = rng.randbytes(rng.randint(0, 3000))
        with pytest.raises(NotASamicFileError):
            codec.decode_image(model, blob)
        with pytest.raises(BitstreamError):
            codec.decode_image(model, ff.MAGIC + bytes([ff.FORMAT_VERSION]) + blob)
    assert spy == []


def test_foreign_files(model, sample, tmp_path, spy):
    from PIL import Image

    png = tmp_path / "x.png"
    Image.new("RGB", (4, 4)).save(png)
    with pytest.raises(NotASamicFileError):
        codec.decode_image(model, png.read_bytes())
    with pytest.raises(NotASamicFileError):
        codec.decode_image(model, b"PK\x03\x04")
    with pytest.raises(UnsupportedVersionError, match="version 7"):
        codec.decode_image(model, sample[:8] + b"\x07" + sample[9:])
    assert spy == []


def test_other_weights_digest_is_refused_naming_both(model, sample, spy):
    from samic_fast.model import weights_digest

    foreign = bytes(range(32))
    forged = forge(sample, 44, "32s", foreign)
    with pytest.raises(ModelMismatchError) as info:
        codec.decode_image(model, forged)
    msg = str(info.value)
    assert foreign.hex()[:16] in msg and weights_digest(model).hex()[:16] in msg
    forged = forge(sample, 12, "32s", foreign)
    with pytest.raises(ModelMismatchError, match="config"):
        codec.decode_image(model, forged)
    assert spy == []


@pytest.mark.parametrize(
    "offset,fmt,value",
    [(76, "<I", 5000), (92, "<I", 2), (92, "<I", 4096), (108, "<H", 2)],
    ids=["width_vs_padded", "latent_mismatch", "latent_huge", "n_lists"],
)
def test_forged_structure_never_reaches_the_decoder(model, sample, spy, offset, fmt, value):
    with pytest.raises(CorruptBitstreamError):
        codec.decode_image(model, forge(sample, offset, fmt, value))
    assert spy == []
