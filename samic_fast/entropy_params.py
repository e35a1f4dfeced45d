"""Backend-independent entropy parameters: grid quantization with guard bands (issue 6 item 1).

Why
---
The decoder recomputes the Gaussian parameters ``(μ, σ)`` of every latent from already decoded
data. Two backends (the PyTorch reference and the fused Triton path, or a GPU and a CPU) compute
them with different float rounding, so a value that lies next to a decision boundary can land on
the other side at the decoder: the scale index changes (the rANS decoder then reads garbage, the
failure CompressAI users report for GPU-encoded files decoded elsewhere) or the mean changes
(``ŷ = symbol + μ`` differs and the error propagates through every later context).

Three quantities are discontinuous functions of floats on the decoder's parameter path:

1. the **mean**, quantized to the grid ``μ_q = round(μ·G) / G`` (``G = mean_grid``, a power of two
   so that ``ŷ = symbol + μ_q`` is exact in float32); boundaries at ``(k + ½) / G``;
2. the **scale index** into the table ``t_0 < … < t_{T-1}`` (CompressAI's ``build_indexes``:
   ``index = #{k ≤ T-2 : t_k < σ}``), decided in log space, boundaries at ``log t_k``;
3. the **SASS cluster** of every pixel inside the SAMBs of h_s and of the context model: an argmax
   of the cosine scores (Eq. 3), which decides the scan order.

Guarantee
---------
The encoder computes each quantity, and *flags* every element whose value lies within ``ε`` of a
boundary (``mean_eps`` in μ units, ``log_scale_eps`` in log σ, ``cluster_eps`` in score units
for the top-2 margin). For flagged elements it writes its decision to a side-information string
(positions as Golomb–Rice-coded gaps, one bit for a mean or scale — which side of the
boundary — and the cluster id for a cluster; see :class:`ParamGuard`). The decoder uses the side
information at those positions and its own computation elsewhere. If the decoder's value differs
from the encoder's by less than ``ε`` (less than ``ε/2`` per score for clusters), every unflagged element is at least ``ε`` from a
boundary at the encoder, so the decoder's value falls in the same cell: both sides take the same
decisions everywhere, by induction over the decoding order (h_s, then slice by slice, anchor then
non-anchor), because every decision only depends on exact inputs (``ẑ``, earlier ``ŷ``) and on
previous decisions. Hence the decoded ``ŷ`` is bit-identical.

Calibration (default model, CPU): the float32 parameters differ from a float64 evaluation by at
most ~6e-6 (μ and log σ) and ~8e-7 (scores); reference vs Triton (interpreter, tiny config) by
~7e-7. Two float32 backends thus differ by at most ~1.2e-5 (each one's error added): with
``ε = 1.25e-4`` (``2e-4`` for scores, 125× the score error) that is a margin of ≥ 10×.
TF32 is switched off while coding (its ~1e-3 error would not be). Cost (untrained default
model, astronaut 512×512): 0.2 % of the coded means and scales flagged, ~12 bits each, 1.2 kB
of side information (0.037 bpp), 1.8 % of the file. The cost scales with the number of latent
elements, not with the rate, so it weighs more at low bitrates.

Limits: (a) the backends' difference must stay below ``ε`` (tests check the float64 margin);
(b) weights and the integer CDF tables must be identical (checked with :func:`samic_fast.model.weights_digest`;
the tables are computed on CPU); (c) a non-finite parameter breaks the argument (it raises instead).
The reconstruction ``x̂ = g_s(ŷ)`` itself is a float computation and may differ at rounding level.
"""

from __future__ import annotations

import math
from typing import Optional

import numpy as np
import torch

from samic_fast.errors import CorruptBitstreamError

SIDE_INFO_VERSION = 1
KIND_MEAN, KIND_SCALE, KIND_CLUSTER = 0, 1, 2
_KIND_NAMES = {KIND_MEAN: "mean", KIND_SCALE: "scale", KIND_CLUSTER: "cluster"}


def log_scale_boundaries(scale_min: float, scale_max: float, levels: int) -> torch.Tensor:
    """``log t_k`` for ``k = 0..T-2`` in float64: the decision boundaries of the scale index.

    The table is CompressAI's ``get_scale_table`` (``exp(linspace(log min, log max, T))``); its
    last entry is not a boundary (every larger σ maps to ``T-1``).
    """
    table = torch.exp(torch.linspace(math.log(scale_min), math.log(scale_max), levels))
    return torch.log(table.double())[:-1]


