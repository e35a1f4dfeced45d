"""Fused cluster assignment (kernels/cluster_assign.py) against the reference (docs/design.md §5).

Cluster ids must equal the reference's wherever the top-2 margin of the float64 scores exceeds
1e-4 (relative); the integer sums must be exactly those of the returned ids. Output buffers are
poisoned with impossible values before the launch.
"""

import pytest
import torch

from conftest import requires_cuda
from samic_fast import ops, ref
from samic_fast.custom_ops import cluster_assign
from samic_fast.kernels import cluster_assign_fwd
from samic_fast.kernels._utils import cdiv
from samic_fast.kernels.cluster_assign import _cluster_assign_config
from samic_fast.shapes import SASS_SHAPES_768x512

# The default model's SASS calls on a Kodak image (one (H, W) per distinct size).
KODAK_HW = sorted({(s.height, s.width) for s in SASS_SHAPES_768x512}, reverse=True)
KODAK_IDS = [f"{h}x{w}" for h, w in KODAK_HW]

SHAPES = [(2, 6, 5, 7, 5), (1, 7, 1, 9, 3), (1, 5, 3, 1, 1), (2, 33, 9, 11, 17), (1, 4, 6, 5, 64)]
IDS = [f"B{b}-C{c}-H{h}-W{w}-K{k}" for b, c, h, w, k in SHAPES]
NEAR_TIE = 1e-4


def near_tie_mask(feat, centers, tau):
    """Pixels whose float64 top-2 score margin is within NEAR_TIE of the top score (relative)."""
    s = ref.cluster_scores_ref(feat.double(), centers.double(), tau)
    if s.shape[-1] == 1:
        return torch.zeros(s.shape[:2], dtype=torch.bool, device=s.device)
    top = s.topk(2, dim=-1).values
    return (top[..., 0] - top[..., 1]) <= NEAR_TIE * top[..., 0].abs().clamp_min(1e-12)


def run_poisoned(feat, centers):
    b, _, h, w = feat.shape
    k = centers.shape[0]
    nblk = cdiv(h * w, _cluster_assign_config(k)["BLOCK_L"])
    cluster = torch.full((b, h * w), -5, dtype=torch.int32, device=feat.device)
    partial = torch.full((3, b, nblk, k), -7777, dtype=torch.int32, device=feat.device)
    pos_row, pos_col = ref.positional_tables(h, w, feat.shape[1], feat.device)
    out = cluster_assign_fwd(feat, centers, pos_row, pos_col, ref.NORM_EPS, cluster=cluster, partial=partial)
    assert out[0] is cluster
    return out


def check_against_reference(feat, centers, tau=0.1):
    cl, count, rowsum, colsum = run_poisoned(feat, centers)
    r_cl, *_ = ref.cluster_assign_ref(feat, centers, tau)
    assert cl.dtype == torch.int32 and count.dtype == rowsum.dtype == colsum.dtype == torch.int64
    assert int(cl.min()) >= 0 and int(cl.max()) < centers.shape[0]
    mismatch = cl != r_cl
    assert not (mismatch & ~near_tie_mask(feat, centers, tau)).any()
    _, h, w = feat.shape[1:]
    exp_count, exp_row, exp_col = ref.cluster_sums_ref(cl, centers.shape[0], h, w)
    assert torch.equal(count, exp_count) and torch.equal(rowsum, exp_row) and torch.equal(colsum, exp_col)
    return cl, mismatch


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16, torch.float64],
                         ids=["fp32", "fp16", "bf16", "fp64"])
