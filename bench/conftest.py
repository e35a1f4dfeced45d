"""pytest configuration of the benchmark suites (``pytest bench --benchmark-enable --benchmark-only``).

``TRITON_INTERPRET=1`` must be in the environment before triton is imported (the ``@triton.jit``
decorators read it), so it is set here, first thing, when no GPU is present: the triton provider
then runs on CPU tensors under the interpreter, for the tiny shape only (see bench/providers.py).
"""

import os

import torch

HAS_CUDA = torch.cuda.is_available()
if not HAS_CUDA:
    os.environ.setdefault("TRITON_INTERPRET", "1")

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def device() -> torch.device:
    return torch.device("cuda" if HAS_CUDA else "cpu")
