"""Property tests of the scan order (docs/design.md §1 steps 4–5) on the reference backend."""

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from samic_fast import ops, ref


@st.composite
def assignments(draw):
    h = draw(st.integers(1, 9))
    w = draw(st.integers(1, 9))
    k = draw(st.integers(1, 8))
    b = draw(st.integers(1, 2))
    # Some clusters may be left empty on purpose: draw from a subset of 0..k-1.
    used = draw(st.lists(st.integers(0, k - 1), min_size=1, max_size=k, unique=True))
    flat = draw(st.lists(st.sampled_from(used), min_size=b * h * w, max_size=b * h * w))
    cluster = torch.tensor(flat, dtype=torch.int32).reshape(b, h * w)
    return cluster, k, h, w


def order_of(cluster, k, h, w):
    sums = ref.cluster_sums_ref(cluster, k, h, w)
    perm, inv = ops.scan_order(cluster, *sums, h, w, backend="reference")
    return sums, perm, inv


def mean_key(count, rowsum, colsum, j):
    from fractions import Fraction

    c = int(count[j])
    return (Fraction(int(rowsum[j]), c), Fraction(int(colsum[j]), c), j)


@settings(max_examples=150, deadline=None)
@given(assignments())
def test_perm_is_a_bijection_and_inv_inverts_it(case):
    cluster, k, h, w = case
    _, perm, inv = order_of(cluster, k, h, w)
    L = h * w
    assert perm.dtype == inv.dtype == torch.int32
    for b in range(cluster.shape[0]):
        assert sorted(perm[b].tolist()) == list(range(L))
        assert torch.equal(inv[b][perm[b].long()], torch.arange(L, dtype=torch.int32))
        assert torch.equal(perm[b][inv[b].long()], torch.arange(L, dtype=torch.int32))


@settings(max_examples=150, deadline=None)
@given(assignments())
def test_clusters_contiguous_in_exact_key_order_raster_inside(case):
    cluster, k, h, w = case
    (count, rowsum, colsum), perm, _ = order_of(cluster, k, h, w)
    for b in range(cluster.shape[0]):
        seq = cluster[b][perm[b].long()].tolist()
        # Contiguous: each cluster id appears in one run.
        runs = [c for i, c in enumerate(seq) if i == 0 or seq[i - 1] != c]
        assert len(runs) == len(set(runs))
        # Runs in ascending exact (mean row, mean col, k) order; empties never appear.
        keys = [mean_key(count[b], rowsum[b], colsum[b], c) for c in runs]
        assert keys == sorted(keys)
        assert set(runs) == {j for j in range(k) if count[b, j] > 0}
        # Raster order inside each cluster.
        for c in runs:
            pixels = [p for p, cc in zip(perm[b].tolist(), seq) if cc == c]
            assert pixels == sorted(pixels)


def test_single_cluster_and_single_pixel():
    for h, w in [(1, 1), (1, 7), (5, 1), (3, 4)]:
        cluster = torch.zeros(1, h * w, dtype=torch.int32)
        _, perm, inv = order_of(cluster, 1, h, w)
        assert torch.equal(perm, torch.arange(h * w, dtype=torch.int32)[None])
        assert torch.equal(inv, perm)


def test_empty_clusters_go_last_and_do_not_shift_positions():
    # Cluster 0 empty, cluster 2 at the bottom, cluster 1 at the top.
    h, w = 2, 3
    cluster = torch.tensor([[1, 1, 1, 2, 2, 2]], dtype=torch.int32)
    sums, perm, _ = order_of(cluster, 4, h, w)
    rank = ref.cluster_rank_ref(*sums)
    assert rank.tolist() == [[2, 0, 1, 3]]
    assert perm.tolist() == [[0, 1, 2, 3, 4, 5]]


def test_equal_mean_rows_fall_back_to_columns_then_index():
    # Clusters 0 and 1 share mean row 0.5; cluster 1 has the smaller mean column.
    cluster = torch.tensor([[0, 1, 1, 0]], dtype=torch.int32)  # 2x2: 0 at (0,0),(1,1); 1 at (0,1),(1,0)
    sums, perm, _ = order_of(cluster, 2, 2, 2)
    # Both means are (0.5, 0.5): exact tie, so the smaller index (0) goes first.
    assert ref.cluster_rank_ref(*sums).tolist() == [[0, 1]]
    assert perm.tolist() == [[0, 3, 1, 2]]
    # 2x3: both mean row 0.5; cluster 0 in column 2, cluster 1 in columns 0-1 (mean 0.5) goes first.
    cluster = torch.tensor([[1, 1, 0, 1, 1, 0]], dtype=torch.int32)
    sums, perm, _ = order_of(cluster, 2, 2, 3)
    assert ref.cluster_rank_ref(*sums).tolist() == [[1, 0]]
    assert perm.tolist() == [[0, 1, 3, 4, 2, 5]]
