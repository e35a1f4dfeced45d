"""Fused scan order (kernels/scan_order.py): ``perm``/``inv`` bit-identical to the reference.

Under the interpreter the kernels use 16-pixel blocks and 4-block prefix tiles, so the shapes
below cross several blocks and several prefix tiles. Outputs are poisoned with -3 beforehand.
"""

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import requires_cuda
from samic_fast import ops, ref
from samic_fast.custom_ops import cluster_assign, scan_order
from samic_fast.kernels import scan_order_fwd
from samic_fast.shapes import SASS_SHAPES_768x512

# The default model's SASS calls on a Kodak image (one (H, W) per distinct size).
KODAK_HW = sorted({(s.height, s.width) for s in SASS_SHAPES_768x512}, reverse=True)
KODAK_IDS = [f"{h}x{w}" for h, w in KODAK_HW]

SHAPES = [(2, 5, 7, 5), (1, 1, 1, 1), (3, 13, 31, 9), (1, 4, 4, 64), (1, 17, 19, 2), (2, 1, 37, 3)]
IDS = [f"B{b}-H{h}-W{w}-K{k}" for b, h, w, k in SHAPES]


def run_poisoned(cluster, sums):
    perm = torch.full(cluster.shape, -3, dtype=torch.int32, device=cluster.device)
    inv = torch.full(cluster.shape, -3, dtype=torch.int32, device=cluster.device)
    out = scan_order_fwd(cluster, *sums, perm=perm, inv=inv)
    assert out[0] is perm and out[1] is inv
    return out


def check_exact(cluster, k, h, w):
    sums = ref.cluster_sums_ref(cluster, k, h, w)
    perm, inv = run_poisoned(cluster, sums)
    r_perm, r_inv = ref.scan_order_ref(cluster, *sums, h, w)
    assert perm.dtype == inv.dtype == torch.int32
    assert torch.equal(perm, r_perm) and torch.equal(inv, r_inv)
    return perm, inv


@pytest.mark.parametrize("index_dtype", [torch.int32, torch.int64], ids=["i32", "i64"])
@pytest.mark.parametrize("shape", SHAPES, ids=IDS)
def test_bit_identical_to_reference(shape, index_dtype):
    b, h, w, k = shape
    g = torch.Generator().manual_seed(h * w + k)
    cluster = torch.randint(0, k, (b, h * w), generator=g)
    if k > 3:
        cluster[cluster == 1] = 2  # an empty cluster, which must go last
    perm, inv = check_exact(cluster.to(index_dtype), k, h, w)
    positions = torch.arange(h * w).expand(b, -1)
    assert torch.equal(torch.gather(inv.long(), 1, perm.long()), positions)


def test_tied_keys_follow_cluster_index():
    # 2x2 blocks on a 4x4 grid: clusters 3 and 1 share a mean position, as do 2 and 0.
    h = w = 4
    layout = torch.tensor([[3, 1, 2, 0], [1, 3, 0, 2], [3, 1, 2, 0], [1, 3, 0, 2]])
    perm, _ = check_exact(layout.reshape(1, -1), 5, h, w)  # cluster 4 is empty
    order = [int(layout.flatten()[p]) for p in perm[0]]
    seen = list(dict.fromkeys(order))
    assert seen == [1, 3, 0, 2]  # mean column 0.5 before 2.5; equal keys by index


def test_single_cluster_is_raster_order():
    cluster = torch.zeros(2, 35, dtype=torch.int32)
    perm, inv = check_exact(cluster, 1, 5, 7)
    assert torch.equal(perm, torch.arange(35, dtype=torch.int32).expand(2, -1))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    b=st.integers(1, 2), h=st.integers(1, 12), w=st.integers(1, 12), k=st.integers(1, 20),
    seed=st.integers(0, 2**31 - 1), used=st.integers(1, 20),
)
def test_property_random_assignments(b, h, w, k, seed, used):
    g = torch.Generator().manual_seed(seed)
    cluster = torch.randint(0, min(k, used), (b, h * w), generator=g)
    cluster = torch.randperm(k, generator=g)[cluster]  # the used ids scattered over [0, k)
    check_exact(cluster.to(torch.int32), k, h, w)


def test_chained_with_fused_cluster_assign_through_ops():
    g = torch.Generator().manual_seed(5)
    feat = torch.randn(2, 8, 9, 13, generator=g)
    centers = torch.randn(7, 8, generator=g)
    cl, *sums = ops.cluster_assign(feat, centers, 0.1, backend="triton")
    perm, inv = ops.scan_order(cl, *sums, 9, 13, backend="triton")
    r_perm, r_inv = ops.scan_order(cl, *sums, 9, 13, backend="reference")
    assert torch.equal(perm, r_perm) and torch.equal(inv, r_inv)


def test_deterministic_bitwise():
    g = torch.Generator().manual_seed(6)
    cluster = torch.randint(0, 6, (2, 11 * 13), generator=g, dtype=torch.int32)
    sums = ref.cluster_sums_ref(cluster, 6, 11, 13)
    first = scan_order(cluster, *sums, 11, 13)
    for _ in range(2):
        again = scan_order(cluster, *sums, 11, 13)
        assert torch.equal(again[0], first[0]) and torch.equal(again[1], first[1])


@pytest.mark.gpu
@pytest.mark.parametrize("hw", KODAK_HW, ids=KODAK_IDS)
def test_kodak_shapes_cuda(hw):
    requires_cuda()
    g = torch.Generator().manual_seed(7)
    h, w = hw
    feat = torch.randn(1, 32, h, w, generator=g).cuda()
    centers = torch.randn(16, 32, generator=g).cuda()
    cl, *sums = cluster_assign(feat, centers, 0.1)
    perm, inv = scan_order(cl, *sums, h, w)
    r_perm, r_inv = ref.scan_order_ref(cl, *sums, h, w)
    assert torch.equal(perm, r_perm) and torch.equal(inv, r_inv)


@pytest.mark.parametrize("hw, launches", [((5, 7), 2), ((13, 31), 3)], ids=["fused-hist", "tiled"])
def test_small_images_skip_the_histogram_launch(monkeypatch, hw, launches):
    """Up to FUSE_BLOCKS pixel blocks the start kernel histograms the blocks itself (two
    launches); above, the hist kernel runs first (three). Both bit-identical to the reference."""
    import samic_fast.kernels.scan_order as so

    h, w = hw
    blocks = -(-(h * w) // so._scan_order_config(5)["BLOCK_L"])
    assert (blocks <= so._scan_order_config(5)["FUSE_BLOCKS"]) == (launches == 2)
    seen = []

    class Counting:
        def __init__(self, kernel):
            self.kernel = kernel

        def __getitem__(self, grid):
            seen.append(self.kernel)
            return self.kernel[grid]

    for name in ("_scan_order_hist_kernel", "_scan_order_start_kernel", "_scan_order_scatter_kernel"):
        monkeypatch.setattr(so, name, Counting(getattr(so, name)))
    g = torch.Generator().manual_seed(h + w)
    check_exact(torch.randint(0, 5, (2, h * w), generator=g), 5, h, w)
    assert len(seen) == launches