def scale_table(scale_min: float, scale_max: float, levels: int) -> torch.Tensor:
    """The float32 scale table handed to CompressAI's ``GaussianConditional``."""
    return torch.exp(torch.linspace(math.log(scale_min), math.log(scale_max), levels))


# ---------------------------------------------------------------- plain (unguarded) decisions
def quantize_mean(mu: torch.Tensor, grid: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(q, dist)``: grid index ``q = floor(μ·G + ½)`` (int64) and the distance of ``μ`` to the
    nearest rounding boundary ``(k + ½)/G`` in μ units. Computed in float64."""
    v = mu.double() * grid
    q = torch.floor(v + 0.5)
    dist = (0.5 - (v - q).abs()) / grid
    return q.to(torch.int64), dist


def scale_index(log_sigma: torch.Tensor, boundaries: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(index, dist)``: ``index = #{k : b_k < log σ}`` (CompressAI's rule; int64) and the
    distance of ``log σ`` to the nearest boundary ``b_k``. Computed in float64."""
    ls = log_sigma.double().contiguous()
    b = boundaries.to(ls.device)
    idx = torch.searchsorted(b, ls, right=False)  # number of b_k < ls
    lo = b[(idx - 1).clamp(0, b.numel() - 1)]
    hi = b[idx.clamp(0, b.numel() - 1)]
    dist = torch.minimum((ls - lo).abs(), (hi - ls).abs())
    return idx, dist


def cluster_margin(scores: torch.Tensor) -> torch.Tensor:
    """Top-2 margin ``s_(1) - s_(2)`` of ``(B, L, K)`` scores (``inf`` when ``K = 1``)."""
    if scores.shape[-1] < 2:
        return torch.full(scores.shape[:-1], float("inf"), dtype=scores.dtype, device=scores.device)
    top = scores.topk(2, dim=-1).values
    return top[..., 0] - top[..., 1]


# ---------------------------------------------------------------- side-information coding
class BitWriter:
    """MSB-first bit writer with the two codes the side information uses."""

    def __init__(self) -> None:
        self.bits: list[int] = []

    def put(self, value: int, width: int) -> None:
        self.bits.extend((value >> (width - 1 - i)) & 1 for i in range(width))

    def gamma(self, n: int) -> None:
        """Elias gamma code of ``n >= 1``: ``len-1`` zeros, then ``n`` in ``len`` bits."""
        length = n.bit_length()
        self.bits.extend([0] * (length - 1))
        self.put(n, length)

    def rice(self, n: int, k: int) -> None:
        """Golomb–Rice code of ``n >= 0``: ``n >> k`` ones, a zero, the low ``k`` bits."""
        self.bits.extend([1] * (n >> k))
        self.bits.append(0)
        if k:
            self.put(n & ((1 << k) - 1), k)

    def to_bytes(self) -> bytes:
        return np.packbits(np.asarray(self.bits, dtype=np.uint8)).tobytes() if self.bits else b""


class BitReader:
    def __init__(self, data: bytes) -> None:
        self.bits = np.unpackbits(np.frombuffer(data, dtype=np.uint8)).tolist()
        self.pos = 0

    def bit(self) -> int:
        if self.pos >= len(self.bits):
            raise CorruptBitstreamError("side information ends early")
        b = self.bits[self.pos]
        self.pos += 1
        return b

    def get(self, width: int) -> int:
        v = 0
        for _ in range(width):
            v = (v << 1) | self.bit()
        return v

    def gamma(self) -> int:
        zeros = 0
        while self.bit() == 0:
            zeros += 1
            if zeros > 40:
                raise CorruptBitstreamError("side information holds an oversized count")
        return (1 << zeros) | self.get(zeros)

    def rice(self, k: int) -> int:
        q = 0
        while self.bit() == 1:
            q += 1
            if q > 1 << 24:
                raise CorruptBitstreamError("side information holds an oversized gap")
        return (q << k) | self.get(k)


_CLUSTER_BITS = 6  # K <= 64 (samic_fast._validate.MAX_CLUSTERS)


class ParamGuard:
    """Records (encoder) or replays (decoder) the guarded decisions, in decoding order.

    ``ParamGuard.recorder(config)`` on the encoder, ``ParamGuard.replayer(config, side)`` on the
    decoder. Each call of :meth:`mean`, :meth:`scale` or :meth:`cluster` is one *site*; encoder and
    decoder call them in the same order with the same sizes, so the decoder reads the i-th site's
    entries at its i-th call. With ``enabled=False`` (the perturbation tests' control) nothing is
    flagged.

    Side-information format (after a version byte; bits MSB first): per site the Elias-gamma code
    of ``count + 1``; if ``count > 0`` a 5-bit Rice parameter ``k``, the ``count`` gaps between
    flagged positions (indices among the site's coded elements) Rice-coded, then the values: one
    bit each for means and scales, 6 bits each for clusters. Positions cost about
    ``log2(1/p) + 1.5`` bits at a flag density ``p``.
    """

    def __init__(self, mean_grid: int, mean_eps: float, log_scale_eps: float, cluster_eps: float,
                 boundaries: torch.Tensor, side: Optional[bytes] = None, enabled: bool = True) -> None:
        self.mean_grid = int(mean_grid)
        self.mean_eps, self.log_scale_eps, self.cluster_eps = mean_eps, log_scale_eps, cluster_eps
        self.boundaries = boundaries
        self.enabled = enabled
        self.recording = side is None
        self._writer = BitWriter() if side is None else None
        self._reader = None
        if side is not None:
            if not side or side[0] != SIDE_INFO_VERSION:
                raise CorruptBitstreamError("unknown side-information version")
            self._reader = BitReader(side[1:])
        self.sites = 0
        # Statistics for reports and tests: coded (checked) and flagged elements per kind.
        self.checked = {k: 0 for k in _KIND_NAMES}
        self.flagged = {k: 0 for k in _KIND_NAMES}

    @classmethod
    def recorder(cls, config, enabled: bool = True) -> "ParamGuard":
        return cls(config.mean_grid, config.mean_eps, config.log_scale_eps, config.cluster_eps,
                   log_scale_boundaries(config.scale_min, config.scale_max, config.scale_levels),
                   enabled=enabled)

    @classmethod
    def replayer(cls, config, side: bytes) -> "ParamGuard":
        return cls(config.mean_grid, config.mean_eps, config.log_scale_eps, config.cluster_eps,
                   log_scale_boundaries(config.scale_min, config.scale_max, config.scale_levels),
                   side=side)

    # ------------------------------------------------------------ sites
    def _write_site(self, kind: int, positions: np.ndarray, values: np.ndarray, n_coded: int) -> None:
        w = self._writer
        count = int(positions.size)
        w.gamma(count + 1)
        if not count:
            return
        mean_gap = max(n_coded / count - 1.0, 1.0)
        k = min(31, max(0, int(math.log2(mean_gap * math.log(2)))))
        w.put(k, 5)
        prev = -1
        for p in positions.tolist():
            w.rice(p - prev - 1, k)
            prev = p
        width = _CLUSTER_BITS if kind == KIND_CLUSTER else 1
        for v in values.tolist():
            w.put(int(v), width)

    def _read_site(self, kind: int, n_coded: int) -> tuple[np.ndarray, np.ndarray]:
        r = self._reader
        count = r.gamma() - 1
        if count > n_coded:
            raise CorruptBitstreamError("side information flags more elements than exist")
        if not count:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        k = r.get(5)
        positions = np.empty(count, dtype=np.int64)
        prev = -1
        for i in range(count):
            prev = prev + r.rice(k) + 1
            positions[i] = prev
        if prev >= n_coded:
            raise CorruptBitstreamError("side information position out of range")
        width = _CLUSTER_BITS if kind == KIND_CLUSTER else 1
        values = np.array([r.get(width) for _ in range(count)], dtype=np.int64)
        return positions, values

    def _site(self, kind: int, flag: Optional[torch.Tensor], value: torch.Tensor,
              mask: Optional[torch.Tensor]) -> torch.Tensor:
        """Flat indices (into the site's tensor) of the flagged elements, and their values.

        ``flag``/``value`` are flat over the whole tensor; ``mask`` (flat bool or None) selects
        the coded elements. Positions are stored as indices among the coded elements.
        """
        coded = None if mask is None else torch.nonzero(mask).flatten()
        n_coded = value.numel() if coded is None else int(coded.numel())
        self.checked[kind] += n_coded
        if self.recording:
            if flag is None or not self.enabled:
                pos = np.zeros(0, dtype=np.int64)
            else:
                f = flag if coded is None else flag[coded]
                pos = torch.nonzero(f).flatten().cpu().numpy().astype(np.int64)
            idx = torch.as_tensor(pos, device=value.device)
            flat_idx = idx if coded is None else coded[idx]
            val = value[flat_idx].cpu().numpy().astype(np.int64)
            self._write_site(kind, pos, val, n_coded)
        else:
            pos, val = self._read_site(kind, n_coded)
            idx = torch.as_tensor(pos, device=value.device)
            flat_idx = idx if coded is None else coded[idx]
        self.sites += 1
        self.flagged[kind] += int(pos.size)
        return flat_idx, torch.as_tensor(val, device=value.device)

    @staticmethod
    def _flat_mask(mask: Optional[torch.Tensor], like: torch.Tensor) -> Optional[torch.Tensor]:
        return None if mask is None else mask.expand_as(like).flatten()

    def mean(self, mu: torch.Tensor, mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Grid-quantized means ``μ_q`` (float32, exact multiples of ``1/G``), guarded.

        ``mask`` (bool, broadcastable to ``mu``) selects the elements coded at this step; the rest
        are neither flagged nor used. Side value: 1 when the encoder rounded up at the boundary.
        """
        q, dist = quantize_mean(mu, self.mean_grid)
        base = torch.floor(mu.double().flatten() * self.mean_grid).to(torch.int64)
        q_flat = q.flatten()
        flag = (dist < self.mean_eps).flatten()
        idx, val = self._site(KIND_MEAN, flag, q_flat - base, self._flat_mask(mask, mu))
        if idx.numel():
            q_flat = q_flat.clone()
            # The boundary next to a flagged value is base + 1/2: the bit says which side.
            q_flat[idx] = base[idx] + val
        return (q_flat.double() / self.mean_grid).to(torch.float32).view_as(mu)

    def scale(self, log_sigma: torch.Tensor, mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Scale-table indices (int32, CompressAI's convention), guarded. Side value: 1 when the
        encoder's log σ was above the nearest boundary."""
        idx, dist = scale_index(log_sigma, self.boundaries)
        b = self.boundaries.to(log_sigma.device)
        ls = log_sigma.double().flatten()
        idx_flat = idx.flatten()
        # Nearest boundary: the one below (idx - 1) or above (idx) log σ, whichever is closer.
        below, above = (idx_flat - 1).clamp(0, b.numel() - 1), idx_flat.clamp(0, b.numel() - 1)
        nearest = torch.where((ls - b[below]).abs() <= (b[above] - ls).abs(), below, above)
        flag = (dist < self.log_scale_eps).flatten()
        pos, val = self._site(KIND_SCALE, flag, idx_flat - nearest, self._flat_mask(mask, log_sigma))
        if pos.numel():
            idx_flat = idx_flat.clone()
            idx_flat[pos] = nearest[pos] + val
        return idx_flat.view_as(log_sigma).to(torch.int32)

    def cluster(self, feat: torch.Tensor, centers: torch.Tensor, tau, cluster: torch.Tensor) -> torch.Tensor:
        """Guarded hard assignment ``(B, L)`` of one SASS call.

        The encoder flags pixels whose top-2 score margin (Eq. 3, recomputed in float64 by the
        reference) is below ``cluster_eps`` and records its own cluster there; the decoder
        overrides its clusters at the recorded pixels.
        """
        flag = None
        if self.recording and self.enabled:
            from samic_fast import ref

            tau64 = tau.double() if isinstance(tau, torch.Tensor) else float(tau)
            scores = ref.cluster_scores_ref(feat.double(), centers.double(), tau64)
            flag = (cluster_margin(scores) < self.cluster_eps).flatten()
        flat = cluster.flatten().long()
        pos, val = self._site(KIND_CLUSTER, flag, flat, None)
        if not pos.numel():
            return cluster
        if int(val.max()) >= centers.shape[0]:
            raise CorruptBitstreamError("side information names a cluster that does not exist")
        out = flat.clone()
        out[pos] = val
        return out.view_as(cluster).to(cluster.dtype)

    # ------------------------------------------------------------ (de)serialisation
    def finish(self) -> None:
        """Decoder: the side information must be used up (only zero padding bits may remain)."""
        if not self.recording:
            r = self._reader
            rest = r.bits[r.pos:]
            if len(rest) >= 8 or any(rest):
                raise CorruptBitstreamError("side information has trailing data")

    def to_bytes(self) -> bytes:
        """The side-information string: version byte and the bit stream (see the class doc)."""
        return bytes([SIDE_INFO_VERSION]) + self._writer.to_bytes()

    def stats(self) -> dict:
        """Checked and flagged element counts per kind (for reports and tests)."""
        return {
            _KIND_NAMES[k]: {"checked": self.checked[k], "flagged": self.flagged[k]} for k in _KIND_NAMES
        }
