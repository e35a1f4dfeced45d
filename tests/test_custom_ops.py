"""torch.library registration of the fused ops: schemas and fake kernels (opcheck), gradients
(reference recompute; gradcheck in float64), the FLOP formula, and torch.compile(fullgraph=True).

torch.compile uses backend="aot_eager": it runs Dynamo and AOTAutograd (where graph breaks and
missing fake kernels show up) without Inductor's C++ compilation, which takes minutes on CPU.
"""

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

import samic_fast.custom_ops as K
from samic_fast import ops, ref


def small_inputs(b=1, L=6, d=3, n=2, dtype=torch.float64, seed=0, grad=False):
    g = torch.Generator().manual_seed(seed)
    r = lambda *s: torch.randn(*s, generator=g, dtype=dtype)  # noqa: E731
    t = dict(x=r(b, L, d), dt=r(b, L, d) * 0.5, A=-torch.exp(r(d, n)), Bm=r(b, L, n), Cm=r(b, L, n),
             D=r(d), z=r(b, L, d), dt_bias=r(d) * 0.3)
    if grad:
        for v in t.values():
            v.requires_grad_()
    perm = torch.stack([torch.randperm(L, generator=g) for _ in range(b)]).to(torch.int32)
    return t, perm


NAMES = ("x", "dt", "A", "Bm", "Cm", "D", "z", "dt_bias")


def test_gradcheck_sass_scan_float64():
    t, perm = small_inputs(L=7, grad=True)

    def f(x, dt, A, Bm, Cm, D, z, dt_bias):
        return K.sass_scan(x, dt, A, Bm, Cm, perm, D, z, dt_bias, True)

    assert torch.autograd.gradcheck(f, tuple(t[n] for n in NAMES))


def test_gradcheck_selective_scan_float64_without_optionals():
    t, _ = small_inputs(L=5, d=2, n=3, seed=1, grad=True)

    def f(x, dt, A, Bm, Cm):
        return K.selective_scan(x, dt, A, Bm, Cm, None, None, None, False)

    t["dt"].data = t["dt"].data.abs() + 0.05  # without softplus delta must be positive
    assert torch.autograd.gradcheck(f, tuple(t[n] for n in NAMES[:5]))


def test_gradients_match_reference_fp32_through_ops():
    t, perm = small_inputs(b=2, L=19, d=5, n=4, dtype=torch.float32, seed=2, grad=True)
    args = [t[n] for n in NAMES[:5]]
    kw = dict(D=t["D"], z=t["z"], dt_bias=t["dt_bias"])
    g_out = torch.randn(2, 19, 5, generator=torch.Generator().manual_seed(3))
    fused = torch.autograd.grad(ops.sass_scan(*args, perm, **kw, backend="triton"), list(t.values()), g_out)
    expected = torch.autograd.grad(ref.sass_scan_ref(*args, perm, **kw), list(t.values()), g_out)
    for name, a, e in zip(t, fused, expected):
        torch.testing.assert_close(a, e, rtol=1e-5, atol=1e-6, msg=name)


def test_only_requested_gradients_are_computed():
    t, perm = small_inputs(seed=4)
    t["x"].requires_grad_()
    y = K.sass_scan(t["x"], t["dt"], t["A"], t["Bm"], t["Cm"], perm, t["D"], t["z"], t["dt_bias"], True)
    (gx,) = torch.autograd.grad(y.sum(), [t["x"]])
    expected = torch.autograd.grad(
        ref.sass_scan_ref(t["x"], t["dt"], t["A"], t["Bm"], t["Cm"], perm, t["D"], t["z"], t["dt_bias"]).sum(),
        [t["x"]],
    )[0]
    torch.testing.assert_close(gx, expected)


@pytest.mark.parametrize("op", ["sass_scan", "selective_scan", "cluster_assign", "scan_order"])
def test_opcheck(op):
    t, perm = small_inputs(b=2, L=9, d=4, n=3, dtype=torch.float32, seed=5)
    scan = [t[n] for n in NAMES[:5]]
    opt = [t["D"], t["z"], t["dt_bias"]]
    feat = torch.randn(2, 6, 3, 5)
    centers = torch.randn(4, 6)
    if op == "sass_scan":
        args = (*scan, perm, *opt, True)
    elif op == "selective_scan":
        args = (*scan, None, None, None, True)
    elif op == "cluster_assign":
        args = (feat, centers, *ref.positional_tables(3, 5, 6))
    else:
        cl, *sums = K.cluster_assign(feat, centers, 0.1)
        args = (cl, *sums)
    # Schema, fake (meta) kernel, autograd registration and AOT dispatch, as torch checks them.
    torch.library.opcheck(getattr(torch.ops.samic_fast, op).default, args)


