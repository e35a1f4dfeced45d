"""Triton kernel variants compile for sm_90 (H100/H200) with the installed triton: a pairwise
cover (every pair of argument values of each kernel, about 135 variants; ``COVER=1``), which
fits CI's time. ``python scripts/compile_kernels.py`` compiles every combination (439).

The interpreter tests check what the kernels compute, but the interpreter accepts code that the
compiler rejects (and the reverse). Triton's NVIDIA backend lowers to PTX and runs ptxas on the
CPU, so compiled-mode validity is checked here too, on a machine without a GPU. It runs in a
subprocess because TRITON_INTERPRET=1 (set by conftest) replaces every @triton.jit function.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "compile_kernels.py"


def test_every_kernel_variant_compiles_for_sm90():
    try:
        from triton.backends import backends
    except Exception:  # pragma: no cover - very old triton
        pytest.skip("this triton has no backend registry")
    if "nvidia" not in backends:
        pytest.skip("triton's NVIDIA backend is not installed")
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env["COVER"] = "1"
    proc = subprocess.run([sys.executable, str(SCRIPT)], env=env, capture_output=True, text=True,
                          timeout=1800)
    assert proc.returncode == 0, proc.stderr[-4000:]
    found = re.search(r"compiled (\d+) kernel variants", proc.stdout)
    assert found and int(found.group(1)) >= 100, proc.stdout[-2000:]
