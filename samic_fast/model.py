"""The SAMIC codec network (paper §3, Fig. 2) as a CompressAI ``CompressionModel``.

::

    x (B,3,H,W) ─g_a─▶ SVD-RRM ─▶ y (B,M,H/16,W/16) ─h_a─▶ z (B,N,H/64,W/64)
    ẑ = EntropyBottleneck(z);  Ψ = h_s(ẑ) (B,2M,H/16,W/16) = (Ψ_μ, Ψ_σ)
    ŷ ~ N(μ, σ²) from the spatial-channel context model (entropy.py) ─g_s─▶ x̂

- g_a: Conv5×5/2 (3→C1) · SAMB(C1)×d1 · Conv3×3/2 (→C2) · SAMB(C2)×d2 · Conv3×3/2 (→C3) ·
  SAMB(C3)×d3 · Conv3×3/2 (→M) · SVD-RRM (§3.3)
- g_s: mirror with transposed convolutions (3×3/2 …, last 5×5/2 → 3 channels)
- h_a: Conv3×3/2 (M→C5) · SAMB(C5)×dh · Conv3×3/2 (→N);
  h_s: ConvT3×3/2 (N→C5) · SAMB(C5)×dh · ConvT3×3/2 (→2M)

Coding follows CompressAI: ``compress(x) -> {"strings": [[y], [z], [side]], "shape": [h_z, w_z]}``
with one rANS string for all slices and passes of ``y``, CompressAI's string for ``z`` and the
guard-band side information (:mod:`samic_fast.entropy_params`); ``decompress(strings, shape)
-> {"x_hat"}``. Batch size 1 (the file container codes one image per file); ``H`` and ``W`` must be
multiples of 64 (the container pads).
"""

from __future__ import annotations

import contextlib
import hashlib
import operator
from typing import Callable, Mapping, Optional

import torch
import torch.nn as nn

from samic_fast._compressai import import_compressai
from samic_fast.config import SAMICConfig
from samic_fast.entropy import ContextEntropyModel, WindowBlock
from samic_fast.entropy_params import ParamGuard, scale_table
from samic_fast.errors import CorruptBitstreamError, DTypeError, ShapeError
from samic_fast.samb import samb_stack, set_backend
from samic_fast.sass import SASS
from samic_fast.svd_rrm import SVDRRM

import_compressai()
from compressai.ans import BufferedRansEncoder, RansDecoder  # noqa: E402
from compressai.entropy_models import EntropyBottleneck, GaussianConditional  # noqa: E402
from compressai.models import CompressionModel  # noqa: E402

DEFAULT_SEED = 20240611
STRIDE = 64  # total downsampling of x to z


def _conv(cin: int, cout: int, k: int, stride: int = 2) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2)


