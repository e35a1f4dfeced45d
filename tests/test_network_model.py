"""The whole-network model of the static report (bench/network_model.py), on the meta device:
the arithmetic (sum of parts, launch counts, encode/decode split) on the tiny architecture at a
small image, with the fused scan's prediction given as a parameter (nothing is compiled)."""

import math

import pytest
import torch

from samic_fast.bench import network_model as nm
from samic_fast.bench.hardware import H100
from samic_fast.complexity import meta_forward
from samic_fast.config import get_config

SIZE = (128, 192)  # (height, width): multiples of 64, small


@pytest.fixture(scope="module")
def tiny_ops():
    return nm.walk(get_config("tiny"), *SIZE, lambda L, D, N: (7.0, 3))


def test_every_sass_call_is_three_stages_with_their_launches(tiny_ops):
    _, calls = meta_forward(get_config("tiny"), *SIZE)
    for kind, launches in (("sass_scan", 3), ("cluster_assign", nm.CLUSTER_ASSIGN_LAUNCHES),
                           ("scan_order", nm.SCAN_ORDER_LAUNCHES)):
        got = [op for op in tiny_ops if op.kind == kind]
        assert len(got) == len(calls) > 0, kind
        assert all(op.launches == launches for op in got)
    assert {op.part for op in tiny_ops} == set(nm.PARTS)
    assert sum(op.kind == "svd" for op in tiny_ops) == 1 and all(
        op.part == "svd_rrm" for op in tiny_ops if op.kind == "svd")


def test_directions_are_the_sum_of_their_parts(tiny_ops):
    for launch_us in (0.0, 4.0):
        enc = nm.summarize(tiny_ops, "encode", launch_us=launch_us)
        dec = nm.summarize(tiny_ops, "decode", launch_us=launch_us)
        assert set(enc["by_part_ms"]) == {"g_a", "svd_rrm", "h_a", "h_s", "context"}
        assert set(dec["by_part_ms"]) == {"h_s", "context", "g_s"}
        for s in (enc, dec):
            assert math.isclose(s["ms"], sum(s["by_part_ms"].values()), rel_tol=1e-12)
            assert math.isclose(s["ms"], sum(s["by_kind_ms"].values()), rel_tol=1e-12)
        for part in ("h_s", "context"):  # the same work in both directions
            assert enc["by_part_ms"][part] == dec["by_part_ms"][part] > 0
        want = sum(op.launches for op in tiny_ops if op.part in nm.DIRECTIONS["encode"])
        assert enc["launches"] == want
    # Launch cost is linear in the launch count.
    e0 = nm.summarize(tiny_ops, "encode", launch_us=0.0)
    e1 = nm.summarize(tiny_ops, "encode", launch_us=1.0)
    assert math.isclose(e1["ms"] - e0["ms"], e1["launches"] * 1e-3, rel_tol=1e-9)


def test_the_fused_scan_prediction_is_used_once_per_call():
    cfg = get_config("tiny")
    base = nm.walk(cfg, *SIZE, lambda L, D, N: (7.0, 3))
    slower = nm.walk(cfg, *SIZE, lambda L, D, N: (107.0, 3))
    for direction, parts in nm.DIRECTIONS.items():
        calls = sum(op.kind == "sass_scan" and op.part in parts for op in base)
        diff = nm.summarize(slower, direction)["ms"] - nm.summarize(base, direction)["ms"]
        assert math.isclose(diff, calls * 100.0 / 1e3, rel_tol=1e-9)


def test_roofline_precision_and_svd_floor():
    conv = nm.Op("g_a", "convolution", "conv", flops=1e9, nbytes=1e3)
    assert math.isclose(conv.time_us("fp32", 0.0), 1e9 / H100.fp32_flops_per_s * 1e6)
    assert math.isclose(conv.time_us("as_coded", 2.0), 1e9 / H100.tf32_flops_per_s * 1e6 + 2.0)
    ctx = nm.Op("context", "convolution", "conv", flops=1e9, nbytes=1e3)
    assert ctx.time_us("as_coded", 0.0) == conv.time_us("fp32", 0.0)  # TF32 off while coding
    mm = nm.Op("g_a", "mm", "matmul", flops=1e9)
    assert mm.time_us("as_coded", 0.0) == mm.time_us("fp32", 0.0) > mm.time_us("tf32", 0.0)
    copy = nm.Op("g_s", "clone", "other", nbytes=3e9)
    assert math.isclose(copy.time_us("fp32", 0.0), 1e3)  # 3 GB at 3 TB/s
    svd = nm.Op("svd_rrm", "_linalg_svd", "svd", flops=1.0, serial_us=50.0)
    assert svd.time_us("fp32", 1.0) == 51.0


