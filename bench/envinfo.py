"""What a benchmark ran on: device name, library versions, date, load. Printed above every table."""

from __future__ import annotations

import datetime as _dt
import os
import platform
from importlib import metadata
from typing import Optional

import torch


def cpu_model() -> str:
    """The CPU's marketing name from /proc/cpuinfo (``platform.processor()`` is often empty)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(dist: str) -> Optional[str]:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def device_name(device: torch.device | str) -> str:
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{cpu_model()} ({os.cpu_count()} logical CPUs, {torch.get_num_threads()} torch threads)"


def environment(device: torch.device | str) -> dict:
    """A flat, JSON-friendly description of the run."""
    device = torch.device(device)
    try:
        load = os.getloadavg()
    except OSError:
        load = None
    return {
        "device": str(device),
        "device_name": device_name(device),
        "cpu": cpu_model(),
        "torch": torch.__version__,
        "triton": _version("triton"),
        "cuda": torch.version.cuda,
        "mamba_ssm": _version("mamba-ssm") or _version("mamba_ssm"),
        "python": platform.python_version(),
        "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "loadavg": None if load is None else [round(x, 2) for x in load],
        "triton_interpret": os.environ.get("TRITON_INTERPRET", "0"),
        "torch_threads": torch.get_num_threads(),
    }


def format_environment(env: dict) -> str:
    lines = [
        f"device : {env['device']} — {env['device_name']}",
        f"versions: torch {env['torch']}, triton {env['triton']}, CUDA {env['cuda'] or 'n/a'}, "
        f"mamba-ssm {env['mamba_ssm'] or 'n/a'}, Python {env['python']}",
        f"date   : {env['date']}; load average {env['loadavg']}",
    ]
    warning = busy_warning(env)
    if warning:
        lines.append(warning)
    return "\n".join(lines)


def busy_warning(env: dict) -> Optional[str]:
    """A warning line when other work competes for the CPUs (1-minute load above the CPU count).

    On an oversubscribed CPU, OpenMP's barriers wait for descheduled threads and small parallel
    ops slow down by 10-100x, so CPU timings taken then are not representative.
    """
    load, ncpu = env.get("loadavg"), os.cpu_count() or 1
    if load and load[0] > ncpu:
        return (f"WARNING: machine busy (1-min load {load[0]:.1f} on {ncpu} CPUs): CPU timings "
                "are inflated by competing work; rerun on an idle machine"
                + ("" if env.get("torch_threads") == 1 else " or with --threads 1"))
    return None


__all__ = ["cpu_model", "device_name", "environment", "format_environment", "busy_warning"]
