"""Bad inputs to the public ops raise typed, readable errors (issue 2 item 8)."""

import pytest
import torch

from samic_fast import ops
from samic_fast.backend import resolve_backend
from samic_fast.errors import (
    BackendError,
    DeviceError,
    DTypeError,
    LayoutError,
    SamicError,
    ShapeError,
)


def scan_args(b=1, L=6, d=4, n=3):
    return dict(x=torch.randn(b, L, d), dt=torch.randn(b, L, d), A=-torch.rand(d, n),
                Bm=torch.randn(b, L, n), Cm=torch.randn(b, L, n))


@pytest.mark.parametrize(
    "change, error, words",
    [
        (dict(x=torch.randn(6, 4)), ShapeError, "x must have 3 dimensions"),
        (dict(dt=torch.randn(1, 5, 4)), ShapeError, "dt has shape"),
        (dict(A=-torch.rand(5, 3)), ShapeError, "A has shape"),
        (dict(Bm=torch.randn(1, 6, 2)), ShapeError, "Bm has shape"),
        (dict(x=torch.randn(1, 6, 4).to(torch.int32)), DTypeError, "x has dtype int32"),
        (dict(A=-torch.rand(4, 3).half()), DTypeError, "A has dtype float16"),
        (dict(x=torch.randn(1, 0, 4), dt=torch.randn(1, 0, 4), Bm=torch.randn(1, 0, 3),
              Cm=torch.randn(1, 0, 3)), ShapeError, "empty"),
        (dict(A=-torch.rand(4, 65), Bm=torch.randn(1, 6, 65), Cm=torch.randn(1, 6, 65)),
         ShapeError, "at most 64 state"),
        (dict(D=torch.ones(3)), ShapeError, "D has shape"),
        (dict(z=torch.randn(1, 6, 5)), ShapeError, "z has shape"),
        (dict(x=[1, 2]), TypeError, "torch.Tensor"),
    ],
)
def test_selective_scan_rejects(change, error, words):
    args = {**scan_args(), **change}
    with pytest.raises(error, match=words):
        ops.selective_scan(**args, backend="reference")


@pytest.mark.parametrize("backend", ["reference", "triton"])
def test_scans_take_strided_views_without_a_copy(backend):
    # x channel-first in memory (what a convolution leaves), Bm/Cm column slices of one
    # projection, z transposed: the same result as contiguous copies, bit for bit.
    g = torch.Generator().manual_seed(3)
    b, L, d, n = 1, 7, 4, 3
    x = torch.randn(b, d, L, generator=g).transpose(1, 2)
    proj = torch.randn(b, L, 2 * n + 1, generator=g)
    bm, cm = proj[..., 1:1 + n], proj[..., 1 + n:]
    z = torch.randn(b, d, L, generator=g).transpose(1, 2)
    dt, A = torch.randn(b, L, d, generator=g), -torch.rand(d, n, generator=g)
    perm = torch.randperm(L, generator=g)[None].int()
    assert not (x.is_contiguous() or bm.is_contiguous() or z.is_contiguous())
    got = ops.sass_scan(x, dt, A, bm, cm, perm, z=z, backend=backend)
    want = ops.sass_scan(x.contiguous(), dt, A, bm.contiguous(), cm.contiguous(), perm, z=z.contiguous(),
                         backend=backend)
    assert torch.equal(got, want)
    got = ops.selective_scan(x, dt, A, bm, cm, z=z, backend=backend)
    assert torch.equal(got, ops.selective_scan(x.contiguous(), dt, A, bm.contiguous(), cm.contiguous(),
                                               z=z.contiguous(), backend=backend))


