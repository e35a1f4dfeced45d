"""Entropy-model pieces: checkerboard, masked conv, window attention, guarded parameter
quantization and its side information (entropy.py, entropy_params.py)."""

import math

import pytest
import torch
from hypothesis import given, settings, strategies as st

from samic_fast._compressai import import_compressai
from samic_fast.config import SAMICConfig, SASSConfig, get_config
from samic_fast.entropy import CheckerboardMaskedConv2d, ContextEntropyModel, WindowBlock, anchor_mask
from samic_fast.entropy_params import (
    ParamGuard,
    cluster_margin,
    log_scale_boundaries,
    quantize_mean,
    scale_index,
    scale_table,
)
from samic_fast.errors import CorruptBitstreamError
from samic_fast.samb import set_backend

import_compressai()
from compressai.entropy_models import GaussianConditional  # noqa: E402

CFG = SAMICConfig()
GEN = lambda seed: torch.Generator().manual_seed(seed)  # noqa: E731


def test_anchor_mask_is_a_checkerboard():
    m = anchor_mask(4, 5)[0, 0]
    assert m.shape == (4, 5)
    for r in range(4):
        for c in range(5):
            assert bool(m[r, c]) == ((r + c) % 2 == 0)


def test_masked_conv_sees_only_anchors_at_non_anchors():
    torch.manual_seed(0)
    conv = CheckerboardMaskedConv2d(3, 4, 5)
    anchors = anchor_mask(9, 9)
    x = torch.randn(1, 3, 9, 9)
    noise = torch.randn(1, 3, 9, 9)
    out = conv(x)
    # changing non-anchor inputs leaves the outputs at non-anchors unchanged ...
    out2 = conv(torch.where(anchors, x, x + noise))
    assert torch.allclose(out[..., ~anchors[0, 0]], out2[..., ~anchors[0, 0]], atol=1e-6)
    # ... while changing anchors changes them (the test can fail)
    out3 = conv(torch.where(anchors, x + noise, x))
    assert not torch.allclose(out[..., ~anchors[0, 0]], out3[..., ~anchors[0, 0]], atol=1e-3)
    assert int((conv.mask[0, 0] > 0).sum()) == 12


def test_window_attention_is_local_and_handles_odd_sizes():
    torch.manual_seed(0)
    blk = WindowBlock(32, 16, 4, 2.0).eval()
    with torch.no_grad():
        blk.rel_bias.normal_()
        x = torch.randn(1, 32, 8, 8)
        y = blk(x)
        x2 = x.clone()
        x2[:, :, 0, 0] += 5.0  # window (0, 0) only
        y2 = blk(x2)
        assert torch.equal(y[:, :, 4:, :], y2[:, :, 4:, :]) and torch.equal(y[:, :, :, 4:], y2[:, :, :, 4:])
        assert not torch.allclose(y[:, :, :4, :4], y2[:, :, :4, :4])
        z = blk(torch.randn(2, 32, 5, 7))
        assert z.shape == (2, 32, 5, 7) and torch.isfinite(z).all()
        # padded keys are masked: a 5x7 input gives the same result as the same pixels inside a
        # larger tensor only where windows coincide fully — here window (0, 0) of both
        big = torch.randn(1, 32, 8, 8)
        small = big[:, :, :4, :4].clone()
        assert torch.allclose(blk(small), blk(big)[:, :, :4, :4], atol=1e-5)


def test_scale_index_matches_compressai_build_indexes():
    gc = GaussianConditional(None)
    gc.update_scale_table(scale_table(CFG.scale_min, CFG.scale_max, CFG.scale_levels), force=True)
    sigma = torch.exp(torch.empty(4000).uniform_(-4, 7, generator=GEN(0)))
    ours, _ = scale_index(torch.log(sigma), log_scale_boundaries(CFG.scale_min, CFG.scale_max, CFG.scale_levels))
    theirs = gc.build_indexes(sigma)
    # equal except where float32 vs float64 comparisons can disagree: right at a boundary
    _, dist = scale_index(torch.log(sigma), log_scale_boundaries(CFG.scale_min, CFG.scale_max, CFG.scale_levels))
    far = dist > 1e-6
    assert far.float().mean() > 0.99
    assert torch.equal(ours[far].int(), theirs[far].int())


def test_quantize_mean_grid_and_distance():
    mu = torch.tensor([0.0, 0.06, 0.0624, 0.0626, -0.0626, 1.49])
    q, dist = quantize_mean(mu, 8)
    assert q.tolist() == [0, 0, 0, 1, -1, 12]
    torch.testing.assert_close(dist, (0.0625 - (mu.double() * 8 - q).abs() / 8).double(), atol=1e-12, rtol=0)