def _deconv(cin: int, cout: int, k: int, stride: int = 2) -> nn.ConvTranspose2d:
    return nn.ConvTranspose2d(cin, cout, k, stride=stride, padding=k // 2, output_padding=stride - 1)


def rans_safe(stream: bytes, num_symbols: int) -> bytes:
    """``stream`` followed by enough zero bytes that CompressAI's rANS decoder cannot read past it.

    That decoder (``compressai.ans``, 64-bit state, 32-bit renormalisation) does no bounds checks,
    and a forged file can carry any bytes with valid checksums. A valid stream is never read beyond
    its end, so trailing zeros change nothing for it. For any stream: inside the real bytes every
    read consumes them; once past the end the state drains to zero within 16 nibbles, after which
    each symbol reads at most one word (a zero state never selects the bypass symbol of a real
    CDF); one bypass run can overshoot by at most ``15 * (2 * len + 17)`` nibbles. So
    ``16 * len + 4 * num_symbols + 256`` zero bytes bound every read, and garbage in a forged file
    decodes to garbage symbols, never to an out-of-bounds read.
    """
    return bytes(stream) + bytes(16 * len(stream) + 4 * num_symbols + 256)


class SAMIC(CompressionModel):
    """SAMIC codec. ``forward(x)`` (``x (B, 3, H, W)`` in [0, 1], ``H, W`` multiples of 64) returns
    ``{"x_hat", "likelihoods": {"y", "z"}}`` as CompressAI models do.

    Every SASS is built with backend "auto"; :meth:`set_backend` is the one place that changes
    it. ``param_hook`` (tests only) alters the decoder-side ``μ``/``log σ``.
    """

    def __init__(self, config: Optional[SAMICConfig] = None) -> None:
        super().__init__()
        cfg = config or SAMICConfig()
        self.config = cfg
        c1, c2, c3, m, c5, _ = (int(c) for c in cfg.channels)
        d1, d2, d3 = (int(d) for d in cfg.depths)
        sc = cfg.sass
        self.g_a = nn.Sequential(
            _conv(3, c1, cfg.end_kernel), *samb_stack(c1, d1, sc),
            _conv(c1, c2, 3), *samb_stack(c2, d2, sc),
            _conv(c2, c3, 3), *samb_stack(c3, d3, sc),
            _conv(c3, m, 3),
        )
        self.svd_rrm = SVDRRM()
        self.g_s = nn.Sequential(
            _deconv(m, c3, 3), *samb_stack(c3, d3, sc),
            _deconv(c3, c2, 3), *samb_stack(c2, d2, sc),
            _deconv(c2, c1, 3), *samb_stack(c1, d1, sc),
            _deconv(c1, 3, cfg.end_kernel),
        )
        self.h_a = nn.Sequential(_conv(m, c5, 3), *samb_stack(c5, cfg.hyper_depth, sc), _conv(c5, cfg.N, 3))
        self.h_s = nn.Sequential(_deconv(cfg.N, c5, 3), *samb_stack(c5, cfg.hyper_depth, sc),
                                 _deconv(c5, 2 * m, 3))
        self.context = ContextEntropyModel(cfg)
        self.entropy_bottleneck = EntropyBottleneck(cfg.N)
        self.gaussian_conditional = GaussianConditional(None)
        self.param_hook: Optional[Callable[[str, torch.Tensor], torch.Tensor]] = None

    # ------------------------------------------------------------ helpers
    def set_backend(self, backend: str) -> "SAMIC":
        """Run every SASS of the model on ``backend`` ("auto", "reference", "triton")."""
        set_backend(self, backend)
        return self

    def scale_table(self) -> torch.Tensor:
        cfg = self.config
        return scale_table(cfg.scale_min, cfg.scale_max, cfg.scale_levels)

    @torch.no_grad()
    def update(self, scale_table=None, force: bool = False, update_quantiles: bool = False) -> bool:
        """Compute the integer CDF tables (CompressAI's ``update``) — always on a CPU copy.

        The tables decide how every symbol is coded; computing them on the model's device would
        let a GPU's float rounding produce tables that differ from a CPU's, and a file encoded
        with one would not decode with the other. The integer results are copied back.
        """
        if scale_table is None:
            scale_table = self.scale_table()
        updated = False
        for module in (self.entropy_bottleneck, self.gaussian_conditional):
            device = next(iter(module.buffers())).device
            module.to("cpu")
            if isinstance(module, EntropyBottleneck):
                updated |= module.update(force=force, update_quantiles=update_quantiles)
            else:
                updated |= module.update_scale_table(scale_table.cpu(), force=force)
            module.to(device)
        return updated

    def _guarded_sass(self) -> list[SASS]:
        """SASS modules on the decoder's parameter path (h_s and the context model)."""
        return [m for part in (self.h_s, self.context) for m in part.modules() if isinstance(m, SASS)]

    @contextlib.contextmanager
    def _guarding(self, guard: ParamGuard):
        mods = self._guarded_sass()
        for m in mods:
            m.guard = guard
        try:
            yield
        finally:
            for m in mods:
                m.guard = None

    def _cdf_tables(self) -> tuple:
        gc = self.gaussian_conditional
        if gc._offset.numel() == 0:
            raise RuntimeError("entropy tables are missing: call model.update(force=True) first")
        return (gc._quantized_cdf.tolist(), gc._cdf_length.reshape(-1).int().tolist(),
                gc._offset.reshape(-1).int().tolist())

    @staticmethod
    @contextlib.contextmanager
    def _exact_float32():
        """Disable TF32 while coding: cuDNN convolutions default to TF32 on Ampere and later
        GPUs, whose ~1e-3 relative error would exceed the guard bands; plain float32 stays
        within ~1e-5 of the CPU (entropy_params.py)."""
        conv, mm = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
        torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
        try:
            yield
        finally:
            torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = conv, mm

    @staticmethod
    def _check_image(x) -> None:
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
        if not x.is_floating_point():
            raise DTypeError(f"x must be a float tensor in [0, 1], got {x.dtype}")
        if x.dim() != 4 or x.shape[1] != 3:
            raise ShapeError(f"x must have shape (B, 3, H, W), got {tuple(x.shape)}")
        if x.shape[2] % STRIDE or x.shape[3] % STRIDE or x.shape[2] == 0 or x.shape[3] == 0:
            raise ShapeError(f"H and W must be positive multiples of {STRIDE}, got {tuple(x.shape[2:])}")

    # ------------------------------------------------------------ training / evaluation
    def forward(self, x: torch.Tensor) -> dict:
        self._check_image(x)
        y = self.svd_rrm(self.g_a(x))
        z = self.h_a(y)
        _, z_likelihoods = self.entropy_bottleneck(z)
        medians = self.entropy_bottleneck._get_medians()
        z_hat = z + (torch.round(z - medians) + medians - z).detach()  # straight-through round
        psi = self.h_s(z_hat)
        y_hat, y_likelihoods = self.context(y, psi, self.gaussian_conditional)
        x_hat = self.g_s(y_hat)
        return {"x_hat": x_hat, "likelihoods": {"y": y_likelihoods, "z": z_likelihoods}}

    # ------------------------------------------------------------ coding
    @torch.no_grad()
    def compress(self, x: torch.Tensor, return_latents: bool = False, guard_bands: bool = True) -> dict:
        """Encode one image ``x (1, 3, H, W)`` in [0, 1]. Returns ``{"strings": [[y_string],
        [z_string], [side_info]], "shape": [H/64, W/64]}``; with ``return_latents`` also
        ``"y_hat"``, ``"z_hat"`` (the exact latents the decoder will reproduce) and
        ``"guard_stats"`` (flagged element counts). ``guard_bands=False`` flags nothing (files
        then decode exactly only with the encoder's own arithmetic; for tests and measurements)."""
        self._check_image(x)
        if x.shape[0] != 1:
            raise ShapeError(f"compress codes one image at a time, got a batch of {x.shape[0]}")
        tables = self._cdf_tables()
        y = self.svd_rrm(self.g_a(x))
        z = self.h_a(y)
        z_strings = self.entropy_bottleneck.compress(z)
        z_hat = self.entropy_bottleneck.decompress(z_strings, z.shape[-2:])
        guard = ParamGuard.recorder(self.config, enabled=guard_bands)
        encoder = BufferedRansEncoder()
        with self._guarding(guard), self._exact_float32():
            psi = self.h_s(z_hat)
            y_hat = self.context.code(psi, guard, tables, y=y, encoder=encoder, param_hook=self.param_hook)
        out = {"strings": [[encoder.flush()], list(z_strings), [guard.to_bytes()]],
               "shape": [int(z.shape[-2]), int(z.shape[-1])]}
        if return_latents:
            out.update(y_hat=y_hat, z_hat=z_hat, guard_stats=guard.stats())
        return out

    @torch.no_grad()
    def decompress(self, strings, shape, return_latents: bool = False) -> dict:
        """Decode the output of :meth:`compress`: ``{"x_hat": (1, 3, 64·h_z, 64·w_z)}`` clamped to
        [0, 1]; with ``return_latents`` also ``"y_hat"`` and ``"z_hat"``."""
        if (not isinstance(strings, (list, tuple)) or len(strings) != 3
                or any(not isinstance(s, (list, tuple)) or len(s) != 1 for s in strings)
                or any(not isinstance(s[0], (bytes, bytearray)) for s in strings)):
            raise CorruptBitstreamError("strings must be [[y_bytes], [z_bytes], [side_bytes]]")
        try:
            shape = [operator.index(v) for v in shape]  # ints, numpy ints; not floats
        except TypeError:
            raise CorruptBitstreamError(f"shape must be two positive ints, got {shape!r}") from None
        if len(shape) != 2 or min(shape) < 1:
            raise CorruptBitstreamError(f"shape must be two positive ints, got {shape!r}")
        tables = self._cdf_tables()
        h_z, w_z = shape
        z_symbols = self.config.N * h_z * w_z
        y_symbols = self.config.channels[3] * (4 * h_z) * (4 * w_z)
        z_hat = self.entropy_bottleneck.decompress([rans_safe(strings[1][0], z_symbols)], tuple(shape))
        guard = ParamGuard.replayer(self.config, bytes(strings[2][0]))
        decoder = RansDecoder()
        decoder.set_stream(rans_safe(strings[0][0], y_symbols))
        with self._guarding(guard), self._exact_float32():
            psi = self.h_s(z_hat)
            y_hat = self.context.code(psi, guard, tables, decoder=decoder, param_hook=self.param_hook)
        guard.finish()
        x_hat = self.g_s(y_hat).clamp_(0, 1)
        out = {"x_hat": x_hat}
        if return_latents:
            out.update(y_hat=y_hat, z_hat=z_hat)
        return out


# ---------------------------------------------------------------- construction and weights
@torch.no_grad()
def _seeded_init(model: nn.Module, seed: int) -> None:
    """Deterministic initialisation from a private CPU generator, identical on every machine.

    Every tensor is drawn on CPU in float32 in module-definition order (the global RNG is not
    used, nor any device RNG): conv/linear weights ``U(±1/√fan_in)`` (PyTorch's default bound),
    their biases 0, LayerNorm 1/0, SASS centers ``N(0, 1)`` and ``dt_bias`` by Mamba's rule,
    window-attention position biases ``N(0, 0.02²)``, EntropyBottleneck biases ``U(±½)``. Other
    parameters (``A_log``, ``D``, SVD-RRM's θ/α, the bottleneck's matrices and quantiles) keep their
    constant initial values.
    """
    gen = torch.Generator(device="cpu").manual_seed(seed)

    def fill(p: torch.Tensor, values: torch.Tensor) -> None:
        p.copy_(values.to(p.device, p.dtype))

    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            w = module.weight
            fan_in = w[0].numel() if not isinstance(module, nn.ConvTranspose2d) else w.shape[1] * w[0, 0].numel()
            bound = 1.0 / max(fan_in, 1) ** 0.5
            fill(w, (torch.rand(w.shape, generator=gen) * 2 - 1) * bound)
            if module.bias is not None:
                module.bias.zero_()
        elif isinstance(module, nn.LayerNorm):
            module.weight.fill_(1.0)
            module.bias.zero_()
        elif isinstance(module, SASS):
            fill(module.centers, torch.randn(module.centers.shape, generator=gen))
            module.reset_dt(generator=gen)
        elif isinstance(module, WindowBlock):
            fill(module.rel_bias, torch.randn(module.rel_bias.shape, generator=gen) * 0.02)
        elif isinstance(module, EntropyBottleneck):
            # CompressAI names them "_bias{i}" in old releases and "biases.{i}" in 1.2.x; the rest
            # of the EntropyBottleneck's initialisation is deterministic.
            for name, p in module.named_parameters():
                if name.startswith(("_bias", "biases")):
                    fill(p, torch.rand(p.shape, generator=gen) - 0.5)


def _build(config: Optional[SAMICConfig], backend: str) -> SAMIC:
    # Construction draws from the global RNG (PyTorch's default inits); fork it so that building a
    # model leaves the caller's random state untouched. Weights are then overwritten anyway.
    # The fixed seed makes even a parameter that _seeded_init might miss identical across runs.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(DEFAULT_SEED)
        return SAMIC(config).set_backend(backend)


def default_model(config: Optional[SAMICConfig] = None, backend: str = "auto",
                  seed: int = DEFAULT_SEED) -> SAMIC:
    """The untrained SAMIC (no pretrained weights exist): seeded, identical on every machine,
    CDF tables computed (``update(force=True)``), eval mode, on CPU."""
    model = _build(config, backend)
    _seeded_init(model, seed)
    model.update(force=True)
    return model.eval()


def weights_digest(model: nn.Module) -> bytes:
    """SHA-256 of ``model.state_dict()`` in a canonical form: names sorted; per tensor its name,
    kind, shape and data — floats as little-endian float32 of their CPU values, integers as
    little-endian int64, bools as bytes. Includes the CDF tables. Independent of device/dtype."""
    h = hashlib.sha256(b"samic_fast.weights/v1\0")
    state = model.state_dict()
    for name in sorted(state):
        t = state[name].detach().cpu()
        if t.is_floating_point():
            kind, data = b"f", t.to(torch.float32).contiguous().numpy().astype("<f4").tobytes()
        elif t.dtype == torch.bool:
            kind, data = b"b", t.to(torch.uint8).contiguous().numpy().tobytes()
        else:
            kind, data = b"i", t.to(torch.int64).contiguous().numpy().astype("<i8").tobytes()
        h.update(name.encode() + b"\0" + kind + repr(tuple(t.shape)).encode() + b"\0")
        h.update(len(data).to_bytes(8, "little"))
        h.update(data)
    return h.digest()


# Buffers whose size depends on the trained densities (CompressAI resizes them on load); a
# checkpoint may lack them, in which case they are computed after loading.
_DYNAMIC_SUFFIXES = ("._quantized_cdf", "._offset", "._cdf_length", "gaussian_conditional.scale_table")

#: Where checkpoints keep the weights: samic-fast train and CompressAI's examples use
#: ``"state_dict"``; other training scripts use the rest. A bare state_dict is accepted too.
STATE_DICT_KEYS = ("state_dict", "network", "model_state_dict", "model")
#: Prefixes that wrappers add to every name: DataParallel/DistributedDataParallel, torch.compile.
_WRAPPER_PREFIXES = ("module.", "_orig_mod.")


def _is_state_dict(obj) -> bool:
    return isinstance(obj, Mapping) and bool(obj) and all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items())