@pytest.mark.parametrize("shape", SHAPES, ids=IDS)
def test_matches_reference(shape, dtype):
    b, c, h, w, k = shape
    g = torch.Generator().manual_seed(sum(shape))
    feat = torch.randn(b, c, h, w, generator=g).to(dtype)
    centers = torch.randn(k, c, generator=g)
    if dtype == torch.float64:
        centers = centers.double()
    _, mismatch = check_against_reference(feat, centers)
    # Random scores are essentially never near-tied: any mismatch here would mean a wrong kernel.
    assert int(mismatch.sum()) <= max(1, mismatch.numel() // 100)


def test_exact_ties_go_to_the_smaller_index():
    g = torch.Generator().manual_seed(0)
    feat = torch.randn(2, 8, 6, 5, generator=g)
    base = torch.randn(3, 8, generator=g)
    centers = torch.cat([base[:1], base[1:2], base[1:2], base[:1], base[2:]])  # 3 == 0, 2 == 1
    cl, *_ = run_poisoned(feat, centers)
    r_cl, *_ = ref.cluster_assign_ref(feat, centers, 0.1)
    assert torch.equal(cl, r_cl)
    assert not ((cl == 2) | (cl == 3)).any()  # duplicates never win over their first copy
    assert set(cl.unique().tolist()) <= {0, 1, 4}


def test_zero_features_hit_the_norm_clamp_and_pick_cluster_zero():
    h, w, c = 4, 5, 6
    feat = -ref.positional_encoding(h, w, c)[None]  # feat + PE is exactly zero everywhere
    centers = torch.randn(4, c, generator=torch.Generator().manual_seed(1))
    cl, count, rowsum, colsum = run_poisoned(feat.contiguous(), centers)
    assert torch.equal(cl, torch.zeros_like(cl))
    assert count.tolist() == [[h * w, 0, 0, 0]]
    assert rowsum[0, 0] == sum(r for r in range(h)) * w and colsum[0, 0] == sum(range(w)) * h


def test_positional_encoding_decides_between_equal_features():
    # Constant features: only the positional encoding varies over the image, so the top half
    # (sin(pi*u) small) and the middle rows must be told apart as the reference does.
    h, w, c = 9, 7, 4
    feat = torch.zeros(1, c, h, w)
    centers = torch.tensor([[1.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 1.0], [1.0, 1.0, 1.0, 1.0]])
    cl, _ = check_against_reference(feat, centers)
    assert len(cl.unique()) >= 2


def test_tau_tensor_requiring_grad_through_ops():
    g = torch.Generator().manual_seed(2)
    feat = torch.randn(1, 6, 5, 7, generator=g, requires_grad=True)
    centers = torch.randn(5, 6, generator=g, requires_grad=True)
    tau = torch.tensor(0.3, requires_grad=True)
    out = ops.cluster_assign(feat, centers, tau, backend="triton")
    expected = ref.cluster_assign_ref(feat.detach(), centers.detach(), 0.3)
    mismatch = out[0] != expected[0]
    assert not (mismatch & ~near_tie_mask(feat.detach(), centers.detach(), 0.3)).any()
    assert not any(t.requires_grad for t in out)


def test_deterministic_bitwise():
    g = torch.Generator().manual_seed(3)
    feat = torch.randn(2, 9, 7, 11, generator=g)
    centers = torch.randn(6, 9, generator=g)
    first = cluster_assign(feat, centers, 0.1)
    for _ in range(2):
        again = cluster_assign(feat, centers, 0.1)
        assert all(torch.equal(a, b) for a, b in zip(first, again))


@pytest.mark.gpu
@pytest.mark.parametrize("hw", KODAK_HW, ids=KODAK_IDS)
def test_kodak_shapes_cuda(hw):
    requires_cuda()
    g = torch.Generator().manual_seed(4)
    feat = torch.randn(1, 32, *hw, generator=g).cuda()
    centers = torch.randn(16, 32, generator=g).cuda()
    cl, mismatch = check_against_reference(feat, centers)
    assert int(mismatch.sum()) <= max(1, mismatch.numel() // 10000)
    again = cluster_assign(feat, centers, 0.1)
    assert torch.equal(again[0], cl)


def test_positional_tables_are_built_once_per_resolution(monkeypatch):
    """The fused path reuses the tables of a resolution (a SAMIC forward calls it dozens of times
    at a few sizes) and still gets the reference's own numbers."""
    import samic_fast.custom_ops as custom_ops

    built = []
    build = ref.positional_tables

    def counting(height, width, channels, device=None):
        built.append((height, width, channels))
        return build(height, width, channels, device)

    monkeypatch.setattr(custom_ops.ref, "positional_tables", counting)
    monkeypatch.setattr(custom_ops, "_POS_TABLES", {})
    g = torch.Generator().manual_seed(3)
    feat = torch.randn(1, 6, 5, 7, generator=g)
    centers = torch.randn(4, 6, generator=g)
    first = cluster_assign(feat, centers)
    second = cluster_assign(feat.clone(), centers)
    other = cluster_assign(torch.randn(1, 6, 3, 7, generator=g), centers)
    assert built == [(5, 7, 6), (3, 7, 6)]
    assert all(torch.equal(a, b) for a, b in zip(first, second))
    assert other[0].shape == (1, 21)
    row, col = custom_ops._POS_TABLES[(5, 7, 6, "cpu")]
    ref_row, ref_col = ref.positional_tables(5, 7, 6)
    assert torch.equal(row, ref_row) and torch.equal(col, ref_col)
