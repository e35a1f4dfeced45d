"""Checkpoints in every layout a user may bring, read the same way by every command; devices for
worker processes."""

from __future__ import annotations

import argparse

import numpy as np
import pytest
import torch
from PIL import Image

from samic_fast.codec import encode_image, load_model
from samic_fast.config import get_config
from samic_fast.distributed import device_for_worker, shard
from samic_fast.errors import ConfigError, DeviceError
from samic_fast.fileformat import read_header
from samic_fast.model import default_model, load_checkpoint, weights_digest

TINY = get_config("tiny")


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    from skimage import data

    return np.ascontiguousarray(data.astronaut()[100:164, 180:244])


@pytest.fixture(scope="module")
def tiny():
    return default_model(TINY, backend="reference")


def test_compressai_style_checkpoint_of_default_weights_codes_the_same_bytes(tmp_path, photo):
    reference = default_model(backend="reference")
    wrapped = {"epoch": 3, "loss": torch.tensor(1.5),
               "state_dict": {"module." + k: v for k, v in reference.state_dict().items()}}
    torch.save(wrapped, tmp_path / "compressai.pth.tar")
    loaded = load_model(tmp_path / "compressai.pth.tar", backend="reference", device="cpu")
    assert encode_image(loaded, photo) == encode_image(reference, photo)


@pytest.mark.parametrize("key", ["network", "model_state_dict", None])
def test_other_layouts_and_prefixes(tmp_path, tiny, key):
    state = {"_orig_mod.module." + k: v for k, v in tiny.state_dict().items()}
    torch.save(state if key is None else {key: state, "optimizer": {"state": {}}}, tmp_path / "c.pt")
    loaded = load_checkpoint(tmp_path / "c.pt", backend="reference", arch="tiny")
    assert weights_digest(loaded) == weights_digest(tiny)


def test_recorded_configuration_wins_and_conflicts_are_refused(tmp_path, tiny):
    path = tmp_path / "trained.pt"
    torch.save({"state_dict": tiny.state_dict(), "config": TINY.canonical(), "arch": "tiny"}, path)
    assert load_checkpoint(path, backend="reference").config == TINY  # no --arch needed
    assert load_checkpoint(path, backend="reference", arch="tiny").config == TINY
    with pytest.raises(ConfigError, match="--arch samic conflicts.*tiny"):
        load_checkpoint(path, backend="reference", arch="samic")


def test_plain_state_dict_of_another_arch_names_the_one_that_fits(tmp_path, tiny):
    torch.save(tiny.state_dict(), tmp_path / "plain.pt")
    with pytest.raises(ConfigError, match=r"fits --arch tiny"):
        load_checkpoint(tmp_path / "plain.pt", backend="reference")


def test_bad_checkpoints_give_one_line_and_exit_1(tmp_path, photo, capsys, monkeypatch):
    from samic_fast.cli import main

    monkeypatch.chdir(tmp_path)
    Image.fromarray(photo).save(tmp_path / "img.png")
    torch.save({"args": argparse.Namespace(lr=1e-4), "state_dict": {}}, tmp_path / "pickled.pt")
    torch.save({"epoch": 1}, tmp_path / "nostate.pt")
    torch.save({"state_dict": default_model(TINY).state_dict(), "config": TINY.canonical()},
               tmp_path / "tiny.pt")
    cases = [(["compress", "img.png", "-o", "x.samic", "--checkpoint", "img.png"], "not a PyTorch checkpoint"),
             (["demo", "--image", "img.png", "--checkpoint", "pickled.pt"], "argparse.Namespace"),
             (["eval", "img.png", "--checkpoint", "nostate.pt"], "holds no state_dict"),
             (["compress", "img.png", "-o", "x.samic", "--checkpoint", "missing.pt"], "no such file"),
             (["compress", "img.png", "-o", "x.samic", "--checkpoint", "tiny.pt", "--arch", "samic"],
              "conflicts")]
    for argv, needle in cases:
        status = main(argv + ["--backend", "reference", "--threads", "1"])
        err = capsys.readouterr().err.strip().splitlines()
        assert status == 1 and len(err) == 1 and err[0].startswith("error: ") and needle in err[0], (argv, err)
    assert not (tmp_path / "x.samic").exists()


def test_device_for_worker_spreads_over_visible_gpus():
    assert [device_for_worker(i, None, 3) for i in range(5)] == ["cuda:0", "cuda:1", "cuda:2", "cuda:0", "cuda:1"]
    assert [device_for_worker(i, "cuda", 2) for i in range(3)] == ["cuda:0", "cuda:1", "cuda:0"]
    assert [device_for_worker(i, "cuda:1", 4) for i in range(2)] == ["cuda:1", "cuda:1"]
    assert [device_for_worker(i, "cpu", 4) for i in range(2)] == ["cpu", "cpu"]
    assert device_for_worker(3, None, 0) is None
    assert shard(list("abcde"), 1, 2) == [(1, "b"), (3, "d")]


def test_cuda_device_without_gpu_is_a_clear_error():
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(DeviceError, match="no CUDA GPU"):
        load_model(None, device="cuda:1", arch="tiny")


def test_compress_workers_get_arch_and_device(tmp_path, photo):
    """The worker path of ``compress --jobs`` (run here in-process; test_cli runs real workers):
    each worker takes its device from the parent's plan and codes with the named arch."""
    import queue

    from samic_fast.commands import compress

    Image.fromarray(photo).save(tmp_path / "a.png")
    plan: queue.Queue = queue.Queue()
    plan.put(device_for_worker(0, "cpu", 0))
    try:
        compress._worker_init({"checkpoint": None, "backend": "reference", "arch": "tiny", "device": None,
                               "max_pixels": None}, torch.get_num_threads(), plan)
        assert compress._WORKER_ARGS["device"] == "cpu" and plan.empty()
        result = compress._worker_compress(str(tmp_path / "a.png"), str(tmp_path / "a.samic"))
        assert result[-1] is None and result[2] > 0  # (src, dst, size, ..., error)
        assert compress._WORKER_MODEL[0].config == TINY
    finally:
        compress._WORKER_MODEL.clear()
        compress._WORKER_ARGS.clear()
    data = (tmp_path / "a.samic").read_bytes()
    assert read_header(data).config_digest == TINY.digest()
    assert data == encode_image(default_model(TINY, backend="reference"), tmp_path / "a.png")