def _strip_prefixes(state: Mapping) -> dict:
    out = {}
    for name, value in state.items():
        while name.startswith(_WRAPPER_PREFIXES):
            name = name.split(".", 1)[1]
        out[name] = value
    return out


def read_checkpoint(path) -> dict:
    """Read a checkpoint file safely (``torch.load(weights_only=True)``: tensors and plain
    containers only, never arbitrary pickled objects) and return it as a dict with

    - ``"state_dict"``: the weights, wrapper prefixes (``module.``, ``_orig_mod.``) removed;
    - ``"config"``: the :class:`SAMICConfig` the checkpoint records (``"config"``, as written by
      ``samic-fast train``), or None;
    - ``"arch"``: the configuration name it records, or None;
    - ``"raw"``: everything it holds (optimizer, step, RNG state for ``train --resume``).

    Raises :class:`~samic_fast.errors.InputFileError` (one line) for a file that is not a
    readable checkpoint and :class:`~samic_fast.errors.ConfigError` for one without weights or
    with a malformed configuration.
    """
    import pickle
    import re
    import zipfile

    from samic_fast.errors import ConfigError, InputFileError

    with open(path, "rb") as f:
        head = f.read(2)
    if not (zipfile.is_zipfile(path) or head[:1] == b"\x80"):
        raise InputFileError(f"{path}: not a PyTorch checkpoint (neither a torch.save zip archive nor a pickle)")
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, OSError, zipfile.BadZipFile,
            AttributeError, TypeError, KeyError, IndexError) as exc:
        text = str(exc)
        unsafe = re.search(r"GLOBAL ([\w.]+)", text)
        if unsafe:
            raise InputFileError(
                f"{path}: holds a pickled {unsafe.group(1)}, which is not loaded for safety (only tensors "
                "and plain containers are); re-save it with torch.save(model.state_dict(), path)") from None
        first = next((line.strip() for line in text.splitlines() if line.strip()), type(exc).__name__)
        raise InputFileError(f"{path}: not a readable PyTorch checkpoint ({first[:200]})") from None
    if _is_state_dict(raw):
        return {"state_dict": _strip_prefixes(raw), "config": None, "arch": None, "raw": {}}
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{path}: expected a state_dict or a dict holding one, got {type(raw).__name__}")
    key = next((k for k in STATE_DICT_KEYS if _is_state_dict(raw.get(k))), None)
    if key is None:
        raise ConfigError(f"{path}: holds no state_dict (a mapping of names to tensors, bare or under "
                          f"one of the keys {', '.join(STATE_DICT_KEYS)})")
    config = raw.get("config")
    if config is not None:
        config = SAMICConfig.from_dict(config) if isinstance(config, Mapping) else None
        if config is None:
            raise ConfigError(f"{path}: its 'config' entry is not a mapping of configuration fields")
    arch = raw.get("arch") if isinstance(raw.get("arch"), str) else None
    return {"state_dict": _strip_prefixes(raw[key]), "config": config, "arch": arch, "raw": dict(raw)}


