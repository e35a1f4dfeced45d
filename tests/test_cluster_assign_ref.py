"""Reference cluster assignment: positional encoding, cosine scores, ties, exact integer sums."""


import pytest
import torch

from samic_fast import ops, ref


def test_positional_encoding_is_multi_frequency_sincos():
    """docs/design.md §1 step 2 (MAE's 2-D sin-cos; Eq. 2 read literally is symmetric in r)."""
    pe = ref.positional_encoding(3, 5, 4)
    assert pe.shape == (4, 3, 5)
    rows = torch.arange(3.0)
    cols = torch.arange(5.0)
    assert torch.allclose(pe[0, :, 0], torch.sin(rows))  # row half: sin, then cos, of r * w_k
    assert torch.allclose(pe[1, :, 0], torch.cos(rows))
    assert torch.allclose(pe[2, 0, :], torch.sin(cols))
    assert torch.allclose(pe[3, 0, :], torch.cos(cols))
    assert torch.equal(ref.positional_encoding(1, 1, 2), torch.tensor([[[0.0]], [[0.0]]]))


def test_assignment_is_argmax_of_cosine_scores_and_sums_are_exact():
    g = torch.Generator().manual_seed(0)
    feat = torch.randn(2, 6, 5, 7, generator=g)
    centers = torch.randn(9, 6, generator=g)
    cluster, count, rowsum, colsum = ops.cluster_assign(feat, centers, 0.1, backend="reference")
    assert cluster.shape == (2, 35) and cluster.dtype == torch.int32
    assert count.dtype == rowsum.dtype == colsum.dtype == torch.int64
    f = (feat + ref.positional_encoding(5, 7, 6)).flatten(2).transpose(1, 2)
    cos = torch.nn.functional.cosine_similarity(f[:, :, None], centers[None, None], dim=-1)
    assert torch.equal(cluster.long(), cos.argmax(-1))
    for b in range(2):
        for k in range(9):
            idx = (cluster[b] == k).nonzero().flatten()
            assert count[b, k] == idx.numel()
            assert rowsum[b, k] == int((idx // 7).sum())
            assert colsum[b, k] == int((idx % 7).sum())
    assert torch.equal(count.sum(1), torch.full((2,), 35))


def test_exact_ties_go_to_the_smaller_cluster_index():
    feat = torch.zeros(1, 4, 2, 2)
    centers = torch.tensor([[0.0, 0, 1, 0], [1.0, 0, 0, 0], [1.0, 0, 0, 0]])
    # With zero features only the positional encoding remains; centers 1 and 2 are identical.
    cluster, *_ = ops.cluster_assign(feat, centers, 0.5, backend="reference")
    assert set(cluster.flatten().tolist()) <= {0, 1}


@pytest.mark.parametrize("tau", [0.05, 1.0, torch.tensor(0.3)])
def test_temperature_does_not_change_the_argmax(tau):
    g = torch.Generator().manual_seed(1)
    feat, centers = torch.randn(1, 5, 4, 3, generator=g), torch.randn(4, 5, generator=g)
    a = ops.cluster_assign(feat, centers, tau, backend="reference")[0]
    b = ops.cluster_assign(feat, centers, 1.0, backend="reference")[0]
    assert torch.equal(a, b)
