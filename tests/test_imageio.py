"""Input images: every pixel mode is converted by its documented rule, or refused with a typed error."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from samic_fast.errors import ImageFormatError
from samic_fast.imageio import format_for_path, load_rgb, read_image_file

RNG = np.random.default_rng(7)


def rand(shape, dtype=np.uint8, high=256):
    return RNG.integers(0, high, size=shape, dtype=np.int64).astype(dtype)


def over_white(color: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """The documented compositing rule, in floats, for comparison."""
    c, a = color.astype(np.float64), alpha.astype(np.float64)[..., None]
    return np.floor((c * a + 255.0 * (255.0 - a)) / 255.0 + 0.5).astype(np.uint8)


def test_rgb_passes_through_unchanged():
    a = rand((5, 7, 3))
    for src in (a, Image.fromarray(a)):
        out = load_rgb(src)
        assert out.dtype == np.uint8 and out.shape == (5, 7, 3)
        np.testing.assert_array_equal(out, a)


def test_grayscale_is_replicated():
    g = rand((4, 6))
    out = load_rgb(Image.fromarray(g, mode="L"))
    np.testing.assert_array_equal(out, np.stack([g, g, g], axis=-1))
    bw = Image.fromarray(g > 127)  # mode "1"
    assert bw.mode == "1"
    np.testing.assert_array_equal(load_rgb(bw)[..., 0], np.where(g > 127, 255, 0))


def test_rgba_and_la_are_composited_on_white():
    rgba = rand((6, 5, 4))
    rgba[0, 0, 3] = 0  # fully transparent: must become white whatever its colour
    rgba[0, 1, 3] = 255  # opaque: unchanged
    out = load_rgb(Image.fromarray(rgba, mode="RGBA"))
    np.testing.assert_array_equal(out, over_white(rgba[..., :3], rgba[..., 3]))
    assert out[0, 0].tolist() == [255, 255, 255]
    assert out[0, 1].tolist() == rgba[0, 1, :3].tolist()
    la = rand((3, 4, 2))
    out = load_rgb(Image.fromarray(la, mode="LA"))
    expected = over_white(la[..., :1], la[..., 1])
    np.testing.assert_array_equal(out, np.repeat(expected, 3, axis=-1))


def test_palette_with_and_without_transparency(tmp_path):
    a = rand((8, 8, 3))
    p = Image.fromarray(a).quantize(colors=16)
    assert p.mode == "P"
    np.testing.assert_array_equal(load_rgb(p), np.asarray(p.convert("RGB")))
    # Palette entry 0 transparent, saved and reopened through a real PNG file.
    p.info["transparency"] = 0
    path = tmp_path / "pal.png"
    p.save(path, transparency=0)
    out = read_image_file(path)
    idx = np.asarray(Image.open(path))
    assert (out[idx == 0] == 255).all()
    assert (idx == 0).any()


def test_16bit_gray_png_keeps_the_high_byte(tmp_path):
    g16 = rand((9, 11), np.uint16, high=65536)
    path = tmp_path / "g16.png"
    Image.fromarray(g16).save(path)
    assert Image.open(path).mode.startswith("I")
    out = read_image_file(path)
    np.testing.assert_array_equal(out, np.repeat((g16 >> 8).astype(np.uint8)[..., None], 3, -1))
    # The same rule for uint16 numpy input, gray and colour.
    rgb16 = rand((3, 4, 3), np.uint16, high=65536)
    np.testing.assert_array_equal(load_rgb(rgb16), (rgb16 >> 8).astype(np.uint8))


def test_mode_i_in_16bit_range_converts_and_out_of_range_is_refused():
    ok = Image.fromarray(np.array([[0, 65535], [256, 511]], dtype=np.int32))
    assert ok.mode == "I"
    assert load_rgb(ok)[..., 0].tolist() == [[0, 255], [1, 1]]
    bad = Image.fromarray(np.array([[70000, 0]], dtype=np.int32))
    with pytest.raises(ImageFormatError, match="0..65535"):
        load_rgb(bad)


def test_cmyk_is_converted():
    cmyk = Image.new("CMYK", (3, 2), (0, 255, 255, 0))  # pure red
    assert load_rgb(cmyk)[0, 0].tolist() == [255, 0, 0]


@pytest.mark.parametrize(
    "bad,match",
    [
        (Image.new("F", (4, 4)), "floating-point"),
        (np.zeros((0, 5, 3), np.uint8), "empty"),
        (np.zeros((5, 0), np.uint8), "empty"),
        (np.zeros((4, 4, 3), np.float32), "pixel type"),
        (np.zeros((4, 4, 5), np.uint8), "array"),
        (np.zeros((2, 2, 2, 2), np.uint8), "array"),
        (12345, "expected a path"),
    ],
    ids=["mode_F", "zero_height", "zero_width", "float_array", "5_channels", "4d", "int"],
)
def test_refused_inputs(bad, match):
    with pytest.raises(ImageFormatError, match=match):
        load_rgb(bad)


def test_1x1_image():
    out = load_rgb(np.array([[[1, 2, 3]]], np.uint8))
    assert out.shape == (1, 1, 3) and out.tolist() == [[[1, 2, 3]]]


def test_files_that_are_not_images(tmp_path):
    text = tmp_path / "notes.png"
    text.write_text("not an image at all\n")
    with pytest.raises(ImageFormatError, match="not an image"):
        read_image_file(text)
    # A real PNG cut short.
    good = tmp_path / "good.png"
    Image.fromarray(rand((64, 64, 3))).save(good)
    cut = tmp_path / "cut.png"
    cut.write_bytes(good.read_bytes()[:200])
    with pytest.raises(ImageFormatError, match="cut.png"):
        read_image_file(cut)
    with pytest.raises(ImageFormatError, match="no such file"):
        read_image_file(tmp_path / "missing.png")
    with pytest.raises(ImageFormatError, match="not a file"):
        read_image_file(tmp_path)
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    with pytest.raises(ImageFormatError):
        read_image_file(empty)


def test_oversized_image_refused_before_decoding(tmp_path):
    # A PNG header claiming 20000x20000 pixels: refused from its size, without decoding.
    img = Image.new("L", (20000, 1))
    path = tmp_path / "wide.png"
    img.save(path)
    with pytest.raises(ImageFormatError, match="limit"):
        read_image_file(path)


def test_exif_orientation_is_applied(tmp_path):
    a = rand((2, 3, 3))
    im = Image.fromarray(a)
    exif = im.getexif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise when displayed
    path = tmp_path / "rot.jpg"
    im.save(path, exif=exif, quality=100)
    assert read_image_file(path).shape == (3, 2, 3)


def test_output_format_from_extension():
    assert format_for_path("x.png") == "PNG"
    assert format_for_path("x.JPG") == "JPEG"
    with pytest.raises(ImageFormatError, match="extension"):
        format_for_path("x.samic")
    with pytest.raises(ImageFormatError, match="extension"):
        format_for_path("noext")