def resolve_config(recorded: Optional[SAMICConfig], recorded_arch: Optional[str] = None,
                   config: Optional[SAMICConfig] = None, arch: Optional[str] = None,
                   source: str = "the checkpoint") -> SAMICConfig:
    """The configuration to build: the one ``source`` records, else ``config``, else the named
    ``arch``, else the default. A requested configuration that differs from a recorded one raises
    :class:`~samic_fast.errors.ConfigError`."""
    from samic_fast.config import arch_name, get_config
    from samic_fast.errors import ConfigError

    requested = config if config is not None else (get_config(arch) if arch is not None else None)
    if recorded is None:
        return requested if requested is not None else get_config()
    if requested is not None and requested != recorded:
        asked = f"--arch {arch}" if arch is not None and config is None else "the requested configuration"
        has = recorded_arch or arch_name(recorded) or "a custom configuration"
        raise ConfigError(f"{asked} conflicts with {source}, which was trained with {has}; "
                          "leave --arch out to use the checkpoint's own")
    return recorded


def _fitting_archs(state: Mapping) -> list:
    """Names of the configurations whose parameter names and shapes ``state`` matches."""
    from samic_fast.complexity import meta_model
    from samic_fast.config import ARCHS

    names, seen = [], []
    for name, cfg in ARCHS.items():
        if cfg in seen:
            continue
        seen.append(cfg)
        # On the meta device: shapes only, no weights allocated or initialised (milliseconds).
        expected = {k: v.shape for k, v in meta_model(cfg).state_dict().items()
                    if not k.endswith(_DYNAMIC_SUFFIXES)}
        if set(expected) <= set(state) and all(state[k].shape == s for k, s in expected.items()):
            names.append(name)
    return names


