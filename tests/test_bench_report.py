"""The benchmark report code runs and produces well-formed tables (tiny shapes, CPU, seconds).

Nothing here checks speed: timings on a shared machine are not test material. It checks that
the report's structure is right, its numbers are finite, and the target logic says met/missed
correctly on synthetic inputs.
"""

from __future__ import annotations

import dataclasses
import io
import json
import math
import sys
import types

import pytest
import torch

from samic_fast.bench import report
from samic_fast.bench.providers import build, scan_blocks, Unavailable
from samic_fast.bench.shapes import SHAPES, TINY, bytes_moved, get_shape, make_inputs, reduced

KERNEL_OPS = ["cluster_assign", "scan_order", "selective_scan", "sass_scan"]


def _table_rows(text: str) -> list[list[str]]:
    return [[c.strip() for c in line.strip().strip("|").split("|")]
            for line in text.splitlines() if line.startswith("|")]


def test_design_floor_bytes_s1():
    # docs/design.md §3: about 315 MB for the fused SASS scan at s1 in fp32.
    assert bytes_moved("sass_scan", SHAPES["s1"]) == pytest.approx(315e6, rel=0.01)
    assert bytes_moved("sass", SHAPES["s1"]) is None


def test_shape_names_round_trip():
    s = reduced(SHAPES["s1"], 2)
    assert s.name == "s1/4" and s.seqlen == SHAPES["s1"].seqlen // 4
    assert get_shape("s1/4") == s and get_shape("tiny") == TINY
    with pytest.raises(ValueError):
        get_shape("s9")


def test_unavailable_providers_give_reasons():
    inputs = make_inputs(TINY, "cpu")
    with pytest.raises(Unavailable, match="mamba-ssm has no"):
        build("cluster_assign", "mamba_cuda", inputs)
    if not torch.cuda.is_available():
        with pytest.raises(Unavailable, match="GPU"):
            build("selective_scan", "mamba_cuda", inputs)
    # The big-shape guards are computed, not run: s1 has hundreds of reference-scan blocks.
    assert scan_blocks(SHAPES["s1"]) > 12


def test_kernel_report_tiny_cpu():
    plan = report.Plan("cpu", [TINY], ops=KERNEL_OPS, providers=["reference", "mamba_cuda"],
                       budget_s=0.0, min_reps=2, max_reps=2, model=False, copy_bytes=8 << 20)
    buf = io.StringIO()
    res = report.run_device(plan, buf)
    text = buf.getvalue()
    for needle in ("## CPU", "torch " + torch.__version__, "### (a) kernels", "tiny (16x16",
                   "### (b) network", "### (c) targets"):
        assert needle in text
    rows = _table_rows(text)
    assert all(len(r) == len(rows[0]) for r in rows if len(r) == 10)  # kernel table is rectangular
    assert res["copy_gbps"] > 0 and math.isfinite(res["copy_gbps"])

    ref_rows = [r for r in res["kernels"] if r["provider"] == "reference"]
    assert {r["op"] for r in ref_rows} == set(KERNEL_OPS)
    for r in ref_rows:
        assert r["median_ms"] > 0 and math.isfinite(r["median_ms"])
        assert r["gbps"] > 0 and math.isfinite(r["gbps"]) and math.isfinite(r["pct_copy"])
        assert r["speedup_ref"] == pytest.approx(1.0)
        assert r["reps"] == 2
    mamba = [r for r in res["kernels"] if r["provider"] == "mamba_cuda"]
    assert all(r["median_ms"] is None and r["reason"] for r in mamba)
    # Targets are always listed; triton and the network did not run, so none claims to be met:
    # the fused op, then encoder and decoder at 768x512 and 3840x2160.
    assert len(res["targets"]) == 5
    assert all(t["status"].startswith("not measured") for t in res["targets"])
    # The static report's layout, with measured_us / mamba_cuda_us (None here: not run).
    (entry,) = res["shapes"]
    assert (entry["name"], entry["L"], entry["D"], entry["N"]) == ("tiny", 256, 32, 16)
    assert entry["floor_us"] > 0 and entry["measured_us"] is None and entry["mamba_cuda_us"] is None
    assert entry["reference_us"] > 0
    json.dumps(res)  # the --json output is serialisable


def test_every_ratio_from_one_group_and_the_measured_layout():
    shape = TINY
    floor_ms = report.scan_floor_ms("sass_scan", shape)
    group = [report.KernelResult("sass_scan", "tiny", p, median_ms=ms)
             for p, ms in (("reference", 8.0), ("triton", 1.0), ("compile", 4.0), ("mamba_cuda", 2.0))]
    report._fill_speedups(group, floor_ms)
    tri = group[1]
    assert tri.x_floor == pytest.approx(1.0 / floor_ms)
    assert (tri.speedup_ref, tri.speedup_compile, tri.speedup_mamba) == (8.0, 4.0, 2.0)
    assert tri.mamba_provider == "mamba_cuda"
    static = {"shapes": [{"name": "tiny", "L": 256, "D": 32, "N": 16, "predicted_us": 500.0,
                          "kernels": [{"name": "_k", "registers": 40}]}]}
    (entry,) = report.measured_layout(group, [shape], static)
    assert entry["measured_us"] == 1000.0 and entry["mamba_cuda_us"] == 2000.0
    assert entry["predicted_us"] == 500.0 and entry["measured_over_predicted"] == 2.0
    assert entry["kernels"][0]["registers"] == 40
    assert "measured/predicted" in report.format_measured_vs_predicted([entry])
    targets = report.evaluate_targets("cuda", "NVIDIA H100 80GB HBM3", group, [], 3e12, [shape])
    by = {t.name: t for t in targets}
    # 1 ms against a goal of 2 x max(floor, 5 us) = 10 us: missed; faster than mamba (2 ms): met.
    assert by["fused SASS op at tiny vs floor"].status.startswith("missed")
    assert by["fused SASS op at tiny vs mamba-ssm CUDA (pre-permuted, scan alone)"].status == "met"
    assert by["fused SASS op at tiny vs reference"].status == "met"