def _guard_roundtrip(mu, ls, feat, centers, mask, noise_mu, noise_ls, noise_feat, enabled=True):
    """Encode decisions with ``ParamGuard``; decode them from perturbed values."""
    enc = ParamGuard.recorder(CFG, enabled=enabled)
    tau = torch.tensor(0.1)
    cl = (feat.flatten(2).transpose(1, 2) @ centers.t()).argmax(-1).int()
    from samic_fast import ref

    cl_enc = ref.cluster_assign_ref(feat, centers, tau)[0]
    e = (enc.mean(mu, mask), enc.scale(ls, mask), enc.cluster(feat, centers, tau, cl_enc))
    side = enc.to_bytes()
    dec = ParamGuard.replayer(CFG, side)
    feat_d = feat + noise_feat
    cl_dec = ref.cluster_assign_ref(feat_d, centers, tau)[0]
    d = (dec.mean(mu + noise_mu, mask), dec.scale(ls + noise_ls, mask), dec.cluster(feat_d, centers, tau, cl_dec))
    dec.finish()
    del cl
    return e, d, enc, side


def _inputs(seed, n=40_000):
    g = GEN(seed)
    mu = torch.randn(1, 4, 100, n // 400, generator=g) * 3
    ls = torch.empty(1, 4, 100, n // 400).uniform_(-3, 6, generator=g)
    feat = torch.randn(1, 8, 20, 20, generator=g)
    centers = torch.randn(16, 8, generator=g)
    mask = anchor_mask(100, n // 400)
    return mu, ls, feat, centers, mask


def _uniform(like, amp, seed):
    return (torch.rand(like.shape, generator=GEN(seed), dtype=torch.float64) * 2 - 1).to(like.dtype) * amp


def test_guard_absorbs_perturbations_below_eps():
    mu, ls, feat, centers, mask = _inputs(0)
    # perturbations of eps/10 (mean/log-scale) and of the features small enough that scores move
    # by < cluster_eps / 10 (|ds| <= 2 |df| / (|f| tau))
    nf = _uniform(feat, CFG.cluster_eps * 0.1 / 20 * feat.norm(dim=1, keepdim=True).min().item(), 3)
    e, d, enc, side = _guard_roundtrip(mu, ls, feat, centers, mask,
                                       _uniform(mu, CFG.mean_eps / 10, 1), _uniform(ls, CFG.log_scale_eps / 10, 2), nf)
    assert torch.equal(e[0][mask.expand_as(mu)], d[0][mask.expand_as(mu)])
    assert torch.equal(e[1][mask.expand_as(ls)], d[1][mask.expand_as(ls)])
    assert torch.equal(e[2], d[2])
    stats = enc.stats()
    assert stats["mean"]["checked"] == int(mask.expand_as(mu).sum())
    assert stats["mean"]["flagged"] > 0 and stats["scale"]["flagged"] > 0
    # flag fraction ≈ 2·eps·(boundary density): means G/unit, scales 1/Δlog
    frac_mean = stats["mean"]["flagged"] / stats["mean"]["checked"]
    assert frac_mean == pytest.approx(2 * CFG.mean_eps * CFG.mean_grid, rel=0.5)


def test_without_guard_bands_perturbations_flip_decisions():
    mu, ls, feat, centers, mask = _inputs(1)
    # the decoder's values differ by up to 30 eps: many elements cross a boundary
    e, d, enc, _ = _guard_roundtrip(mu, ls, feat, centers, mask, _uniform(mu, 30 * CFG.mean_eps, 1),
                                    _uniform(ls, 30 * CFG.log_scale_eps, 2), torch.zeros_like(feat), enabled=False)
    assert enc.stats()["mean"]["flagged"] == 0
    assert not torch.equal(e[0], d[0])
    assert not torch.equal(e[1], d[1])


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), n_sites=st.integers(1, 6), density=st.floats(0.0, 0.5))
def test_side_information_roundtrip(seed, n_sites, density):
    """Any flagged pattern written by the encoder is read back at the same positions."""
    g = GEN(seed)
    enc = ParamGuard.recorder(CFG)
    enc.mean_eps = density / CFG.mean_grid / 2  # flags about `density` of the elements
    tensors = [torch.randn(1, 3, 6, 5, generator=g) for _ in range(n_sites)]
    masks = [anchor_mask(6, 5) if i % 2 else None for i in range(n_sites)]
    expected = [enc.mean(t, m) for t, m in zip(tensors, masks)]
    dec = ParamGuard.replayer(CFG, enc.to_bytes())
    # the decoder's values are off by up to eps/3: the side information restores the decisions
    for i, (t, m, e) in enumerate(zip(tensors, masks, expected)):
        got = dec.mean(t + _uniform(t, enc.mean_eps / 3, seed + i), m)
        sel = torch.ones_like(t, dtype=torch.bool) if m is None else m.expand_as(t)
        assert torch.equal(got[sel], e[sel])
    dec.finish()
    assert dec.stats()["mean"]["flagged"] == enc.stats()["mean"]["flagged"]


def test_corrupt_side_information_raises():
    mu, ls, feat, centers, mask = _inputs(2, 4000)
    enc = ParamGuard.recorder(CFG)
    enc.mean_eps = 0.01
    enc.mean(mu, mask)
    side = enc.to_bytes()
    with pytest.raises(CorruptBitstreamError):
        ParamGuard.replayer(CFG, b"\x09" + side[1:])  # unknown version
    with pytest.raises(CorruptBitstreamError):
        ParamGuard.replayer(CFG, side[: len(side) // 2]).mean(mu, mask)  # truncated
    dec = ParamGuard.replayer(CFG, side + b"\xff\xff")
    dec.mean(mu, mask)
    with pytest.raises(CorruptBitstreamError):
        dec.finish()  # trailing data
    with pytest.raises(CorruptBitstreamError):
        ParamGuard.replayer(CFG, b"")


def test_cluster_margin():
    s = torch.tensor([[[1.0, 3.0, 2.5], [0.0, 0.0, -1.0]]])
    assert cluster_margin(s).tolist() == [[0.5, 0.0]]
    assert math.isinf(cluster_margin(torch.zeros(1, 2, 1))[0, 0].item())


TINY = get_config("tiny")


def test_context_model_forward_shapes_and_likelihoods():
    torch.manual_seed(0)
    em = set_backend(ContextEntropyModel(TINY), "reference").eval()
    gc = GaussianConditional(None).eval()
    y = torch.randn(1, 32, 6, 4) * 2
    psi = torch.randn(1, 64, 6, 4)
    with torch.no_grad():
        y_hat, lik = em(y, psi, gc)
    assert y_hat.shape == y.shape and lik.shape == y.shape
    assert (lik > 0).all() and (lik <= 1).all()
    # ŷ = round(y - μ_q) + μ_q with μ_q on the 1/G grid: ŷ·G is an integer and |ŷ - y| <= 1/2
    assert torch.equal(y_hat * TINY.mean_grid, torch.round(y_hat * TINY.mean_grid))
    assert (y_hat - y).abs().max() <= 0.5 + 1e-6
    # anchors do not depend on non-anchor values of y (checkerboard causality)
    anchors = anchor_mask(6, 4)
    y2 = torch.where(anchors, y, y + 3.0)
    with torch.no_grad():
        y_hat2, _ = em(y2, psi, gc)
    first = slice(0, TINY.slice_channels)
    assert torch.equal(y_hat[:, first][anchors.expand(1, 16, 6, 4)], y_hat2[:, first][anchors.expand(1, 16, 6, 4)])
    assert not torch.equal(y_hat, y_hat2)


def test_window_attention_mask_is_cached_in_eval_and_follows_rel_bias():
    torch.manual_seed(0)
    block = WindowBlock(8, 4, 4, 2.0).eval()
    with torch.no_grad():
        block.rel_bias.normal_()
        first = block.attention_mask(6, 7, torch.float32, "cpu")  # padded to 8 x 8
        assert block.attention_mask(6, 7, torch.float32, "cpu") is first
        assert torch.equal(first, block._attention_mask(6, 7, torch.float32, "cpu"))
        assert first.isinf().any()  # padded keys are masked
        x = torch.randn(1, 8, 6, 7)
        out = block(x)
        block.rel_bias.add_(1.0)  # an update invalidates the cached mask
        assert not torch.equal(block.attention_mask(6, 7, torch.float32, "cpu"), first)
        assert not torch.equal(block(x), out)
    assert not any("mask" in k for k in block.state_dict())
    # With autograd on the mask is rebuilt and the bias gets its gradient.
    block(torch.randn(1, 8, 4, 4)).sum().backward()
    assert block.rel_bias.grad is not None and block.rel_bias.grad.abs().sum() > 0