def test_cluster_assign_takes_channels_last_and_rejects_other_layouts():
    g = torch.Generator().manual_seed(4)
    feat, centers = torch.randn(1, 6, 5, 7, generator=g), torch.randn(3, 6, generator=g)
    cl = feat.contiguous(memory_format=torch.channels_last)
    for backend in ("reference", "triton"):
        assert all(torch.equal(a, b) for a, b in zip(ops.cluster_assign(cl, centers, 0.1, backend=backend),
                                                     ops.cluster_assign(feat, centers, 0.1, backend=backend)))
    with pytest.raises(LayoutError, match="one strided run"):
        ops.cluster_assign(feat.transpose(2, 3).contiguous().transpose(2, 3), centers, 0.1)


def test_errors_are_samic_errors_and_builtin_errors():
    with pytest.raises(SamicError):
        ops.selective_scan(**{**scan_args(), "dt": torch.randn(1, 5, 4)})
    with pytest.raises(ValueError):
        ops.selective_scan(**{**scan_args(), "dt": torch.randn(1, 5, 4)})
    with pytest.raises(TypeError):
        ops.selective_scan(**{**scan_args(), "x": torch.ones(1, 6, 4, dtype=torch.int64)})


def test_sass_scan_checks_perm():
    args = scan_args()
    with pytest.raises(ShapeError, match="perm"):
        ops.sass_scan(**args, perm=torch.arange(5)[None].int())
    with pytest.raises(DTypeError, match="perm"):
        ops.sass_scan(**args, perm=torch.arange(6)[None].float())


def test_cluster_assign_rejects_bad_inputs():
    feat, centers = torch.randn(1, 4, 3, 3), torch.randn(5, 4)
    with pytest.raises(ShapeError, match="at most 64 clusters"):
        ops.cluster_assign(feat, torch.randn(65, 4), 0.1)
    with pytest.raises(ShapeError, match="centers has shape"):
        ops.cluster_assign(feat, torch.randn(5, 3), 0.1)
    with pytest.raises(ShapeError, match="feat must have 4"):
        ops.cluster_assign(torch.randn(4, 3, 3), centers, 0.1)
    with pytest.raises(ValueError, match="tau"):
        ops.cluster_assign(feat, centers, 0.0)
    with pytest.raises(ValueError, match="tau"):
        ops.cluster_assign(feat, centers, float("nan"))
    with pytest.raises(ShapeError, match="empty"):
        ops.cluster_assign(torch.randn(1, 4, 0, 3), centers, 0.1)


def test_scan_order_rejects_bad_inputs():
    cluster = torch.zeros(1, 6, dtype=torch.int32)
    sums = [torch.tensor([[6]]), torch.tensor([[3]]), torch.tensor([[6]])]
    with pytest.raises(ShapeError, match="cluster has shape"):
        ops.scan_order(cluster, *sums, 2, 4)
    with pytest.raises(ShapeError, match="height and width"):
        ops.scan_order(cluster, *sums, 0, 6)
    with pytest.raises(DTypeError, match="count"):
        ops.scan_order(cluster, sums[0].int(), *sums[1:], 2, 3)
    with pytest.raises(ShapeError, match="at most 64 clusters"):
        ops.scan_order(cluster, *[torch.zeros(1, 65, dtype=torch.int64)] * 3, 2, 3)


def test_unknown_backend_and_env_override(monkeypatch):
    with pytest.raises(BackendError, match="unknown backend"):
        ops.selective_scan(**scan_args(), backend="cuda-fast")
    monkeypatch.setenv("SAMIC_FAST_BACKEND", "nonsense")
    with pytest.raises(BackendError, match="SAMIC_FAST_BACKEND"):
        resolve_backend("auto", torch.device("cpu"))
    monkeypatch.setenv("SAMIC_FAST_BACKEND", "reference")
    assert resolve_backend("auto", torch.device("cpu")) == "reference"


def test_auto_never_picks_the_interpreter_on_cpu(monkeypatch):
    monkeypatch.delenv("SAMIC_FAST_BACKEND", raising=False)
    assert resolve_backend("auto", torch.device("cpu")) == "reference"


def test_triton_on_cpu_without_interpreter_is_a_device_error(monkeypatch):
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    with pytest.raises((DeviceError, BackendError), match="triton"):
        resolve_backend("triton", torch.device("cpu"))