class _FakeModel(torch.nn.Module):
    """The codec model's benchmarked interface, in miniature."""

    def __init__(self, k: int) -> None:
        super().__init__()
        self.k = k
        self.g_a = torch.nn.Conv2d(3, 8, 4, stride=4)
        self.g_s = torch.nn.ConvTranspose2d(8, 3, 4, stride=4)

    def compress(self, x):
        y = torch.round(self.g_a(x))
        return {"strings": [[y.numpy().tobytes()]], "shape": list(y.shape[-2:])}

    def decompress(self, strings, shape):
        y = torch.frombuffer(bytearray(strings[0][0]), dtype=torch.float32).reshape(1, 8, *shape)
        return {"x_hat": self.g_s(y)}


def test_model_table_with_a_stand_in(monkeypatch):
    import samic_fast

    built = []

    def default_model(config=None, backend="auto"):
        k = config.sass.num_clusters
        built.append(k)
        return _FakeModel(k)

    fake = types.ModuleType("samic_fast.model")
    fake.default_model = default_model
    fake_cx = types.ModuleType("samic_fast.complexity")
    fake_cx.model_complexity = lambda model, height, width: {"params_M": 1.5, "flops_G": 2.0, "macs_G": 1.0}
    for name, mod in (("model", fake), ("complexity", fake_cx)):
        monkeypatch.setitem(sys.modules, f"samic_fast.{name}", mod)
        monkeypatch.setattr(samic_fast, name, mod, raising=False)

    plan = report.Plan("cpu", [], model_ks=(4, 16), model_size=(64, 64), model_reps=1, budget_s=0.0)
    rows = report.bench_model(plan)
    assert built == [4, 16]
    for r in rows:
        assert r.reason is None
        for v in (r.enc_net_ms, r.dec_net_ms, r.avg_net_ms, r.enc_full_ms, r.dec_full_ms, r.avg_full_ms):
            assert v is not None and v > 0 and math.isfinite(v)
        assert (r.params_m, r.flops_g, r.macs_g) == (1.5, 2.0, 1.0)
    text = report.format_model_table(rows)
    table = _table_rows(text)
    assert len(table) == 2 + 2 * len(rows)  # header, separator, ours + paper per K
    assert len({len(r) for r in table}) == 1
    assert "22.25" in text  # the paper's K=16 encoder time sits beside ours


def test_config_with_k():
    from samic_fast.config import SAMICConfig

    cfg = report.config_with_k(SAMICConfig(), 4)
    assert cfg.sass.num_clusters == 4

    @dataclasses.dataclass(frozen=True)
    class Flat:
        num_clusters: int = 16

    assert report.config_with_k(Flat(), 8).num_clusters == 8


def test_targets_met_and_missed():
    s1 = SHAPES["s1"]
    nbytes = bytes_moved("sass_scan", s1)
    copy_bps = 3.0e12
    floor_ms = nbytes / copy_bps * 1e3  # the bytes floor; the exp floor is a little higher at s1

    def cell(provider, ms):
        return report.KernelResult("sass_scan", "s1", provider, median_ms=ms, bytes=nbytes,
                                   gbps=nbytes / ms * 1e-6, pct_copy=100 * nbytes / (ms * 1e-3) / copy_bps)

    fast = [cell("triton", 1.5 * floor_ms), cell("reference", 10 * floor_ms)]
    # The targets judge the whole codec (compress / decompress), not g_a / g_s alone.
    model = report.ModelResult(16, 512, 768, "triton", enc_net_ms=1.0, dec_net_ms=1.0,
                               enc_full_ms=10.0, dec_full_ms=9.0)
    t = report.evaluate_targets("cuda", "NVIDIA H100 80GB HBM3", fast, [model], copy_bps)
    status = {x.name: x.status for x in t}
    assert status["fused SASS op at s1 vs floor"] == "met"
    assert status["fused SASS op at s1 vs reference"] == "met"
    assert status["encode, compress() at 768x512, K=16"] == "met"
    assert status["decode, decompress() at 768x512, K=16"].startswith("missed by 1.000 ms")

    slow = [cell("triton", 3 * floor_ms), cell("reference", 6 * floor_ms)]
    t = report.evaluate_targets("cuda", "NVIDIA H100 80GB HBM3", slow, [], copy_bps)
    status = {x.name: x.status for x in t}
    assert status["fused SASS op at s1 vs floor"].startswith("missed by")
    assert status["fused SASS op at s1 vs reference"].startswith("missed: 2.00x")
    assert status["encode, compress() at 768x512, K=16"].startswith("not measured")
    text = report.format_targets(t)
    assert len({len(r) for r in _table_rows(text)}) == 1


def test_cli_bench_json(tmp_path, capsys):
    from samic_fast.cli import main

    out = tmp_path / "bench.json"
    rc = main(["bench", "--device", "cpu", "--shapes", "tiny", "--ops", "scan_order",
               "--providers", "reference", "--no-model", "--quiet", "--json", str(out)])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "scan_order" in printed and "### (c) targets" in printed
    data = json.loads(out.read_text())
    (row,) = data["devices"]["cpu"]["kernels"]
    assert row["provider"] == "reference" and row["median_ms"] > 0
