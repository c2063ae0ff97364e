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
import re
import subprocess
import sys
from typing import Any

from .auto import DeviceFeatures
from .errors import ModelOptionError

_DEVICE_RE = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")

_PROBE = (
    "import torch\n"
    "if torch.cuda.is_available():\n"
    "    print(torch.cuda.get_device_name(0), '%d.%d' % torch.cuda.get_device_capability(0), sep='\\t')"
)

CPU_FEATURES = ("avx2", "avx_vnni", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_int8", "amx_tile")
"""The x86 instruction-set extensions that decide which precision pays off on a CPU."""


def parse_cpuinfo(text: str) -> tuple[str | None, tuple[str, ...]]:
    """The model name and which of ``CPU_FEATURES`` the first CPU of a /proc/cpuinfo text has."""
    model, flags = None, set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "model name" and model is None:
            model = value.strip()
        elif key.strip() == "flags":
            flags = set(value.split())
            break
    return model, tuple(feature for feature in CPU_FEATURES if feature in flags)


@functools.cache
def cpu_description() -> tuple[str, tuple[str, ...]]:
    """This CPU's model name and which of ``CPU_FEATURES`` it has (from /proc/cpuinfo; none elsewhere)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as cpuinfo:
            model, flags = parse_cpuinfo(cpuinfo.read())
    except OSError:
        model, flags = None, ()
    return model or platform.processor() or platform.machine(), flags


def cpu_has_vnni() -> bool:
    """Whether this CPU multiplies u8 x s8 into int32 without an int16 intermediate (AVX512-VNNI, AVX-VNNI)."""
    flags = cpu_description()[1]
    return "avx512_vnni" in flags or "avx_vnni" in flags


def machine_tag() -> str:
    """How a benchmark result file names this machine: ``x86_64-amx-2cpu``, ``x86_64-avx512bf16-2cpu``…

    The tag is the strongest feature that changes which precision pays:
    AMX, AVX512-BF16, AVX512-VNNI, AVX-512, AVX2.
    """
    flags = cpu_description()[1]
    level = next(
        (tag for flag, tag in _TAGS if flag in flags),
        "base",
    )
    return f"{platform.machine()}-{level}-{os.cpu_count()}cpu"


_TAGS = (
    ("amx_bf16", "amx"),
    ("avx512_bf16", "avx512bf16"),
    ("avx512_vnni", "vnni"),
    ("avx512f", "avx512"),
    ("avx2", "avx2"),
)


@functools.cache
def cuda_description() -> str | None:
    """The first CUDA device's name and capability (``NVIDIA H200, capability 9.0``), or None without CUDA."""
    torch = sys.modules.get("torch")
    if torch is not None:
        if not torch.cuda.is_available():
            return None
        return f"{torch.cuda.get_device_name(0)}, capability {'.'.join(map(str, torch.cuda.get_device_capability(0)))}"
    try:
        done = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, timeout=300, check=False, text=True)
    except (OSError, subprocess.TimeoutExpired):
        return None
    name, _, capability = done.stdout.strip().partition("\t")
    return f"{name}, capability {capability}" if done.returncode == 0 and name else None


def cuda_available() -> bool:
    return cuda_description() is not None


def local_features() -> DeviceFeatures:
    """What ``--precision auto`` with ``--device auto`` decides on here (asks for CUDA: may start a child)."""
    cuda = cuda_description()
    if cuda is not None:
        major, _, minor = cuda.rpartition(" ")[2].partition(".")
        return DeviceFeatures("cuda", cuda_capability=(int(major), int(minor)))
    return DeviceFeatures("cpu", cpu_description()[1])


def describe_machine() -> dict[str, Any]:
    """``machine`` (CPU model, architecture, cores, Python) and ``cpu_flags``: what every benchmark prints."""
    model, flags = cpu_description()
    machine = f"{model}, {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
    return {"machine": machine, "cpu_flags": list(flags)}


def check_device_name(device: str) -> str:
    """``device`` if it is auto, cpu, cuda or cuda:N (whether this machine has it is checked at load)."""
    if not _DEVICE_RE.match(device):
        raise ModelOptionError("device", f"unknown device {device!r}; use auto, cpu, cuda or cuda:N")
    return device


def resolve_device_name(device: str) -> str:
    """``auto``: ``cuda`` when available, else ``cpu``; ``cpu``, ``cuda``, ``cuda:N`` if this machine has it."""
    check_device_name(device)
    if device == "auto":
        return "cuda" if cuda_available() else "cpu"
    if device.startswith("cuda") and not cuda_available():
        raise ModelOptionError("device", f"device {device!r} asked for, but CUDA is not available on this machine")
    return device