def test_flop_counter_counts_the_formula():
    t, perm = small_inputs(b=2, L=11, d=5, n=3, dtype=torch.float32, seed=6)
    with FlopCounterMode(display=False) as counter:
        K.sass_scan(*(t[n] for n in NAMES[:5]), perm, t["D"], t["z"], t["dt_bias"], True)
        K.selective_scan(*(t[n] for n in NAMES[:5]))
    assert counter.get_total_flops() == 2 * 9 * 2 * 11 * 5 * 3


def test_compile_fullgraph_function_of_ops():
    t, perm = small_inputs(b=1, L=10, d=4, n=3, dtype=torch.float32, seed=7)
    feat = torch.randn(1, 6, 2, 5)
    centers = torch.randn(3, 6)

    def f(feat, x, dt, Bm, Cm):
        cl, *sums = ops.cluster_assign(feat, centers, 0.1, backend="triton")
        p, _ = ops.scan_order(cl, *sums, 2, 5, backend="triton")
        y = ops.sass_scan(x, dt, t["A"], Bm, Cm, p, D=t["D"], z=t["z"], dt_bias=t["dt_bias"], backend="triton")
        return y + ops.selective_scan(x, dt, t["A"], Bm, Cm, backend="triton")

    args = (feat, t["x"], t["dt"], t["Bm"], t["Cm"])
    compiled = torch.compile(f, fullgraph=True, backend="aot_eager")
    assert torch.equal(compiled(*args), f(*args))


def test_compile_fullgraph_samb():
    from samic_fast.config import SASSConfig
    from samic_fast.samb import SAMB, set_backend

    torch.manual_seed(0)
    block = set_backend(SAMB(6, SASSConfig(num_clusters=3, c_sem=4, d_state=3)), "triton").eval()
    x = torch.randn(1, 6, 5, 7)
    with torch.no_grad():
        eager = block(x)
        compiled = torch.compile(block, fullgraph=True, backend="aot_eager")(x)
        reference = _with_backend(block, "reference")(x)
    assert torch.equal(compiled, eager)
    torch.testing.assert_close(eager, reference, rtol=1e-5, atol=1e-5)


def _with_backend(block, backend):
    from samic_fast.samb import set_backend

    return set_backend(block, backend)


# ------------------------------------------------------------------ samic-fast verify (CLI)


def test_verify_command_passes_on_small_shapes(capsys):
    from samic_fast.cli import main

    assert main(["verify", "--device", "cpu", "--dtype", "fp32"]) == 0
    out = capsys.readouterr().out
    assert "verify: PASS" in out
    for op in ("cluster_assign", "scan_order", "selective_scan", "sass_scan"):
        assert op in out


def test_verify_command_exits_nonzero_when_a_rule_fails(monkeypatch, capsys):
    from samic_fast import verify
    from samic_fast.cli import main

    real = verify.run_verify

    def with_a_failure(*args, **kwargs):
        rows = real(*args, **kwargs)
        rows[-1].ok = False
        return rows

    monkeypatch.setitem(verify.SHAPES, "small", {"cluster": verify.SHAPES["small"]["cluster"][:1], "scan": []})
    monkeypatch.setattr(verify, "run_verify", with_a_failure)
    assert main(["verify", "--device", "cpu", "--dtype", "fp32", "--json"]) == 1
    assert '"ok": false' in capsys.readouterr().out


def test_verify_rejects_bad_arguments(capsys):
    from samic_fast.cli import main

    assert main(["verify", "--dtype", "fp8"]) == 2
    if not torch.cuda.is_available():
        assert main(["verify", "--device", "cuda"]) == 1
        assert "no CUDA GPU" in capsys.readouterr().err


def test_samb_training_gradients_match_reference_backend():
    """Training through the fused scan (reference-recompute backward) inside a real SAMB."""
    from samic_fast.config import SASSConfig
    from samic_fast.samb import SAMB, set_backend

    torch.manual_seed(1)
    block = set_backend(SAMB(5, SASSConfig(num_clusters=3, c_sem=4, d_state=3)), "triton").train()
    x = torch.randn(1, 5, 4, 6)
    grads = {}
    for backend in ("triton", "reference"):
        set_backend(block, backend)
        block.zero_grad()
        torch.manual_seed(2)  # the same Gumbel noise for both backends
        block(x).square().sum().backward()
        grads[backend] = {n: p.grad.clone() for n, p in block.named_parameters() if p.grad is not None}
    assert grads["triton"].keys() == grads["reference"].keys() and len(grads["triton"]) > 5
    for name, g in grads["triton"].items():
        torch.testing.assert_close(g, grads["reference"][name], rtol=1e-4, atol=1e-5, msg=name)
