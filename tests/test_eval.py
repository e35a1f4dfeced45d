"""``samic-fast eval``: real bitstreams, CompressAI's JSON layout, and the same per-image results
from one process and from two torchrun ranks (gloo on CPU)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from samic_fast.codec import encode_image
from samic_fast.config import get_config
from samic_fast.evaluate import MS_SSIM_MIN_SIDE, ms_ssim_rgb, psnr, summarize
from samic_fast.model import default_model


def run(argv, cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.pop("TRITON_INTERPRET", None)
    env["OMP_NUM_THREADS"] = "1"
    return subprocess.run([sys.executable, *map(str, argv)], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=600)


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    """Two real photo crops, large enough for MS-SSIM, of odd sizes."""
    from skimage import data

    folder = tmp_path_factory.mktemp("eval_photos")
    Image.fromarray(data.astronaut()[0:170, 150:333]).save(folder / "a_astronaut.png")
    Image.fromarray(data.coffee()[90:255, 200:371]).save(folder / "b_coffee.png")
    return folder


def test_one_process_and_two_ranks_agree(photos, tmp_path, capsys):
    from samic_fast.cli import main

    common = [photos, "--arch", "tiny", "--backend", "reference", "--per-image", "--threads", "1"]
    status = main([str(a) for a in ["eval", *common, "--json", tmp_path / "one.json"]])  # in-process
    one = capsys.readouterr()
    assert status == 0, one.err
    two = run(["-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
               "-m", "samic_fast", "eval", *common, "--json", tmp_path / "two.json"], cwd=tmp_path)
    assert two.returncode == 0, two.stderr
    a = json.loads((tmp_path / "one.json").read_text())
    b = json.loads((tmp_path / "two.json").read_text())
    assert json.loads(one.out) == a  # printed and written alike
    assert set(a) == {"name", "description", "results", "images"} and a["name"] == "samic_fast-tiny"
    assert set(a["results"]) == {"psnr-rgb", "ms-ssim-rgb", "bpp", "encoding_time", "decoding_time"}
    assert a["images"] == b["images"] == [str(photos / "a_astronaut.png"), str(photos / "b_coffee.png")]
    for key in ("bpp", "psnr-rgb", "ms-ssim-rgb"):
        assert a["results"][key] == b["results"][key], key
    assert all(t > 0 for key in ("encoding_time", "decoding_time") for t in b["results"][key])
    assert "lpips" in one.err  # absent here, and said so

    # bpp is that of the very bytes compress writes
    model = default_model(get_config("tiny"), backend="reference")
    for path, bpp in zip(a["images"], a["results"]["bpp"]):
        rgb = np.asarray(Image.open(path))
        assert bpp == 8 * len(encode_image(model, rgb)) / (rgb.shape[0] * rgb.shape[1])
        assert 0.0 < a["results"]["ms-ssim-rgb"][0] <= 1.0


def test_means_and_small_images():
    records = [
        {"index": 1, "psnr-rgb": 30.0, "ms-ssim-rgb": None, "bpp": 0.5, "encoding_time": 1.0, "decoding_time": 2.0},
        {"index": 0, "psnr-rgb": 20.0, "ms-ssim-rgb": 0.9, "bpp": 1.5, "encoding_time": 3.0, "decoding_time": 4.0},
    ]
    out, notes = summarize(records, "n", "d")
    assert out["results"] == {"psnr-rgb": 25.0, "ms-ssim-rgb": 0.9, "bpp": 1.0,
                              "encoding_time": 2.0, "decoding_time": 3.0}
    assert len(notes) == 1 and "1 of 2" in notes[0] and "left out of the mean" in notes[0]
    out, _ = summarize(records, "n", "d", per_image=True, images=["x.png", "y.png"])
    assert out["results"]["ms-ssim-rgb"] == [0.9, None] and out["images"] == ["x.png", "y.png"]
    out, _ = summarize([dict(records[0], index=0)], "n", "d")
    assert "ms-ssim-rgb" not in out["results"]  # no image large enough: key absent


def test_metrics_on_known_images():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (MS_SSIM_MIN_SIDE, MS_SSIM_MIN_SIDE + 3, 3), dtype=np.uint8)
    b = a.copy()
    b[0, 0, 0] ^= 1  # one unit of error on one value
    assert math.isclose(psnr(a, b), 10 * math.log10(255**2 * a.size), rel_tol=1e-12)
    assert psnr(a, a) == math.inf
    c = a.copy()
    c[:40] = 128  # a band of flat grey: structure lost
    assert ms_ssim_rgb(a, a) == pytest.approx(1.0, abs=1e-6) and ms_ssim_rgb(a, c) < 0.9
    assert ms_ssim_rgb(a[:160], a[:160]) is None


def test_bad_image_in_a_folder_fails_before_any_work(tmp_path, photos, capsys):
    from samic_fast.cli import main

    (tmp_path / "a.png").write_bytes((photos / "a_astronaut.png").read_bytes())
    (tmp_path / "b.png").write_text("not an image")
    status = main(["eval", str(tmp_path), "--arch", "tiny", "--json", str(tmp_path / "r.json")])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 1 and len(err) == 1 and "b.png" in err[0]
    assert not (tmp_path / "r.json").exists()


def test_lpips_key_present_only_with_a_metric(tmp_path, monkeypatch):
    import types

    import torch

    from samic_fast import loss
    from samic_fast.evaluate import evaluate

    # the lpips package importable but its AlexNet backbone not cached: no metric, one reason
    monkeypatch.setitem(sys.modules, "lpips", types.ModuleType("lpips"))
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    fn, reason = loss.load_lpips()
    assert fn is None and "AlexNet" in reason and str(tmp_path) in reason

    model = default_model(get_config("tiny"), backend="reference")
    rgb = np.ascontiguousarray(np.asarray(Image.new("RGB", (70, 64), (200, 30, 90))))
    calls = []

    def fake_lpips(x_hat, x):  # stands in for LPIPS-AlexNet: inputs in [0, 1], (1, 3, H, W)
        calls.append((x_hat.shape, float(x.max())))
        return (x_hat - x).abs().mean()

    records = evaluate(model, [(0, rgb)], lpips_fn=fake_lpips)
    assert calls == [((1, 3, 64, 70), pytest.approx(200 / 255))]
    out, _ = summarize(records, "n", "d")
    assert out["results"]["lpips"] == pytest.approx(records[0]["lpips"]) and out["results"]["lpips"] > 0
    out, _ = summarize(evaluate(model, [(0, rgb)]), "n", "d")
    assert "lpips" not in out["results"]