def test_recorder_counts_a_convolution_and_skips_views():
    rec = nm.OpRecorder()
    conv = torch.nn.Conv2d(4, 8, 3, padding=1, device="meta")
    with torch.no_grad(), rec:
        x = torch.empty(1, 4, 16, 16, device="meta")
        conv(x).reshape(8, 256).t()
    (op,) = rec.ops
    assert op.kind == "conv" and op.flops == 2 * 8 * 256 * 4 * 9
    assert op.nbytes == 4 * (4 * 256 + 8 * 4 * 9 + 8 + 8 * 256)


def test_predict_network_rows():
    rows = nm.predict_network(get_config("tiny"), "tiny", lambda L, D, N: (7.0, 3), sizes={"t": SIZE})
    assert [r["direction"] for r in rows] == ["encode", "decode"]
    for r in rows:
        assert r["target_ms"] is None and r["met"] is None
        assert r["predicted_ms"] == r["variants_ms"]["as_coded/eager"]
        assert r["variants_ms"]["as_coded/graph"] < r["predicted_ms"]
        assert math.isclose(sum(r["breakdown"]["by_part_ms"].values()), r["predicted_ms"], abs_tol=0.01)


def test_recorder_follows_cuda_layouts():
    """A convolution of a channels_last input returns channels_last (cuDNN), and layer_norm of a
    non-contiguous input records the copy its CUDA kernel makes."""
    rec = nm.OpRecorder()
    conv = torch.nn.Conv2d(4, 4, 3, padding=1, groups=4, device="meta")
    norm = torch.nn.LayerNorm(4, device="meta")
    with torch.no_grad(), rec:
        x = torch.empty(1, 5, 6, 4, device="meta")
        y = conv(x.permute(0, 3, 1, 2))
        assert y.is_contiguous(memory_format=torch.channels_last) and not y.is_contiguous()
        norm(y.permute(0, 2, 3, 1))  # contiguous channel-last view: no copy
        norm(y.contiguous().permute(0, 2, 3, 1))
    assert [op.name for op in rec.ops] == ["convolution", "native_layer_norm", "clone",
                                           "native_layer_norm (input copy)", "native_layer_norm"]


def test_steady_state_samb_launches():
    """One SAMB of the tiny architecture in eval, steady state: its kernels, in order (the
    positional tables and A = -exp(A_log) are cached, no layout copies inside the block)."""
    ops = nm.walk(get_config("tiny"), *SIZE, lambda L, D, N: (7.0, 3))
    names = [op.name for op in ops if op.part == "g_a"]
    first = names.index("native_layer_norm")
    body = names[first:names.index("add", first) + 1]
    assert body == ["native_layer_norm", "mm", "convolution", "silu_", "mm",
                    "convolution", "silu", "convolution", "silu", "convolution",
                    "cluster_assign", "scan_order", "mm", "mm", body[14], "native_layer_norm", "mm", "add"]
    assert body[14].startswith("sass_scan")


def test_attention_is_one_fused_kernel():
    rec = nm.OpRecorder()
    q = torch.empty(6, 2, 16, 4, device="meta")
    mask = torch.empty(6, 2, 16, 16, device="meta")
    with torch.no_grad(), nm.fused_attention(rec), rec:
        out = torch.nn.functional.scaled_dot_product_attention(q, q, q, attn_mask=mask)
    assert out.shape == q.shape
    (op,) = rec.ops
    assert op.kind == "attention" and op.flops == 4 * 6 * 2 * 16 * 16 * 4
    assert op.nbytes == 4 * (4 * q.numel() + mask.numel())
