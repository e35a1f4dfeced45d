"""SVD-RRM (paper §3.3, Eq. 7–10) against an independent numpy SVD."""

import numpy as np
import pytest
import torch

from samic_fast.errors import ShapeError
from samic_fast.svd_rrm import SVDRRM


def _latent(b=2, c=12, h=5, w=7, seed=0):
    return torch.randn(b, c, h, w, generator=torch.Generator().manual_seed(seed))


def _numpy_rrm(h: torch.Tensor, theta: float, alpha: float) -> np.ndarray:
    out = []
    for img in h.double().numpy():
        mat = img.reshape(img.shape[0], -1)
        u, s, vt = np.linalg.svd(mat, full_matrices=False)
        low = (u * np.maximum(s - theta, 0.0)) @ vt
        out.append((mat + alpha * (low - mat)).reshape(img.shape))
    return np.stack(out)


@pytest.mark.parametrize("alpha", [0.3, 1.0, 1.7])
def test_theta_zero_gives_input_back(alpha):
    h = _latent()
    m = SVDRRM(theta=0.0, alpha=alpha)
    torch.testing.assert_close(m(h), h, atol=2e-5, rtol=1e-5)


def test_alpha_zero_is_identity_exactly():
    h = _latent()
    assert torch.equal(SVDRRM(theta=3.0, alpha=0.0)(h), h)


@pytest.mark.parametrize("theta,alpha", [(0.5, 1.0), (2.0, 0.4), (100.0, 0.8)])
def test_matches_numpy_svd(theta, alpha):
    h = _latent(seed=1)
    m = SVDRRM(theta=theta, alpha=alpha)
    got = m(h.double()).detach().numpy()
    # the parameters are float32: compare with the same (rounded) values
    np.testing.assert_allclose(got, _numpy_rrm(h, float(m.theta), float(m.alpha)), atol=1e-10)


def test_large_theta_lowers_rank():
    h = _latent(b=1, c=16, h=6, w=6, seed=2)
    s = torch.linalg.svdvals(h.reshape(16, 36).double())
    theta = float((s[4] + s[5]) / 2)  # keeps exactly the 5 largest components
    m = SVDRRM(theta=theta, alpha=1.0).double()
    low = m.low_rank(h.double()).reshape(16, 36)
    assert torch.linalg.matrix_rank(low).item() == 5
    assert torch.linalg.matrix_rank(h.reshape(16, 36)).item() == 16
    # theta above every singular value removes everything: y = (1 - alpha) H
    m2 = SVDRRM(theta=float(s[0]) + 1, alpha=0.25).double()
    torch.testing.assert_close(m2(h.double()), 0.75 * h.double())


def test_gradients_reach_theta_and_alpha():
    h = _latent(seed=3)
    m = SVDRRM(theta=0.5, alpha=0.7)
    m(h).pow(2).sum().backward()
    for p in (m.theta, m.alpha):
        assert p.grad is not None and torch.isfinite(p.grad) and p.grad.abs() > 0


@pytest.mark.parametrize("shape", [(3, 4, 5), (1, 0, 4, 4)])
def test_bad_shapes_raise(shape):
    with pytest.raises(ShapeError):
        SVDRRM()(torch.zeros(shape))
