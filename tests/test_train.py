"""``samic-fast train``: the loss falls (two gloo ranks), ``--resume`` continues exactly, and the
checkpoint codes through the CLI without naming its configuration."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from samic_fast.config import get_config
from samic_fast.fileformat import read_header
from samic_fast.model import load_checkpoint, weights_digest
from samic_fast.train import batch_positions, milestones, sample_index

TINY = get_config("tiny")
QUICK = ["--arch", "tiny", "--batch-size", "2", "--patch-size", "64", "--lr", "1e-3",
         "--backend", "reference", "--threads", "1"]


def run(argv, cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.pop("TRITON_INTERPRET", None)
    env["OMP_NUM_THREADS"] = "1"
    return subprocess.run([sys.executable, *map(str, argv)], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=600)


def samic(*argv) -> tuple:
    """``samic-fast ARGV`` in this process (no interpreter start-up): ``(status, stderr lines)``."""
    import contextlib
    import io

    from samic_fast.cli import main

    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        status = main([str(a) for a in argv])
    return status, err.getvalue().strip().splitlines()


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    from skimage import data

    root = tmp_path_factory.mktemp("train_data")
    (root / "sub").mkdir()
    Image.fromarray(data.astronaut()[0:150, 100:250]).save(root / "astronaut.png")
    Image.fromarray(data.coffee()[100:220, 200:390]).save(root / "sub" / "coffee.png")
    Image.fromarray(data.chelsea()[50:110, 100:170]).save(root / "chelsea.png")  # under the patch
    return root


def codes_without_arch(ckpt: Path, image: Path, cwd: Path) -> None:
    """compress + decompress with only --checkpoint: the configuration comes from the file."""
    status, err = samic("compress", image, "-o", cwd / "x.samic", "--checkpoint", ckpt, "--backend", "reference")
    assert status == 0, err
    header = read_header((cwd / "x.samic").read_bytes())
    assert header.config_digest == TINY.digest()
    assert header.weights_digest == weights_digest(load_checkpoint(ckpt, backend="reference"))
    status, err = samic("decompress", cwd / "x.samic", "-o", cwd / "x.png", "--checkpoint", ckpt,
                        "--backend", "reference")
    assert status == 0, err
    assert np.asarray(Image.open(cwd / "x.png")).shape == np.asarray(Image.open(image)).shape


def test_two_ranks_loss_falls_and_the_checkpoint_codes(data_dir, tmp_path):
    proc = run(["-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "samic_fast",
                "train", data_dir, "-o", tmp_path / "two.pt", "--steps", "16", *QUICK], tmp_path)
    assert proc.returncode == 0, proc.stderr
    ckpt = torch.load(tmp_path / "two.pt", weights_only=True)
    assert ckpt["history_columns"][1] == "loss"
    losses = ckpt["history"][:, 1].tolist()
    assert len(losses) == 16 and all(np.isfinite(losses))
    assert np.mean(losses[-4:]) < 0.6 * np.mean(losses[:4]), losses
    assert ckpt["world_size"] == 2 and len(ckpt["rng"]) == 2 and ckpt["finished"]
    assert ckpt["arch"] == "tiny" and ckpt["config"] == TINY.canonical() and ckpt["step"] == 16
    assert not any(k.startswith("module.") for k in ckpt["state_dict"])
    codes_without_arch(tmp_path / "two.pt", data_dir / "astronaut.png", tmp_path)


def test_resume_continues_exactly(data_dir, tmp_path):
    status, err = samic("train", data_dir, "-o", tmp_path / "full.pt", "--steps", "6", *QUICK)
    assert status == 0, err
    status, err = samic("train", data_dir, "-o", tmp_path / "part.pt", "--steps", "6", "--stop-after", "3", *QUICK)
    assert status == 0, err
    assert torch.load(tmp_path / "part.pt", weights_only=True)["finished"] is False
    status, err = samic("train", data_dir, "-o", tmp_path / "r.pt", "--resume", tmp_path / "part.pt",
                        "--lambda", "0.5")
    assert status == 1 and len(err) == 1 and "--lambda" in err[0], err
    status, err = samic("train", data_dir, "-o", tmp_path / "resumed.pt", "--resume", tmp_path / "part.pt",
                        "--backend", "reference", "--threads", "1")
    assert status == 0, err
    a = torch.load(tmp_path / "full.pt", weights_only=True)
    b = torch.load(tmp_path / "resumed.pt", weights_only=True)
    assert b["history"][:, 0].tolist() == list(range(1, 7))
    assert torch.equal(b["history"][3], a["history"][3])  # step k+1 after resuming at k = 3: the same loss
    assert torch.equal(b["history"], a["history"])
    assert weights_digest(load_checkpoint(tmp_path / "resumed.pt")) == weights_digest(
        load_checkpoint(tmp_path / "full.pt"))
    codes_without_arch(tmp_path / "full.pt", data_dir / "sub" / "coffee.png", tmp_path)


def test_training_step_under_bfloat16_autocast():
    """What --amp runs on CUDA, on CPU: the model and aux loss tolerate bf16 autocast."""
    from samic_fast.model import default_model
    from samic_fast.train import _WithAux

    net = _WithAux(default_model(TINY, backend="reference").train())
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out, aux = net(torch.rand(1, 3, 64, 64))
    assert aux.dtype == torch.float32 and all(v.dtype == torch.float32 for v in out["likelihoods"].values())
    (out["x_hat"].float().mean() + aux).backward()
    assert all(torch.isfinite(p.grad).all() for p in net.parameters() if p.grad is not None)


def test_sampling_and_schedule():
    # every image once per epoch, whatever the split of positions over ranks
    n = 5
    assert sorted(sample_index(p, n, seed=3) for p in range(n)) == list(range(n))
    assert sorted(sample_index(p, n, seed=3) for p in range(n, 2 * n)) == list(range(n))
    two_ranks = batch_positions(4, 0, 2, 3) + batch_positions(4, 1, 2, 3)
    assert two_ranks == batch_positions(4, 0, 1, 6)  # same global batch as one process of 6
    assert milestones(150) == [140, 145] and milestones(15000) == [14000, 14500]


def test_train_refuses_bad_settings(data_dir, tmp_path):
    for argv, needle in ((["--steps", "2", "--patch-size", "100"], "multiple of 64"),
                         ([], "--steps or --epochs"),
                         (["--steps", "2", "--resume", tmp_path / "none.pt"], "no such file")):
        status, err = samic("train", data_dir, "-o", tmp_path / "o.pt", "--arch", "tiny", *argv)
        assert status == 1 and len(err) == 1 and needle in err[0], err
    status, err = samic("train", tmp_path / "empty", "-o", tmp_path / "o.pt", "--steps", "1")
    assert status == 1 and "not a folder" in err[0]
    assert not (tmp_path / "o.pt").exists()


def test_epochs_and_initial_weights(data_dir, tmp_path):
    from samic_fast.model import default_model

    start = default_model(TINY, backend="reference")
    torch.save({"state_dict": {"module." + k: v for k, v in start.state_dict().items()}}, tmp_path / "init.pt")
    status, err = samic("train", data_dir, "-o", tmp_path / "ft.pt", "--checkpoint", tmp_path / "init.pt",
                        "--epochs", "1", *QUICK)
    assert status == 0, err
    ckpt = torch.load(tmp_path / "ft.pt", weights_only=True)
    assert ckpt["step"] == ckpt["total_steps"] == 2  # 3 images, batch 2: ceil(3 / 2) steps per epoch
    assert ckpt["arch"] == "tiny" and ckpt["settings"]["epochs"] == 1
    status, err = samic("train", data_dir, "-o", tmp_path / "x.pt", "--checkpoint", tmp_path / "init.pt",
                        "--resume", tmp_path / "ft.pt", "--steps", "3")
    assert status == 1 and "exclude each other" in err[0]
