"""SASS and SAMB modules on the reference path (issue 2 item 7)."""

import pytest
import torch

from samic_fast.config import SASSConfig
from samic_fast.errors import ShapeError
from samic_fast.samb import SAMB, set_backend
from samic_fast.sass import SASS

SMALL = SASSConfig(num_clusters=5, c_sem=8, d_state=5)


def test_samb_shape_and_eval_determinism():
    torch.manual_seed(0)
    block = set_backend(SAMB(12, SMALL), "reference").eval()
    x = torch.randn(2, 12, 7, 9)
    with torch.no_grad():
        a, b = block(x), block(x)
    assert a.shape == x.shape
    assert torch.equal(a, b)
    assert not torch.allclose(a, x)


def test_training_gradients_reach_centers_tau_and_semantic_branch():
    torch.manual_seed(0)
    cfg = SASSConfig(num_clusters=5, c_sem=8, d_state=5, learnable_tau=True)
    block = set_backend(SAMB(12, cfg), "reference").train()
    block(torch.randn(2, 12, 6, 5)).square().mean().backward()
    sass = block.sass
    for name, p in [("centers", sass.centers), ("log_tau", sass.log_tau),
                    ("semantic conv", sass.semantic[0].weight), ("A_log", sass.A_log),
                    ("dt_bias", sass.dt_bias), ("in_proj_x", block.in_proj_x.weight),
                    ("in_proj_z", block.in_proj_z.weight)]:
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_training_forward_value_equals_eval_for_the_same_order():
    """The straight-through gate has value 1: with Gumbel noise off the outputs agree."""
    torch.manual_seed(0)
    sass = set_backend(SASS(10, SMALL), "reference")
    x = torch.randn(1, 5, 6, 10)
    sass.eval()
    want = sass(x)
    sass.train()
    original = torch.nn.functional.gumbel_softmax

    def no_noise(logits, tau=1.0, hard=False, dim=-1):
        soft = logits.softmax(dim)
        index = soft.argmax(dim, keepdim=True)
        hard_y = torch.zeros_like(soft).scatter_(dim, index, 1.0)
        return hard_y - soft.detach() + soft

    torch.nn.functional.gumbel_softmax = no_noise
    try:
        got = sass(x)
    finally:
        torch.nn.functional.gumbel_softmax = original
    assert torch.allclose(got, want, atol=1e-6)


class _FixedFeatures(torch.nn.Module):
    def __init__(self, feat):
        super().__init__()
        self.feat = feat

    def forward(self, x):
        return self.feat.expand(x.shape[0], -1, -1, -1)


def test_order_follows_semantics_not_raster():
    """Two semantic regions (a left column band and the rest) are each scanned contiguously."""
    sass = set_backend(SASS(4, SASSConfig(num_clusters=2, c_sem=4, d_state=2)), "reference").eval()
    h, w = 5, 6
    feat = torch.zeros(1, 4, h, w)
    feat[:, 0] = 10.0
    feat[:, 0, :, :2] = -10.0  # left band points the other way
    sass.semantic = _FixedFeatures(feat)
    with torch.no_grad():
        sass.centers.copy_(torch.tensor([[1.0, 0, 0, 0], [-1.0, 0, 0, 0]]))
    perm, gate = sass.scan_order(torch.zeros(1, h, w, 4))
    assert gate is None
    order = perm[0].tolist()
    left = [i for i in range(h * w) if i % w < 2]
    right = [i for i in range(h * w) if i % w >= 2]
    # Equal mean rows; the left band has the smaller mean column, so it is scanned first.
    assert order == left + right


def test_samb_rejects_wrong_channels():
    with pytest.raises(ShapeError, match="SAMB"):
        SAMB(8, SMALL)(torch.randn(1, 7, 4, 4))


def test_set_backend_switches_every_sass():
    model = torch.nn.Sequential(SAMB(8, SMALL), SAMB(8, SMALL))
    set_backend(model, "reference")
    assert all(m.backend == "reference" for m in model.modules() if isinstance(m, SASS))


def test_config_validation():
    with pytest.raises(ValueError):
        SASSConfig(num_clusters=65)
    with pytest.raises(ValueError):
        SASSConfig(d_state=0)


def test_eval_A_is_cached_and_follows_the_parameter():
    sass = SASS(6, SMALL).eval()
    with torch.no_grad():
        first = sass.scan_A()
        assert sass.scan_A() is first  # no recomputation (no launches) per call
        assert torch.equal(first, -torch.exp(sass.A_log.float()))
        sass.A_log.add_(0.5)  # any in-place update (optimizer step, load_state_dict) invalidates it
        assert torch.equal(sass.scan_A(), -torch.exp(sass.A_log.float()))
    assert "_A_cache" not in "".join(sass.state_dict())
    # With autograd on, A is computed afresh and carries the gradient to A_log.
    sass.scan_A().sum().backward()
    assert sass.A_log.grad is not None


def test_samb_stack_hands_over_channel_last_with_the_same_values():
    from samic_fast.samb import samb_stack

    torch.manual_seed(0)
    blocks = [set_backend(b, "reference").eval() for b in samb_stack(12, 3, SMALL)]
    assert [b.contiguous_output for b in blocks] == [False, False, True]
    x = torch.randn(1, 12, 5, 6)
    with torch.no_grad():
        got = x
        for b in blocks:
            got = b(got)
        assert got.is_contiguous()
        for b in blocks:
            b.contiguous_output = True
        want = x
        for b in blocks:
            want = b(want)
    assert torch.equal(got, want)
    # Between blocks the tensor is channels_last: the next block's norm reads it without a copy.
    with torch.no_grad():
        blocks[0].contiguous_output = False
        mid = blocks[0](x)
    assert mid.is_contiguous(memory_format=torch.channels_last) and not mid.is_contiguous()
