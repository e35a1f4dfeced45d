"""The one home of the hardware constants, the floor and the targets that benchmarks and the
static report share.

The targets (fp32, batch 1, N=16, H100) are stated for an H100 SXM5 80 GB (HBM3):

- the fused SASS op (gather + scan + scatter) within :data:`TARGET_FLOOR_FACTOR` x
  ``max(floor, TARGET_MIN_US)``, at every benchmark shape;
- no slower than mamba-ssm's CUDA ``selective_scan_fn`` on pre-permuted inputs;
- at least :data:`TARGET_REF_SPEEDUP` x the reference path on the same GPU;
- the whole network at 768x512 within :data:`TARGET_ENC_MS` / :data:`TARGET_DEC_MS`, and at
  3840x2160 within :data:`TARGET_4K_MS` each way. Measured (``samic-fast bench``), that is the
  codec's ``compress`` / ``decompress`` at batch 1, entropy coding included, as the paper's
  Enc/Dec times are read; the static prediction (:mod:`samic_fast.bench.network_model`) covers
  their GPU work only (the rANS coding runs on the CPU), so it is a lower bound of the measured
  time.

The floor of a scan is the larger of its ideal HBM bytes over :attr:`GPU.hbm_bytes_per_s` and its
exponentials over the chip's special-function (MUFU) rate.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class GPU:
    """What the static model and the floor assume about the chip."""

    name: str
    sms: int
    schedulers_per_sm: int  # warp schedulers (SM sub-partitions); each issues 1 instruction/clock
    clock_hz: float
    hbm_bytes_per_s: float
    mufu_lanes_per_sm: int  # special-function lanes per SM per clock (16 on Hopper: 4 per quadrant)
    max_warps_per_sm: int
    max_blocks_per_sm: int
    registers_per_sm: int
    shared_bytes_per_sm: int
    launch_us: float  # cost of one more kernel in a stream of back-to-back launches
    pdl_launch_us: float  # the same for a programmatic dependent launch (sm_90+)
    fp32_flops_per_sm_clock: int = 256  # 128 FP32 lanes x 2 (fused multiply-add), no tensor cores
    tf32_flops_per_sm_clock: int = 2048  # dense TF32 on the tensor cores

    @property
    def mufu_per_s(self) -> float:
        return self.sms * self.mufu_lanes_per_sm * self.clock_hz

    @property
    def fp32_flops_per_s(self) -> float:
        return self.sms * self.fp32_flops_per_sm_clock * self.clock_hz

    @property
    def tf32_flops_per_s(self) -> float:
        return self.sms * self.tf32_flops_per_sm_clock * self.clock_hz


#: H100 SXM5. 132 SMs and ~3.0 TB/s device-to-device copy (bytes read + written) were measured on
#: this workplace's H100 (device/KINDS.md, 2026-11-13). The clock is the sustained boost under
#: load assumed by the targets, 1.755 GHz (the SXM5 part peaks at 1.98 GHz, so this errs slow).
#: The launch costs are leads, not measurements here: 2 us a kernel behind a running one, and half
#: that for a programmatic dependent launch, which is launched while its predecessor runs and only
#: waits for its completion signal and memory flush (bench/calibrate.py measures both, and
#: bench/pdl_ab.py times the fused op both ways). FLOP rates per SM and clock from NVIDIA's
#: H100 SXM5 datasheet: 67 TFLOPS FP32 (non-tensor) = 132 x 256 x 1.98 GHz, 494.7 TFLOPS dense
#: TF32 = 132 x 2048 x 1.83 GHz; at this clock 59.3 and 474 TFLOPS.
H100 = GPU(
    name="H100 SXM5 (static model)",
    sms=132,
    schedulers_per_sm=4,
    clock_hz=1.755e9,
    hbm_bytes_per_s=3.0e12,
    mufu_lanes_per_sm=16,
    max_warps_per_sm=64,
    max_blocks_per_sm=32,
    registers_per_sm=65536,
    shared_bytes_per_sm=228 * 1024,
    launch_us=2.0,
    pdl_launch_us=1.0,
)

#: Per-kernel cost of a whole network run op by op in PyTorch eager mode (the network model of
#: bench/network_model.py): the CPU side of one ATen op (Python, dispatcher, cudaLaunchKernel) is
#: commonly 3-5 us, so a batch-1 stream of small kernels is host-bound; an assumption to measure.
EAGER_LAUNCH_US = 4.0
#: The same kernels replayed as one CUDA graph: ~1 us from one kernel's end to the next's start.
GRAPH_LAUNCH_US = 1.0

TARGET_FLOOR_FACTOR = 2.0
TARGET_MIN_US = 5.0
TARGET_REF_SPEEDUP = 3.0
TARGET_ENC_MS = 11.0
TARGET_DEC_MS = 8.0
TARGET_4K_MS = 190.0


def scan_exponentials(batch: int, seqlen: int, dim: int, nstate: int) -> int:
    """Exponentials one scan must evaluate: ``exp(delta * A)`` per (token, channel, state) and
    the softplus's ``exp`` per (token, channel)."""
    return batch * seqlen * dim * (nstate + 1)


def floor_us(nbytes: int, exponentials: int, gpu: GPU = H100) -> tuple[float, str]:
    """The floor in microseconds and which term sets it (``"bytes"`` or ``"exp"``)."""
    t_bytes = nbytes / gpu.hbm_bytes_per_s * 1e6
    t_exp = exponentials / gpu.mufu_per_s * 1e6
    return (t_bytes, "bytes") if t_bytes >= t_exp else (t_exp, "exp")


def fused_target_us(floor: float) -> float:
    """The fused op's time target for a shape whose floor is ``floor`` microseconds."""
    return TARGET_FLOOR_FACTOR * max(floor, TARGET_MIN_US)


__all__ = ["GPU", "H100", "scan_exponentials", "floor_us", "fused_target_us", "TARGET_FLOOR_FACTOR",
           "TARGET_MIN_US", "TARGET_REF_SPEEDUP", "EAGER_LAUNCH_US", "GRAPH_LAUNCH_US", "TARGET_ENC_MS", "TARGET_DEC_MS", "TARGET_4K_MS"]
