"""Which device a ``--device`` setting means on this machine, answerable without loading torch here.

Whether CUDA is available is torch's answer. A process that already runs
torch asks it directly; one that never loads a model (the supervisor, which
validates the configuration before starting anything) asks a short-lived
child interpreter instead, and only when the answer matters.
"""

from __future__ import annotations

import functools
import os
import platform
import subprocess
import sys
from typing import Any

from .errors import ModelOptionError
from .options import check_device_name

_PROBE = "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)"

CPU_FEATURES = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_int8", "amx_tile")
"""The x86 instruction-set extensions that decide which precision pays off on a CPU."""


@functools.cache
def cpu_description() -> tuple[str, tuple[str, ...]]:
    """The CPU's model name and which of ``CPU_FEATURES`` it has (from /proc/cpuinfo; empty elsewhere)."""
    model, flags = platform.processor() or platform.machine(), set()
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as cpuinfo:
            for line in cpuinfo:
                key, _, value = line.partition(":")
                if key.strip() == "model name":
                    model = value.strip()
                elif key.strip() == "flags":
                    flags = set(value.split())
                    break
    except OSError:
        pass
    return model, tuple(feature for feature in CPU_FEATURES if feature in flags)


@functools.cache
def cuda_available() -> bool:
    torch = sys.modules.get("torch")
    if torch is not None:
        return bool(torch.cuda.is_available())
    try:
        done = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, timeout=300, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def describe_machine() -> dict[str, Any]:
    """``machine`` (CPU model, architecture, cores, Python) and ``cpu_flags``: what every benchmark prints."""
    model, flags = cpu_description()
    machine = f"{model}, {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
    return {"machine": machine, "cpu_flags": list(flags)}


def resolve_device_name(device: str) -> str:
    """``auto``: ``cuda`` when available, else ``cpu``; ``cpu``, ``cuda``, ``cuda:N`` if this machine has it."""
    check_device_name(device)
    if device == "auto":
        return "cuda" if cuda_available() else "cpu"
    if device.startswith("cuda") and not cuda_available():
        raise ModelOptionError("device", f"device {device!r} asked for, but CUDA is not available on this machine")
    return device
