"""Bounded work for untrusted input (samic_fast.limits): a file with valid checksums that declares
a huge image, or an image too large for the free memory, is refused in one line before any model
work, by the library and by the CLI."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from samic_fast import limits
from samic_fast.errors import ResourceLimitError
from samic_fast.fileformat import pack


@pytest.fixture(scope="module")
def tiny():
    from samic_fast.codec import load_model

    return load_model(arch="tiny", backend="reference", device="cpu")


def forged(model, width: int, height: int) -> bytes:
    """A small file with valid checksums and the model's own digests that declares
    ``width x height``: without the limits the decoder would run the whole network at that size."""
    from samic_fast.codec import model_digests
    from samic_fast.fileformat import padded_size

    config_digest, weights = model_digests(model)
    shape = [padded_size(height) // 64, padded_size(width) // 64]
    return pack(config_digest=config_digest, weights_digest=weights, width=width, height=height,
                latent_shape=shape, strings=[[bytes(300)], [bytes(400)], [bytes(300)]])


def test_estimate_tracks_the_measured_working_set():
    """The per-pixel estimate is within 15 % of the measured peaks (limits' docstring: 1,249 B
    for the first release's layout, mambaic; 180 B for tiny)."""
    from samic_fast.config import get_config

    assert 1249 * 0.95 <= limits.bytes_per_pixel(get_config("mambaic")) <= 1249 * 1.15
    assert 180 * 0.85 <= limits.bytes_per_pixel(get_config("tiny")) <= 180 * 1.15
    assert limits.bytes_per_pixel(None) == limits.FALLBACK_BYTES_PER_PIXEL
    assert limits.free_memory("cpu") is None or limits.free_memory("cpu") > 0


def test_forged_8k_file_is_refused_fast_by_the_cli(tiny, tmp_path):
    """The reported case: ~1 KB, valid checksums, 8192x8192 declared. The CLI refuses it in one
    line before loading the model (it used to decode for minutes and then need tens of GB)."""
    data = forged(tiny, 8192, 8192)
    assert len(data) < 1300
    (tmp_path / "bomb.samic").write_bytes(data)
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    # The subprocess timeout only guards against a hang; that no model work happens before the
    # refusal is proved structurally by the booby-trapped loader tests below.
    proc = subprocess.run([sys.executable, "-m", "samic_fast", "decompress", "bomb.samic", "-o",
                           "out.png", "--arch", "tiny", "--device", "cpu"],
                          capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300)
    assert proc.returncode == 1, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: bomb.samic: "), proc.stderr
    assert "8192x8192" in lines[0] and "--max-pixels" in lines[0]
    assert sorted(os.listdir(tmp_path)) == ["bomb.samic"]


def _no_model(monkeypatch):
    from samic_fast import codec

    def refuse(*args, **kwargs):
        raise AssertionError("the model was loaded before the limits were checked")

    monkeypatch.setattr(codec, "load_model", refuse)


def test_refusals_come_before_any_model_work(tiny, tmp_path, monkeypatch, capsys):
    """In-process, with the model loader booby-trapped: the pixel limit, then (with the limit
    raised) the memory check against a device that has 1 GB free, for decompress and compress."""
    from samic_fast.cli import main

    _no_model(monkeypatch)
    (tmp_path / "bomb.samic").write_bytes(forged(tiny, 8192, 8192))
    (tmp_path / "big.samic").write_bytes(forged(tiny, 4096, 2048))  # under the pixel limit
    args = ["-o", str(tmp_path / "o.png"), "--arch", "tiny", "--device", "cpu"]
    assert main(["decompress", str(tmp_path / "bomb.samic"), *args]) == 1
    assert "above the limit of 16,777,216" in capsys.readouterr().err

    monkeypatch.setattr(limits, "free_memory", lambda device=None: 10**9)
    for name, extra in (("bomb.samic", ["--max-pixels", str(1 << 26)]), ("big.samic", [])):
        assert main(["decompress", str(tmp_path / name), *args, *extra]) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "of memory, but cpu has 1.0 GB free" in err[0], err

    Image.fromarray(np.zeros((60, 80, 3), np.uint8)).save(tmp_path / "small.png")
    assert main(["compress", str(tmp_path / "small.png"), "-o", str(tmp_path / "s.samic"),
                 "--max-pixels", "1000", "--arch", "tiny"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "80x60 = 4,800 pixels, above the limit of 1,000" in err[0], err
    assert sorted(os.listdir(tmp_path)) == ["big.samic", "bomb.samic", "small.png"]


def test_library_calls_apply_the_same_limits(tiny, monkeypatch):
    """encode_image / decode_image refuse too (library users get the same protection), and
    max_pixels=None lifts only the pixel count."""
    from samic_fast import codec

    with pytest.raises(ResourceLimitError, match="above the limit of 100"):
        codec.encode_image(tiny, np.zeros((20, 30, 3), np.uint8), max_pixels=100)
    with pytest.raises(ResourceLimitError, match="8192x8192"):
        codec.decode_image(tiny, forged(tiny, 8192, 8192))
    monkeypatch.setattr(limits, "free_memory", lambda device=None: 10**9)
    with pytest.raises(ResourceLimitError, match="of memory"):
        codec.decode_image(tiny, forged(tiny, 4096, 2048), max_pixels=None)