def load_checkpoint(path, config: Optional[SAMICConfig] = None, backend: str = "auto",
                    arch: Optional[str] = None) -> SAMIC:
    """Load a checkpoint (see :func:`read_checkpoint` for the layouts accepted) into a SAMIC.

    The configuration is the checkpoint's own when it records one (``samic-fast train`` does),
    else ``config``, else the named ``arch`` (:data:`samic_fast.config.ARCHS`), else the default;
    asking for a configuration that differs from the recorded one raises
    :class:`~samic_fast.errors.ConfigError`. Weights that do not fit raise
    :class:`~samic_fast.errors.ConfigError` listing missing/unexpected keys or mismatched shapes (and which
    named configuration they would fit). CDF tables absent from the checkpoint are computed.
    """
    from samic_fast.errors import ConfigError

    ckpt = read_checkpoint(path)
    state = ckpt["state_dict"]
    cfg = resolve_config(ckpt["config"], ckpt["arch"], config, arch, source=str(path))
    model = _build(cfg, backend)
    expected = model.state_dict()
    dynamic = {k for k in expected if k.endswith(_DYNAMIC_SUFFIXES)}
    missing = sorted(set(expected) - set(state) - dynamic)
    unexpected = sorted(set(state) - set(expected))
    wrong = sorted(f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(expected[k].shape)}"
                   for k in set(state) & set(expected) - dynamic if state[k].shape != expected[k].shape)
    if missing or unexpected or wrong:
        parts = []
        for label, items in (("missing keys", missing), ("unexpected keys", unexpected), ("shape mismatches", wrong)):
            if items:
                parts.append(f"{label} ({len(items)}): " + ", ".join(items[:5]) + (" ..." if len(items) > 5 else ""))
        hint = ""
        if ckpt["config"] is None and config is None:
            fits = _fitting_archs(state)
            hint = f" (it fits --arch {fits[0]})" if fits else ""
        raise ConfigError(f"{path} does not fit this SAMIC configuration{hint}: " + "; ".join(parts))
    try:
        if all(k in state for k in dynamic):
            model.load_state_dict(dict(state))
        else:
            # No (or partial) CDF tables: load the weights with the fresh model's empty tables,
            # then compute them (on CPU, see SAMIC.update).
            state = {k: v for k, v in state.items() if k not in dynamic}
            state.update({k: expected[k] for k in dynamic})
            model.load_state_dict(state)
            model.update(force=True)
    except (RuntimeError, ValueError) as exc:  # e.g. a dtype that cannot be copied
        raise ConfigError(f"{path}: cannot load its weights ({str(exc).splitlines()[0]})") from None
    return model.eval()


__all__ = ["SAMIC", "default_model", "weights_digest", "load_checkpoint", "read_checkpoint", "resolve_config",
           "STATE_DICT_KEYS", "DEFAULT_SEED"]
