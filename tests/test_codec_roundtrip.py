"""Codec round trips: padding and cropping (fake lossless model), then the real default model."""

from __future__ import annotations

import os

import numpy as np
import pytest
from PIL import Image

from samic_fast import codec
from samic_fast.errors import ModelMismatchError, TruncatedBitstreamError
from samic_fast.fileformat import read_header

from _fake_codec_model import FakeCodecModel


@pytest.fixture
def fake(monkeypatch):
    """The lossless fake model; its weights digest comes from its own buffer."""
    monkeypatch.setattr(
        codec, "model_digests", lambda m: (m.config.digest(), m.weights_digest())
    )
    return FakeCodecModel(seed=1)


@pytest.mark.parametrize(
    "h,w", [(1, 1), (1, 130), (63, 64), (64, 64), (65, 127), (100, 37)],
    ids=lambda v: str(v),
)
def test_padding_is_cropped_back_exactly(fake, h, w):
    rgb = np.random.default_rng(h * 1000 + w).integers(0, 256, (h, w, 3), dtype=np.uint8)
    data = codec.encode_image(fake, rgb)
    header = read_header(data)
    assert (header.width, header.height) == (w, h)
    assert header.padded_width % 64 == 0 and header.padded_height % 64 == 0
    assert header.latent_shape == (header.padded_height // 64, header.padded_width // 64)
    out = codec.decode_image(fake, data)
    assert out.shape == (h, w, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(out, rgb)


def test_padding_replicates_edges():
    rgb = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    padded = codec.pad_image(rgb)
    assert padded.shape == (64, 64, 3)
    np.testing.assert_array_equal(padded[:2, :3], rgb)
    np.testing.assert_array_equal(padded[63, 63], rgb[1, 2])
    np.testing.assert_array_equal(padded[0, 40], rgb[0, 2])


def test_fake_model_mismatch_names_both_digests(fake):
    data = codec.encode_image(fake, np.zeros((8, 8, 3), np.uint8))
    other = FakeCodecModel(seed=2)
    with pytest.raises(ModelMismatchError) as info:
        codec.decode_image(other, data)
    msg = str(info.value)
    assert fake.weights_digest().hex()[:16] in msg and other.weights_digest().hex()[:16] in msg
    assert other.decompress_calls == 0  # refused before any entropy decoding
    with pytest.raises(ModelMismatchError, match="config"):
        codec.decode_image(FakeCodecModel(seed=1, config_name="other"), data)


def test_forged_payload_with_valid_checksums_is_typed(fake):
    """A forger can fix the CRCs; what the model then rejects must still be a BitstreamError."""
    from samic_fast.errors import CorruptBitstreamError
    from samic_fast.fileformat import pack, unpack

    header, strings = unpack(codec.encode_image(fake, np.zeros((8, 8, 3), np.uint8)))
    forged = pack(
        config_digest=header.config_digest, weights_digest=header.weights_digest,
        width=header.width, height=header.height, latent_shape=header.latent_shape,
        strings=[[b"\x78\x9c garbage"], strings[1]],
    )
    with pytest.raises(CorruptBitstreamError, match="payload"):
        codec.decode_image(fake, forged)


def test_file_helpers_are_atomic(fake, tmp_path):
    src = tmp_path / "in.png"
    Image.fromarray(np.full((5, 9, 3), 77, np.uint8)).save(src)
    out = tmp_path / "x.samic"
    n = codec.compress_file(src, out, fake)
    assert out.stat().st_size == n
    png = tmp_path / "y.png"
    assert codec.decompress_file(out, png, fake) == (9, 5)
    assert np.asarray(Image.open(png)).tolist() == np.full((5, 9, 3), 77).tolist()
    # A truncated file: the error is typed and no output (or temp file) is left behind.
    bad = tmp_path / "bad.samic"
    bad.write_bytes(out.read_bytes()[:-1])
    with pytest.raises(TruncatedBitstreamError):
        codec.decompress_file(bad, tmp_path / "z.png", fake)
    assert sorted(os.listdir(tmp_path)) == ["bad.samic", "in.png", "x.samic", "y.png"]


def test_atomic_write_cleans_up_on_failure(tmp_path):
    target = tmp_path / "t.bin"

    def boom(tmp):
        with open(tmp, "wb") as f:
            f.write(b"partial")
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError):
        codec.atomic_write(target, boom)
    assert os.listdir(tmp_path) == []
    codec.atomic_write(target, lambda tmp: open(tmp, "wb").write(b"ok"))
    assert target.read_bytes() == b"ok"
    assert target.stat().st_mode & 0o777 == 0o666 & ~_umask()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# --- the real default model ------------------------------------------------------------------


@pytest.fixture(scope="module")
def real_model():
    from samic_fast.model import default_model

    return default_model(backend="reference")


@pytest.fixture(scope="module")
def real_photo() -> np.ndarray:
    from skimage import data

    # An odd-sized crop of a real photo (padded to 64x64: the real model is slow on CPU), so
    # padding and cropping are exercised too.
    return np.ascontiguousarray(data.astronaut()[100:150, 180:241])


def test_real_model_round_trip(real_model, real_photo):
    from samic_fast.model import weights_digest

    data = codec.encode_image(real_model, real_photo)
    header = read_header(data)
    assert (header.width, header.height) == (61, 50)
    assert header.latent_shape == (1, 1)
    assert header.config_digest == real_model.config.digest()
    assert header.weights_digest == weights_digest(real_model)
    assert codec.encode_image(real_model, real_photo) == data  # deterministic encoder
    out = codec.decode_image(real_model, data)
    assert out.shape == real_photo.shape and out.dtype == np.uint8
    # The codec's crop and rounding of the model's own decoder output.
    import torch

    x_hat = real_model.decompress(*_strings_and_shape(data))["x_hat"]
    expected = (x_hat[0, :, :50, :61].clamp(0, 1) * 255).round().to(torch.uint8)
    np.testing.assert_array_equal(out, expected.permute(1, 2, 0).numpy())


def _strings_and_shape(data: bytes):
    from samic_fast.fileformat import unpack

    header, strings = unpack(data)
    return strings, list(header.latent_shape)


def test_real_model_1x1_and_other_weights(real_model):
    import torch

    data = codec.encode_image(real_model, np.array([[[200, 10, 99]]], np.uint8))
    assert read_header(data).padded_width == 64
    param = next(real_model.parameters())
    saved = param.detach().clone()
    try:
        with torch.no_grad():
            param.add_(1.0)  # the same model with one tensor changed: other weights
        with pytest.raises(ModelMismatchError, match="weights"):
            codec.decode_image(real_model, data)
    finally:
        with torch.no_grad():
            param.copy_(saved)
    out = codec.decode_image(real_model, data)  # the right weights decode it
    assert out.shape == (1, 1, 3) and out.dtype == np.uint8
