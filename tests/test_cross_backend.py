"""Cross-backend exact decoding (issue 6 item 1, entropy_params.py).

A file encoded with one arithmetic must decode to exactly the same quantized latents with
another. Checked three ways: a float64 decoder (a genuinely different arithmetic), decoders whose
entropy parameters and cluster features are perturbed by a tenth of the guard band (and, as the
control that proves the test can fail, by 30 guard bands without guard bands), and the Triton
kernels under the interpreter on a tiny configuration.
"""

import copy

import numpy as np
import pytest
import torch
from skimage import data as skdata

from samic_fast import ref
from samic_fast.backend import triton_available
from samic_fast.config import SAMICConfig, SASSConfig, get_config
from samic_fast.model import default_model
from samic_fast.samb import set_backend

TINY = get_config("tiny")


@pytest.fixture(scope="module")
def model():
    return default_model(backend="reference")


@pytest.fixture(scope="module")
def crop():
    img = skdata.astronaut()[100:228, 180:308]
    return torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1)[None].float() / 255


@pytest.fixture(scope="module")
def encoded(model, crop):
    return model.compress(crop, return_latents=True)


def _noise(seed):
    gen = torch.Generator().manual_seed(seed)

    def uniform(t, amp):
        return t + (torch.rand(t.shape, generator=gen, dtype=torch.float64) * 2 - 1).to(t.dtype) * amp

    return uniform


def _perturbed_decode(model, enc, mean_amp, scale_amp, feat_rel):
    uniform = _noise(7)
    model.param_hook = lambda kind, t: uniform(t, mean_amp if kind == "mean" else scale_amp)
    for s in model._guarded_sass():
        s.feature_hook = lambda f: uniform(f, feat_rel * float(f.abs().max()))
    try:
        return model.decompress(enc["strings"], enc["shape"], return_latents=True)
    finally:
        model.param_hook = None
        for s in model._guarded_sass():
            s.feature_hook = None


def test_float64_decoder_gives_identical_latents_and_calibrates_eps(model, encoded):
    """A float64 decoder reproduces the float32 encoder's latents exactly; and (calibration) the
    float32 parameters' error against float64 is < eps/10, so two float32 backends differ by
    < eps/5, inside the band. The README's figures come from this measurement."""
    seen = {}

    def capture(tag):
        def hook(kind, t):
            seen.setdefault((tag, kind), []).append(t.double().clone())
            return t
        return hook

    m64 = copy.deepcopy(model).double()
    m64.param_hook = capture("f64")
    dec = m64.decompress(encoded["strings"], encoded["shape"], return_latents=True)
    assert torch.equal(dec["y_hat"].float(), encoded["y_hat"])
    model.param_hook = capture("f32")
    try:
        model.decompress(encoded["strings"], encoded["shape"])
    finally:
        model.param_hook = None
    cfg = model.config
    for kind, eps in (("mean", cfg.mean_eps), ("log_scale", cfg.log_scale_eps)):
        diff = max(float((a - b).abs().max()) for a, b in zip(seen[("f32", kind)], seen[("f64", kind)]))
        assert 0 < diff < eps / 10, (kind, diff)


def test_perturbations_inside_guard_band_decode_exactly(model, encoded):
    cfg = model.config
    # features: relative noise r moves cosine scores by at most ~2r/tau = 20r; keep that < eps/10
    dec = _perturbed_decode(model, encoded, cfg.mean_eps / 10, cfg.log_scale_eps / 10, cfg.cluster_eps / 200)
    assert torch.equal(dec["y_hat"], encoded["y_hat"])
    stats = encoded["guard_stats"]
    assert stats["mean"]["flagged"] > 0 and stats["scale"]["flagged"] > 0


def test_without_guard_bands_perturbations_break_decoding(model, crop):
    """Control: the same mechanism with no guard bands and 30x larger noise must fail."""
    cfg = model.config
    enc = model.compress(crop, return_latents=True, guard_bands=False)
    assert sum(v["flagged"] for v in enc["guard_stats"].values()) == 0
    try:
        dec = _perturbed_decode(model, enc, 30 * cfg.mean_eps, 30 * cfg.log_scale_eps, 0.0)
    except Exception:
        return  # garbage that the decoder could not even finish is a failure too
    assert not torch.equal(dec["y_hat"], enc["y_hat"])


def _triton_usable() -> bool:
    if not triton_available():
        return False
    try:
        import samic_fast.kernels  # noqa: F401
    except Exception:
        return False
    return True


@pytest.mark.slow
def test_reference_and_triton_decode_each_others_files():
    """Encode with one backend, decode with the other (interpreter on CPU: tiny config, and the
    Triton path on the decoder's parameter path h_s + context model, where exactness is decided)."""
    if not _triton_usable():
        pytest.skip("triton cannot run here (no GPU and no TRITON_INTERPRET=1)")
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    m = default_model(TINY, backend="reference").to(device)
    x = torch.from_numpy(np.ascontiguousarray(skdata.coffee()[150:214, 300:364])).permute(2, 0, 1)[None]
    x = (x.float() / 255).to(device)

    def use(backend):
        set_backend(m.h_s, backend)
        set_backend(m.context, backend)
        if device.type == "cuda":  # on a GPU the whole network can run fused
            set_backend(m, backend)

    use("reference")
    enc_ref = m.compress(x, return_latents=True)
    use("triton")
    dec_tri = m.decompress(enc_ref["strings"], enc_ref["shape"], return_latents=True)
    assert torch.equal(dec_tri["y_hat"], enc_ref["y_hat"])
    enc_tri = m.compress(x, return_latents=True)
    use("reference")
    dec_ref = m.decompress(enc_tri["strings"], enc_tri["shape"], return_latents=True)
    assert torch.equal(dec_ref["y_hat"], enc_tri["y_hat"])


def test_cluster_guard_overrides_scan_order(model):
    """The cluster guard: where the encoder's top-2 scores tie, its recorded choice replaces the
    decoder's own argmax (which would otherwise pick the other cluster and change the scan)."""
    from samic_fast.entropy_params import ParamGuard

    g = torch.Generator().manual_seed(0)
    feat = torch.randn(1, 8, 6, 6, generator=g)
    centers = torch.randn(4, 8, generator=g)
    centers[1] = centers[0]  # clusters 0 and 1 tie everywhere: every pixel is flagged
    cl, *_ = ref.cluster_assign_ref(feat, centers, 0.1)
    enc = ParamGuard.recorder(model.config)
    forced = torch.where(cl == 0, torch.ones_like(cl), cl)  # the encoder chose 1 where tied
    enc.cluster(feat, centers, torch.tensor(0.1), forced)
    dec = ParamGuard.replayer(model.config, enc.to_bytes())
    got = dec.cluster(feat, centers, torch.tensor(0.1), cl)
    assert torch.equal(got, forced) and not torch.equal(cl, forced)
    assert enc.stats()["cluster"]["flagged"] >= int((cl <= 1).sum())
