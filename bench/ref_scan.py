"""Reference-scan benchmark (issue 2 item 5): our vectorised ``selective_scan_ref`` against
mamba-ssm's ``selective_scan_ref``, time and peak memory, on CPU by default.

Run::

    python -m samic_fast.bench.ref_scan                      # L=24,576, D=256, N=16 (shape s2)
    python -m samic_fast.bench.ref_scan --seqlen 6144 --json out.json

Method
------
Each provider runs in fresh Python subprocesses (one for memory, one for time), one after the
other (never concurrently), so neither sees the other's heap or warmed caches.

*Memory*: the child is started with ``MALLOC_MMAP_THRESHOLD_=65536``: every allocation of 64 KiB
or more is an ``mmap`` that goes back to the OS on ``free``, so the resident set tracks live
memory (glibc's default threshold adapts upwards after large frees and would otherwise keep freed
blocks resident). After imports, input creation and a warm-up call on a tiny problem (lazy
initialisation), the child records ``VmRSS``, resets the kernel's high-water mark
(``echo 5 > /proc/self/clear_refs``), makes one call at full size and reads ``VmHWM``.
``peak = VmHWM - VmRSS_before``: the extra memory the call needed at its peak, output included,
inputs excluded. Where ``clear_refs`` is unavailable the child falls back to ``ru_maxrss``.

*Time*: in a second fresh subprocess with the default allocator settings (forcing ``mmap`` for
every block costs page faults on each allocation and would distort the timing): one warm-up call
at full size, then ``--reps`` calls timed with ``perf_counter``; the median is reported (CPU ops
are synchronous; on CUDA the child syncs before reading the clock).

Inputs are each provider's native layout, prepared before measuring: channel-last ``(B, L, D)`` for
ours, ``(B, D, L)`` for mamba-ssm (whose reference also materialises ``(B, D, L, N)`` tensors).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from typing import Optional

import torch

PROVIDERS = ("samic_fast", "mamba_ssm")


def _read_status_kb(field: str) -> Optional[int]:
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def _reset_hwm() -> bool:
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def _inputs(seqlen: int, dim: int, nstate: int, device: str, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    return {
        "x": torch.randn(1, seqlen, dim, generator=g).to(device),
        "dt": (0.1 * torch.randn(1, seqlen, dim, generator=g)).to(device),
        "A": -torch.arange(1, nstate + 1, dtype=torch.float32).repeat(dim, 1).to(device),
        "Bm": torch.randn(1, seqlen, nstate, generator=g).to(device),
        "Cm": torch.randn(1, seqlen, nstate, generator=g).to(device),
        "D": torch.ones(dim, device=device),
        "dt_bias": torch.full((dim,), -4.0, device=device),
    }


def _callable(provider: str, inp: dict):
    if provider == "samic_fast":
        from samic_fast.ref import selective_scan_ref

        return lambda: selective_scan_ref(inp["x"], inp["dt"], inp["A"], inp["Bm"], inp["Cm"],
                                          D=inp["D"], dt_bias=inp["dt_bias"], delta_softplus=True)
    from samic_fast.mamba_ref import load_mamba_selective_scan_ref

    scan = load_mamba_selective_scan_ref()
    if scan is None:
        raise SystemExit("mamba-ssm is not installed")
    tr = lambda t: t.transpose(1, 2).contiguous()  # noqa: E731
    u, delta, bm, cm = tr(inp["x"]), tr(inp["dt"]), tr(inp["Bm"]), tr(inp["Cm"])
    del inp["x"], inp["dt"], inp["Bm"], inp["Cm"]  # keep only the native-layout copies resident
    return lambda: scan(u, delta, inp["A"], bm, cm, D=inp["D"], delta_bias=inp["dt_bias"],
                        delta_softplus=True)


def worker(provider: str, measure: str, seqlen: int, dim: int, nstate: int, reps: int,
           device: str, threads: Optional[int] = None) -> dict:
    """Runs inside a fresh subprocess; ``measure`` is ``"memory"`` or ``"time"``."""
    if threads:
        torch.set_num_threads(threads)
    # Lazy initialisation (einops caches, op registration) on a tiny problem first.
    small = _inputs(64, dim, nstate, device)
    _callable(provider, small)()
    inp = _inputs(seqlen, dim, nstate, device)
    fn = _callable(provider, inp)
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    result: dict = {"provider": provider, "torch_threads": torch.get_num_threads()}

    if measure == "memory":
        if device == "cuda":
            torch.cuda.reset_peak_memory_stats()
            before = torch.cuda.memory_allocated()
            out = fn()
            sync()
            peak_bytes = torch.cuda.max_memory_allocated() - before
            method = "torch.cuda.max_memory_allocated delta"
        else:
            rss_before = _read_status_kb("VmRSS")
            if _reset_hwm() and rss_before is not None:
                out = fn()
                peak_bytes = (_read_status_kb("VmHWM") - rss_before) * 1024
                method = "VmHWM after clear_refs minus VmRSS before"
            else:
                before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
                out = fn()
                peak_bytes = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) * 1024
                method = "ru_maxrss delta (lower bound)"
        del out  # held until the peak was read: the output is part of what a call needs
        result.update(peak_mem_bytes=peak_bytes, mem_method=method)
        return result

    fn()  # warm-up at full size
    sync()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
    result.update(median_s=statistics.median(times), min_s=min(times), max_s=max(times), times_s=times)
    return result


def _spawn(provider: str, measure: str, seqlen: int, dim: int, nstate: int, reps: int,
           device: str, threads: Optional[int] = None) -> dict:
    env = dict(os.environ)
    if measure == "memory":
        env["MALLOC_MMAP_THRESHOLD_"] = "65536"
    cmd = [sys.executable, "-m", "samic_fast.bench.ref_scan", "--worker", provider,
           "--measure", measure, "--seqlen", str(seqlen), "--dim", str(dim),
           "--nstate", str(nstate), "--reps", str(reps), "--device", device]
    if threads:
        cmd += ["--threads", str(threads)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{provider} {measure} worker failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run_provider(provider: str, seqlen: int, dim: int, nstate: int, reps: int, device: str,
                 threads: Optional[int] = None) -> dict:
    """Peak memory and time of ``provider``, each from its own fresh subprocess."""
    result = _spawn(provider, "memory", seqlen, dim, nstate, reps, device, threads)
    result.update(_spawn(provider, "time", seqlen, dim, nstate, reps, device, threads))
    return result


def run(seqlen: int = 24_576, dim: int = 256, nstate: int = 16, reps: int = 5,
        device: str = "cpu", threads: Optional[int] = None) -> dict:
    """Both providers, one fresh subprocess each, and the issue-2 criteria (≥2× faster, lower peak)."""
    from samic_fast.bench.envinfo import environment

    results = {p: run_provider(p, seqlen, dim, nstate, reps, device, threads) for p in PROVIDERS}
    ours, theirs = results["samic_fast"], results["mamba_ssm"]
    speedup = theirs["median_s"] / ours["median_s"]
    env = environment(device)
    if device == "cpu":  # the workers' thread count, not this process's
        n = results["samic_fast"]["torch_threads"]
        env["device_name"] = f"{env['cpu']} ({os.cpu_count()} logical CPUs, {n} torch threads)"
        env["torch_threads"] = n
    return {
        "env": env,
        "shape": {"batch": 1, "seqlen": seqlen, "dim": dim, "nstate": nstate},
        "reps": reps,
        "results": results,
        "speedup": speedup,
        "memory_ratio": theirs["peak_mem_bytes"] / max(1, ours["peak_mem_bytes"]),
        "criteria": {
            "at_least_2x_faster": speedup >= 2.0,
            "lower_peak_memory": ours["peak_mem_bytes"] < theirs["peak_mem_bytes"],
        },
    }


def format_result(res: dict) -> str:
    from samic_fast.bench.envinfo import format_environment

    s = res["shape"]
    lines = [
        format_environment(res["env"]),
        f"shape  : B=1, L={s['seqlen']:,}, D={s['dim']}, N={s['nstate']}, fp32; "
        f"median of {res['reps']} after 1 warm-up; each provider in a fresh subprocess",
        "",
        f"| {'provider':<28} | {'median (s)':>10} | {'min–max (s)':>13} | {'peak extra memory':>17} |",
        f"|{'-' * 30}|{'-' * 11}:|{'-' * 14}:|{'-' * 18}:|",
    ]
    names = {"samic_fast": "samic_fast.ref (ours)", "mamba_ssm": "mamba-ssm selective_scan_ref"}
    for p in PROVIDERS:
        r = res["results"][p]
        lines.append(
            f"| {names[p]:<28} | {r['median_s']:>10.3f} | {r['min_s']:>6.3f}–{r['max_s']:<6.3f} | "
            f"{r['peak_mem_bytes'] / 2**20:>14.1f} MiB |"
        )
    c = res["criteria"]
    lines += [
        "",
        f"speedup {res['speedup']:.1f}x (need >= 2x: {'met' if c['at_least_2x_faster'] else 'MISSED'}); "
        f"peak memory {res['memory_ratio']:.1f}x lower "
        f"(need lower: {'met' if c['lower_peak_memory'] else 'MISSED'})",
        f"memory: {res['results']['samic_fast']['mem_method']} (fresh process, "
        "MALLOC_MMAP_THRESHOLD_=65536); time: another fresh process, default allocator",
    ]
    return "\n".join(lines)


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seqlen", type=int, default=24_576)
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--nstate", type=int, default=16)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--threads", type=int, help="torch threads in the workers (default: torch's)")
    parser.add_argument("--json", metavar="OUT", help="also write the result as JSON")
    parser.add_argument("--worker", choices=PROVIDERS, help=argparse.SUPPRESS)
    parser.add_argument("--measure", choices=("memory", "time"), default="time", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        result = worker(args.worker, args.measure, args.seqlen, args.dim, args.nstate, args.reps, args.device,
                        args.threads)
        print(json.dumps(result))
        return 0
    res = run(args.seqlen, args.dim, args.nstate, args.reps, args.device, args.threads)
    given = argv if argv is not None else sys.argv[1:]
    res["command"] = " ".join(["python -m samic_fast.bench.ref_scan", *given])
    print(format_result(res))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(res, fh, indent=2)
    return 0 if all(res["criteria"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
