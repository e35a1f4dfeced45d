"""Test configuration.

``TRITON_INTERPRET=1`` must be in the environment before any ``@triton.jit`` runs, so it is set
here, at the top, before anything imports samic_fast.kernels: without a GPU the Triton kernels
then run on CPU tensors under Triton's interpreter.
"""

import os

import torch

HAS_CUDA = torch.cuda.is_available()
if not HAS_CUDA:
    os.environ.setdefault("TRITON_INTERPRET", "1")

import pytest  # noqa: E402

# One tolerance table for scan parity (docs/design.md §5): fp32 is compared with a float64 reference by
# relative RMS error; low precision by mamba's rule, fused error <= 2x the reference's own error in
# that dtype (plus a small floor).
SCAN_RTOL_RMS = {torch.float32: 1e-5, torch.float64: 1e-12}
LOW_PRECISION_FACTOR = 2.0
LOW_PRECISION_FLOOR = {torch.float16: 1e-4, torch.bfloat16: 1e-3}


def rel_rms(actual: torch.Tensor, expected: torch.Tensor) -> float:
    """Relative RMS error of ``actual`` against ``expected``, computed in float64."""
    a, e = actual.double(), expected.double()
    return float((a - e).pow(2).mean().sqrt() / e.pow(2).mean().sqrt().clamp_min(1e-30))


@pytest.fixture
def device() -> torch.device:
    return torch.device("cuda" if HAS_CUDA else "cpu")


def requires_cuda():
    """Call inside a test: skips at run time (not import time) when no GPU is present."""
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
