"""mamba-ssm drop-in ``ops.selective_scan_fn`` against mamba-ssm's own ``selective_scan_ref``.

Same positional arguments, ``(B, D, L)`` layouts and defaults (``delta_softplus=False``) as
mamba-ssm; fp32 relative RMS <= 1e-5 on both backends (triton under the interpreter on small odd
shapes). The fused path reads the caller's tensors through strides: no copy is made.
"""

import pytest
import torch

from conftest import SCAN_RTOL_RMS, rel_rms
from samic_fast import ops
from samic_fast.errors import ShapeError
from samic_fast.mamba_ref import load_mamba_selective_scan_ref

mamba_ref = load_mamba_selective_scan_ref()
needs_mamba = pytest.mark.skipif(mamba_ref is None, reason="mamba-ssm is not installed")

CASES = {
    "plain": dict(),
    "softplus-bias": dict(delta_softplus=True, delta_bias=True),
    "D-z": dict(D=True, z=True),
    "all-grouped": dict(delta_softplus=True, delta_bias=True, D=True, z=True, groups=3),
}


def make(b, d, L, n, seed=0, D=False, z=False, delta_bias=False, groups=0, delta_softplus=False):
    g = torch.Generator().manual_seed(seed)
    r = lambda *s: torch.randn(*s, generator=g)  # noqa: E731
    bc = (b, groups, n, L) if groups else (b, n, L)
    delta = (r(b, d, L) * 0.5 - 1.0) if delta_softplus else (r(b, d, L).abs() * 0.3 + 0.01)
    args = [r(b, d, L), delta, -torch.exp(r(d, n)), r(*bc), r(*bc)]
    kw = dict(D=r(d) if D else None, z=r(b, d, L) if z else None,
              delta_bias=r(d) * 0.3 if delta_bias else None, delta_softplus=delta_softplus)
    return args, kw


@needs_mamba
@pytest.mark.parametrize("backend", ["triton", "reference"])
@pytest.mark.parametrize("case", list(CASES))
def test_matches_mamba_selective_scan_ref(case, backend):
    args, kw = make(2, 9, 23, 5, seed=1, **CASES[case])
    out, last = ops.selective_scan_fn(*args, **kw, return_last_state=True, backend=backend)
    exp_out, exp_last = mamba_ref(*args, **kw, return_last_state=True)
    assert out.shape == exp_out.shape == (2, 9, 23) and out.dtype == torch.float32
    assert out.is_contiguous()
    assert last.shape == exp_last.shape == (2, 9, 5)
    assert rel_rms(out, exp_out) <= SCAN_RTOL_RMS[torch.float32]
    assert rel_rms(last, exp_last) <= SCAN_RTOL_RMS[torch.float32]


@needs_mamba
@pytest.mark.parametrize("n", [1, 64])
def test_state_sizes_and_positional_call(n):
    args, _ = make(1, 6, 11, n, seed=2)
    out = ops.selective_scan_fn(*args, None, None, None, False, backend="triton")  # mamba's order
    assert rel_rms(out, mamba_ref(*args)) <= SCAN_RTOL_RMS[torch.float32]


@needs_mamba
def test_low_precision_follows_the_input_dtype():
    args, kw = make(1, 5, 13, 4, seed=3, D=True, z=True)
    args16 = [a.to(torch.bfloat16) if i in (0, 1, 3, 4) else a for i, a in enumerate(args)]
    kw16 = dict(kw, z=kw["z"].to(torch.bfloat16))
    out = ops.selective_scan_fn(*args16, **kw16, backend="triton")
    assert out.dtype == torch.bfloat16
    exp = mamba_ref(*[a.float() for a in args16], **{k: v.float() if torch.is_tensor(v) else v
                                                     for k, v in kw16.items()})
    assert rel_rms(out, exp) <= 1e-2


def test_fused_path_reads_the_callers_tensors_without_copies(monkeypatch):
    """The launcher gets (B, L, D)/(B, L, N) views of the caller's own storage (same data_ptr,
    transposed strides): no .contiguous() or transpose copy on the way."""
    import samic_fast.kernels as kernels

    args, kw = make(2, 7, 10, 3, seed=4, D=True, z=True, delta_bias=True, delta_softplus=True)
    seen = {}
    real = kernels.sass_scan_fwd

    def spy(x, dt, A, Bm, Cm, perm, D, z, dt_bias, *a, **k):
        seen.update(x=x, dt=dt, Bm=Bm, Cm=Cm, z=z)
        return real(x, dt, A, Bm, Cm, perm, D, z, dt_bias, *a, **k)

    monkeypatch.setattr(kernels, "sass_scan_fwd", spy)
    out = ops.selective_scan_fn(*args, **kw, backend="triton")
    u, delta, _, B, C = args
    for name, src in (("x", u), ("dt", delta), ("Bm", B), ("Cm", C), ("z", kw["z"])):
        assert seen[name].data_ptr() == src.data_ptr(), name
        assert seen[name].stride() == src.transpose(-1, -2).stride(), name
    assert out.is_contiguous() and out.shape == u.shape
    exp = ops.selective_scan_fn(*args, **kw, backend="reference")
    assert rel_rms(out, exp) <= SCAN_RTOL_RMS[torch.float32]


def test_bad_inputs_raise_typed_errors():
    args, _ = make(1, 6, 8, 4)
    u, delta, A, B, C = args
    with pytest.raises(ShapeError, match="time-invariant"):
        ops.selective_scan_fn(u, delta, A, torch.randn(6, 4), torch.randn(6, 4))
    with pytest.raises(ShapeError, match="divisible"):
        ops.selective_scan_fn(u, delta, A, torch.randn(1, 4, 4, 8), torch.randn(1, 4, 4, 8))
    with pytest.raises(ShapeError):
        ops.selective_scan_fn(u, delta[:, :, :5], A, B, C)
