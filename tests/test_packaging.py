"""Packaging: the package installs and runs its reference backend where triton does not exist
(macOS, Windows), and the optional pieces are optional."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# A subprocess in which `import triton` fails as it does where triton is not installed.
NO_TRITON = textwrap.dedent("""
    import importlib.abc, sys

    class NoTriton(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name == "triton" or name.startswith("triton."):
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
            return None

    sys.meta_path.insert(0, NoTriton())
""")


def test_reference_backend_runs_without_triton(tmp_path):
    """Import, the default ``auto`` backend, a real encode/decode round trip of the tiny model, the
    CLI, and a clear BackendError when triton is asked for; triton is never imported."""
    code = NO_TRITON + textwrap.dedent(f"""
        import numpy as np, torch
        from PIL import Image
        import samic_fast
        from samic_fast import codec, ops
        from samic_fast.cli import main
        from samic_fast.errors import BackendError

        model = codec.load_model(arch="tiny", device="cpu")  # backend auto
        img = np.random.default_rng(0).integers(0, 256, (40, 50, 3), dtype=np.uint8)
        data = codec.encode_image(model, img)
        assert codec.decode_image(model, data).shape == (40, 50, 3)
        x = torch.randn(1, 9, 3)
        args = (x, torch.randn(1, 9, 3), -torch.rand(3, 2), torch.randn(1, 9, 2), torch.randn(1, 9, 2))
        ops.selective_scan(*args)
        try:
            ops.selective_scan(*args, backend="triton")
            raise SystemExit("triton backend did not refuse")
        except BackendError as exc:
            assert "triton" in str(exc)
        Image.fromarray(img).save(r"{tmp_path}/in.png")
        assert main(["compress", r"{tmp_path}/in.png", "-o", r"{tmp_path}/in.samic",
                     "--arch", "tiny", "--threads", "1"]) == 0
        assert "triton" not in sys.modules
        print("OK")
    """)
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                          timeout=300)
    assert proc.returncode == 0 and proc.stdout.strip().endswith("OK"), proc.stderr[-3000:]
    assert (tmp_path / "in.samic").stat().st_size > 0


def test_dependencies_are_optional_where_they_should_be():
    try:
        import tomllib
    except ImportError:  # Python 3.10
        import pytest

        pytest.skip("tomllib needs Python 3.11")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    deps = project["dependencies"]
    triton = [d for d in deps if d.startswith("triton")]
    assert len(triton) == 1 and 'platform_system == "Linux"' in triton[0], triton
    extras = project["optional-dependencies"]
    assert not any("mamba" in d for d in extras["test"]), "mamba-ssm needs nvcc: not in [test]"
    assert any(d.startswith("mamba-ssm") for d in extras["mamba"])
    assert any(d.startswith("matplotlib") for d in extras["plot"])
    bootstrap = (ROOT / "scripts" / "bootstrap.sh").read_text()
    assert "matplotlib" in bootstrap
