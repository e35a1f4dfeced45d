"""``samic-fast show`` (clusters and scan order of one SAMB) and ``samic-fast plot``
(rate-distortion curves): real pictures are rendered and checked (size, not blank), and bad
inputs give one-line errors. The ``tiny`` configuration keeps ``show`` fast."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("matplotlib")


@pytest.fixture
def run(capsys):
    from samic_fast.cli import main

    def call(*argv):
        status = main([str(a) for a in argv])
        out = capsys.readouterr()
        return status, out.out, out.err

    return call


def assert_picture(path: Path, min_side: int = 200) -> np.ndarray:
    """A real picture: big enough, and with varied content (not one flat colour)."""
    img = np.asarray(Image.open(path).convert("RGB")).astype(np.float64)
    assert min(img.shape[:2]) >= min_side, img.shape
    assert img.std() > 20, "blank picture"
    return img


@pytest.fixture(scope="module")
def photo(tmp_path_factory) -> Path:
    from skimage import data

    path = tmp_path_factory.mktemp("show") / "coffee.png"
    Image.fromarray(data.coffee()[100:228, 150:342]).save(path)  # 192 x 128
    return path


def test_show_draws_clusters_in_scan_order(run, photo, tmp_path):
    from samic_fast.codec import load_model
    from samic_fast.commands import show

    out = tmp_path / "clusters.png"
    status, text, err = run("show", photo, "-o", out, "--arch", "tiny", "--threads", "1")
    assert status == 0, err
    assert "block g_a.1" in text
    img = assert_picture(out)
    # The overlay is drawn in a colour map: the picture holds colours the photo does not.
    assert len(np.unique(img.reshape(-1, 3)[::7], axis=0)) > 500

    # The numbers drawn are the order the block really scans in: the clusters of cluster[perm].
    model = load_model(arch="tiny", backend="reference", device="cpu")
    x = np.asarray(Image.open(photo))
    import torch

    from samic_fast.codec import pad_image

    t = torch.from_numpy(pad_image(x)).permute(2, 0, 1)[None].float() / 255
    feat, sass = show.capture_features(model, "g_a.1", t)
    scan = show.scan_clusters(feat, sass)
    assert feat.shape[-2:] == (64, 96)  # half resolution of the padded 128 x 192 input
    ids = scan["cluster"].reshape(-1)
    order = scan["order"]
    assert sorted(order.tolist()) == sorted(set(ids.tolist()))  # every used cluster once
    # clusters visited by increasing mean (row, col): the key the scan order is built from
    keys = [(scan["rows"][k], scan["cols"][k]) for k in order]
    assert keys == sorted(keys)


def test_show_block_names_and_errors(run, photo, tmp_path):
    status, text, _ = run("show", photo, "-o", tmp_path / "x.png", "--arch", "tiny",
                          "--block", "list")
    names = text.split()
    assert status == 0 and names[0] == "g_a.1" and "h_s.1" in names
    assert {n.split(".")[0] for n in names} == {"g_a", "g_s", "h_a", "h_s", "context"}
    status, _, err = run("show", photo, "-o", tmp_path / "x.png", "--arch", "tiny",
                         "--block", "g_a.9")
    lines = err.strip().splitlines()
    assert status == 1 and len(lines) == 1
    assert "no such SAMB" in lines[0] and ", ".join(names) in lines[0]
    status, _, err = run("show", photo, "-o", tmp_path / "x.txt", "--arch", "tiny")
    assert status == 1 and ".png" in err
    assert not (tmp_path / "x.png").exists() and not (tmp_path / "x.txt").exists()


def test_show_a_deeper_block(run, photo, tmp_path):
    """A block that needs the whole forward pass (h_s: after g_a, h_a and the hyperprior)."""
    out = tmp_path / "hs.png"
    status, text, err = run("show", photo, "-o", out, "--arch", "tiny", "--block", "h_s.1")
    assert status == 0, err
    assert "block h_s.1" in text
    assert_picture(out)


def _write(path: Path, obj) -> Path:
    path.write_text(json.dumps(obj) if not isinstance(obj, str) else obj)
    return path


def test_plot_draws_rate_distortion_curves(run, tmp_path):
    a = _write(tmp_path / "samic.json", {
        "name": "SAMIC", "description": "test",
        "results": {"psnr-rgb": [28.1, 30.2, 32.5, 34.0], "ms-ssim-rgb": [0.93, 0.955, 0.97, 0.98],
                    "bpp": [0.12, 0.25, 0.45, 0.7], "encoding_time": [0.1] * 4}})
    b = _write(tmp_path / "jpeg.json", {"results": {"psnr-rgb": 27.0, "bpp": 0.5}})  # scalars
    out = tmp_path / "rd.png"
    status, text, err = run("plot", a, b, "-o", out, "--title", "Kodak")
    assert status == 0, err
    assert "2 curves" in text
    img = assert_picture(out)
    assert img.shape[1] > img.shape[0]  # two panels side by side

    from samic_fast.commands.plot import load_curve

    curve = load_curve(a)
    assert curve["name"] == "SAMIC"
    assert curve["ms-ssim-rgb"][0] == pytest.approx(-10 * np.log10(1 - 0.93))
    jpeg = load_curve(b)
    assert jpeg["name"] == "jpeg" and jpeg["bpp"] == [0.5] and jpeg["ms-ssim-rgb"] is None


@pytest.mark.parametrize("content,needle", [
    ("{not json", "not valid JSON"),
    ("[1, 2]", "expected a JSON object"),
    ({"results": {"psnr-rgb": [30]}}, 'no "bpp"'),
    ({"results": {"bpp": [0.1, 0.2], "psnr-rgb": [30]}}, "2 bpp values but 1 psnr-rgb"),
    ({"results": {"bpp": [0.1], "psnr-rgb": ["high"]}}, "finite numbers"),
    ({"results": {"bpp": [0.1], "ms-ssim-rgb": [1.5]}}, "[0, 1)"),
    ({"results": {"bpp": [0.1]}}, "neither psnr-rgb nor ms-ssim-rgb"),
])
def test_plot_refuses_bad_json_in_one_line(run, tmp_path, content, needle):
    bad = _write(tmp_path / "bad.json", content)
    status, _, err = run("plot", bad, "-o", tmp_path / "rd.png")
    lines = err.strip().splitlines()
    assert status == 1 and len(lines) == 1 and needle in lines[0] and "bad.json" in lines[0], err
    assert not (tmp_path / "rd.png").exists()
