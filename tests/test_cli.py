"""The ``samic-fast`` commands, run as a user would (subprocesses): exit codes, one-line errors,
no partial output, and ``--jobs`` giving the same bytes as one-by-one compression."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from samic_fast.fileformat import read_header


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.pop("TRITON_INTERPRET", None)  # the CLI runs as a user runs it
    return subprocess.run(
        [sys.executable, "-m", "samic_fast", *map(str, args)],
        capture_output=True, text=True, cwd=cwd, env=env, timeout=600,
    )


def assert_one_line_error(proc: subprocess.CompletedProcess, status: int = 1) -> str:
    assert proc.returncode == status, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: ") and "Traceback" not in proc.stderr
    return lines[0]


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    """Two small real photo crops (odd sizes), as PNG files in their own folder."""
    from skimage import data

    folder = tmp_path_factory.mktemp("photos")
    Image.fromarray(data.astronaut()[60:100, 200:257]).save(folder / "astro.png")
    Image.fromarray(data.chelsea()[100:133, 150:200]).save(folder / "cat.png")
    return folder


def test_bad_input_image(tmp_path):
    bad = tmp_path / "notes.png"
    bad.write_text("definitely not a PNG")
    out = tmp_path / "out.samic"
    line = assert_one_line_error(cli("compress", bad, "-o", out, cwd=tmp_path))
    assert "notes.png" in line and "not an image" in line
    assert not out.exists() and os.listdir(tmp_path) == ["notes.png"]


def test_missing_and_non_file_inputs(tmp_path):
    line = assert_one_line_error(cli("compress", tmp_path / "nope.png", "-o", "x.samic",
                                     cwd=tmp_path))
    assert "no such file" in line
    (tmp_path / "dir.samic").mkdir()
    line = assert_one_line_error(cli("decompress", "dir.samic", "-o", "y.png", cwd=tmp_path))
    assert "not a file" in line
    assert sorted(os.listdir(tmp_path)) == ["dir.samic"]


def test_decompress_bad_files_leave_no_output(tmp_path):
    (tmp_path / "junk.samic").write_bytes(os.urandom(500))
    line = assert_one_line_error(cli("decompress", "junk.samic", "-o", "out.png", cwd=tmp_path))
    assert "junk.samic" in line and "not a samic_fast file" in line
    (tmp_path / "empty.samic").write_bytes(b"")
    assert_one_line_error(cli("decompress", "empty.samic", "-o", "out.png", cwd=tmp_path))
    line = assert_one_line_error(cli("decompress", "junk.samic", "-o", "out.xyz", cwd=tmp_path))
    assert "extension" in line
    assert sorted(os.listdir(tmp_path)) == ["empty.samic", "junk.samic"]


def test_usage_errors_exit_2(capsys):
    from samic_fast.cli import main

    for argv in (["compress", "a.png"], ["compress", "a.png", "-o", "b", "--jobs", "0"],
                 ["decompress", "a", "-o", "b.png", "--backend", "cuda"], []):
        with pytest.raises(SystemExit) as info:
            main(argv)
        assert info.value.code == 2, argv
    assert "usage:" in capsys.readouterr().err


@pytest.fixture(scope="module")
def model():
    from samic_fast.model import default_model

    return default_model(backend="reference")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    """The ``tiny`` model's weights saved as a checkpoint file, as a user's trained one would be
    (tiny keeps three subprocesses loading it cheap; the bytes rules do not depend on the size)."""
    import torch

    from samic_fast.codec import load_model

    path = tmp_path_factory.mktemp("ckpt") / "tiny.pt"
    torch.save(load_model(arch="tiny", backend="reference", device="cpu").state_dict(), path)
    return path


def test_batch_jobs_match_sequential_and_bad_files_are_reported(photos, checkpoint, tmp_path,
                                                                capsys):
    """A folder with two photos and one broken PNG, one by one and with --jobs 2 (two spawned
    worker processes). The parent runs in-process: the workers are the processes under test."""
    from samic_fast.cli import main

    src = tmp_path / "in"
    src.mkdir()
    for name in ("astro.png", "cat.png"):
        (src / name).write_bytes((photos / name).read_bytes())
    (src / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    common = ["--checkpoint", str(checkpoint), "--arch", "tiny"]
    runs = [main(["compress", str(src), "-o", str(tmp_path / "seq"), *common])]
    runs.append(capsys.readouterr().err)
    runs.append(main(["compress", *(str(src / n) for n in ("astro.png", "broken.png", "cat.png")),
                      "-o", str(tmp_path / "par"), "--jobs", "2", *common]))
    runs.append(capsys.readouterr().err)
    for status, err in (runs[:2], runs[2:]):
        lines = err.strip().splitlines()
        assert status == 1 and len(lines) == 1 and lines[0].startswith("error: "), err
        assert "broken.png" in lines[0]
    names = sorted(os.listdir(tmp_path / "seq"))
    assert names == ["astro.samic", "cat.samic"] == sorted(os.listdir(tmp_path / "par"))
    for name in names:
        a = (tmp_path / "seq" / name).read_bytes()
        b = (tmp_path / "par" / name).read_bytes()
        assert a == b, f"{name}: --jobs 2 bytes differ from sequential"
    assert (read_header(a).width, read_header(a).height) == (50, 33)  # cat.samic


def test_default_model_file_decodes_in_another_process(model, photos, tmp_path):
    """The default model must be the same in every process, or its files cannot be decoded."""
    from samic_fast.codec import encode_image

    (tmp_path / "cat.samic").write_bytes(encode_image(model, photos / "cat.png"))
    dec = cli("decompress", "cat.samic", "-o", "cat.png", cwd=tmp_path)
    assert dec.returncode == 0, dec.stderr
    out = np.asarray(Image.open(tmp_path / "cat.png"))
    assert out.shape == (33, 50, 3) and out.dtype == np.uint8


@pytest.fixture
def in_process(model, monkeypatch, capsys):
    """Run ``samic-fast`` in this process with the module's model (no reload): for the commands
    whose output, not process wiring, is under test."""
    from samic_fast import codec
    from samic_fast.cli import main

    monkeypatch.setattr(codec, "load_model", lambda checkpoint=None, backend="auto", **kw: model)

    def run(*argv: str):
        status = main([str(a) for a in argv])
        captured = capsys.readouterr()
        return status, captured.out, captured.err

    return run


def test_info_json(in_process):
    status, out, _ = in_process("info", "--json", "--width", "64", "--height", "64")
    assert status == 0
    info = json.loads(out)
    assert info["paper"] == {"params_M": 24.88, "paper_gmacs_512": 53.41}
    assert abs(info["params"] / 1e6 / 24.88 - 1) <= 0.03 and abs(info["paper_gmacs_512"] / 53.41 - 1) <= 0.05
    assert info["gflops_768x512"] > info["flops_G"] > 0.1
    assert info["arch"] == "samic" and sum(s["count"] for s in info["sass_shapes_768x512"]) == 128
    assert abs(info["params_M"] - info["params"] / 1e6) < 0.01
    assert info["flops_at"] == "64x64"
    assert info["config"]["channels"] == [128, 128, 128, 192, 128, 192]
    assert len(info["weights_digest"]) == 64 and info["backend"] == "reference"
    status, _, err = in_process("info", "--width", "100")
    assert status == 1 and "multiples of 64" in err


def test_demo_on_a_small_image(in_process, photos, tmp_path):
    status, text, _ = in_process("demo", "--image", photos / "cat.png", "--save",
                                 tmp_path / "d.png")
    assert status == 0
    for needle in ("bits per pixel", "PSNR", "encode", "decode", "backend  reference",
                   "untrained"):
        assert needle in text, text
    assert np.asarray(Image.open(tmp_path / "d.png")).shape == (33, 50, 3)


# ------------------------------------------------------------------ the CLI as a new user meets it
def console_script() -> Path:
    """The installed ``samic-fast`` entry point of this environment."""
    path = Path(sys.executable).parent / "samic-fast"
    if not path.exists():
        pytest.skip("the samic-fast console script is not installed in this environment")
    return path


def test_console_script_verify_from_a_clean_environment(tmp_path):
    """`samic-fast verify` as installed, in a subprocess with no TRITON_INTERPRET (nor anything
    else) set: on a CPU machine it must enable Triton's interpreter itself and pass. The quick
    shape set keeps it to seconds; it still runs every fused op against the reference."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path)}
    proc = subprocess.run([str(console_script()), "verify", "--shapes", "quick", "--dtype", "fp32",
                           "--threads", "1"], capture_output=True, text=True, env=env,
                          cwd=tmp_path, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "verify: PASS" in proc.stdout
    for op in ("cluster_assign", "scan_order", "selective_scan", "sass_scan"):
        assert op in proc.stdout


def test_registering_the_commands_imports_nothing_heavy():
    """Building the parser must not import triton (verify configures it first), CompressAI, the
    model or matplotlib: each command imports those when it runs."""
    code = ("import sys; from samic_fast.cli import build_parser; build_parser(); "
            "print(sorted(m for m in ('triton', 'compressai', 'samic_fast.model', 'matplotlib', "
            "'samic_fast.kernels', 'torch.utils.flop_counter') if m in sys.modules))")
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def _subparsers():
    import argparse

    from samic_fast.cli import build_parser

    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return parser, action.choices


def test_help_is_plain_text_and_every_command_takes_threads():
    parser, commands = _subparsers()
    assert {"compress", "decompress", "demo", "show", "plot", "info", "verify", "bench"} <= set(commands)
    for name, sub in [("samic-fast", parser), *commands.items()]:
        text = sub.format_help()
        for markup in ("``", ":func:", ":mod:", ":class:", ":data:", "DESIGN.md"):
            assert markup not in text, f"{name} --help shows {markup!r}"
        if name != "samic-fast":
            assert "--threads" in text, f"{name} has no --threads"


def test_version(capsys):
    from samic_fast.cli import main

    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    import samic_fast

    assert out.startswith(f"samic-fast {samic_fast.__version__} (torch ")
    for name in ("triton", "compressai", "python"):
        assert f"{name} " in out


def test_compress_reports_bpp_and_time_and_decompress_writes_into_a_folder(photos, tmp_path,
                                                                           monkeypatch, capsys):
    """compress prints bytes, bpp and seconds per file; decompress -o DIR/ (new, with a trailing
    slash) and -o DIR (existing) both write DIR/<stem>.png. In-process with the tiny
    configuration: process wiring is the other tests' subject."""
    import re

    from samic_fast.cli import main

    monkeypatch.chdir(tmp_path)
    assert main(["compress", str(photos / "cat.png"), "-o", "cat.samic", "--arch", "tiny"]) == 0
    out = capsys.readouterr().out
    size = (tmp_path / "cat.samic").stat().st_size
    found = re.search(r"cat\.samic: (\d+) bytes, ([0-9.]+) bpp, ([0-9.]+) s", out)
    assert found, out
    assert int(found.group(1)) == size
    assert abs(float(found.group(2)) - 8 * size / (50 * 33)) < 1e-3
    for target in ("new/", "new"):  # created, then existing
        assert main(["decompress", "cat.samic", "-o", target, "--arch", "tiny"]) == 0
        assert "new/cat.png: 50x33" in capsys.readouterr().out
        assert np.asarray(Image.open(tmp_path / "new" / "cat.png")).shape == (33, 50, 3)
    assert os.listdir(tmp_path / "new") == ["cat.png"]
    (tmp_path / "plain").write_text("x")
    assert main(["decompress", "cat.samic", "-o", "plain/", "--arch", "tiny"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not a folder" in err[0]


def test_unexpected_failures_are_one_line_too(in_process, monkeypatch, photos, tmp_path):
    """A bug or an environment failure inside a command is still one line (and exit 1), with a
    pointer to the traceback switch."""
    from samic_fast import codec

    def boom(*args, **kwargs):
        raise RuntimeError("something deep broke\nsecond line of a long message")

    monkeypatch.setattr(codec, "encode_image", boom)
    status, _, err = in_process("demo", "--image", photos / "cat.png")
    assert status == 1
    assert err.strip().splitlines() == [
        "error: RuntimeError: something deep broke (set SAMIC_FAST_DEBUG=1 for the traceback)"]


def test_verify_reruns_itself_when_triton_was_imported_without_the_interpreter(monkeypatch):
    """Embedded use: something imported triton before `verify` could enable the interpreter. On a
    CPU run the command then reruns itself in a fresh process with TRITON_INTERPRET=1 (the
    clean-environment test above covers the normal path)."""
    import samic_fast.commands.verify as verify_cmd
    from samic_fast.cli import main

    import triton  # noqa: F401  (already imported in this test process; made certain here)

    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    calls = []
    monkeypatch.setattr(verify_cmd.subprocess, "call",
                        lambda argv, env: calls.append((argv, env)) or 0)
    assert main(["verify", "--device", "cpu", "--shapes", "quick", "--dtype", "fp32"]) == 0
    (argv, env), = calls
    assert env["TRITON_INTERPRET"] == "1"
    assert argv[1:4] == ["-m", "samic_fast", "verify"] and "quick" in argv and "fp32" in argv
    assert "TRITON_INTERPRET" not in os.environ  # this process was left as it was
