"""``--precision auto``: the scheme that should be fastest on the device found, and why (no torch needed).

The rule, from what each scheme needs to pay off (measurements in the README):

* CUDA: ``fp16`` (norms folded, then the whole network in half precision;
  tensor cores run it, and torchvision's CUDA nms takes float16);
* a CPU with AVX512-VNNI or AMX-INT8, given a calibration artifact:
  ``int8-static``, also where the CPU computes in bfloat16: giving a
  calibration is asking for int8, and it was the faster of the two where
  both were measured (AMD EPYC with AVX512-BF16: 135.5 ms a frame against
  180.6 ms for ``bf16+channels_last``; an AMX Xeon: 100 ms whole-model int8
  against a 53 ms bfloat16 backbone plus 75 ms of float32 heads);
* a CPU with AMX or AVX512-BF16: ``bf16+channels_last`` (backbone + FPN in
  bfloat16, where the time goes, laid out as oneDNN's bfloat16 kernels
  prefer; the heads stay float32). Measured on an AMX Xeon: the backbone
  155 -> 53 ms; on an AMD EPYC with AVX512-BF16: 183 ms a frame against
  299 ms for ``fp32-fused``. ``autocast`` was faster there (155 ms: the RPN
  head in bfloat16 too) but decodes boxes in bfloat16, whose 8-bit mantissa
  puts coordinates on a 2-pixel grid above 256 and past the frame's edge
  (427 becomes 428): not a default;
* otherwise ``fp32-fused`` (norms folded: the same numbers, less work).
  Channels-last did not pay in float32 where it was measured (an AVX-512 AMD
  EPYC: 291 ms either way), so it is not added.

An explicit ``--precision`` always wins over this rule.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

BF16_FEATURES = ("amx_bf16", "avx512_bf16")
"""Instructions that compute in bfloat16: without one, bfloat16 is emulated and slower than float32."""
INT8_FEATURES = ("amx_int8", "avx512_vnni")


@dataclass(frozen=True)
class DeviceFeatures:
    """What the scheme depends on: the device's kind, the CPU's relevant flags, the GPU's capability."""

    kind: str
    """``cpu`` or ``cuda``."""
    cpu_flags: tuple[str, ...] = ()
    """Among ``devices.CPU_FEATURES``."""
    cuda_capability: tuple[int, int] | None = None

    def has_any(self, flags: tuple[str, ...]) -> bool:
        return any(flag in self.cpu_flags for flag in flags)


@dataclass(frozen=True)
class Choice:
    precision: str
    reason: str


def choose_precision(device: DeviceFeatures, calibration: Path | None = None) -> Choice:
    if device.kind == "cuda":
        capability = ".".join(map(str, device.cuda_capability or ()))
        return Choice("fp16", f"CUDA{' capability ' + capability if capability else ''}: float16 end to end")
    if device.has_any(INT8_FEATURES) and calibration is not None:
        found = ", ".join(f for f in INT8_FEATURES if f in device.cpu_flags)
        return Choice("int8-static", f"the CPU has int8 dot products ({found}) and a calibration was given")
    if device.has_any(BF16_FEATURES):
        found = ", ".join(f for f in BF16_FEATURES if f in device.cpu_flags)
        return Choice("bf16+channels_last", f"the CPU computes in bfloat16 ({found}): backbone and FPN in bfloat16")
    hint = " (give a calibration for int8-static)" if device.has_any(INT8_FEATURES) else ""
    return Choice("fp32-fused", f"no bfloat16 instructions{hint}: float32 with norms folded")


def choose_ssdlite_precision(device: DeviceFeatures, calibration: Path | None = None) -> Choice:
    """``auto`` for ``ssdlite-people``, from ``bench/ssdlite_schemes.py`` (120 frames of OpenCV's pedestrian
    sample, an AMD EPYC with AVX512-BF16 and VNNI): a network of depthwise and 1x1 convolutions, where
    channels-last pays on the CPU in every precision (unlike Faster R-CNN's float32) and compiling it with
    Inductor pays again. bf16+channels_last+compiled was the fastest scheme with a fidelity mAP of at least
    0.95; int8-static was less faithful (0.904), so a calibration does not win over bfloat16 for this
    network. Where the CPU has no bfloat16 instructions, a calibration on an int8 CPU runs int8-static, and
    otherwise fp32-fused+channels_last+compiled (the same numbers as fp32). Without a C++ compiler for
    Inductor the loader drops ``+compiled``."""
    if device.kind == "cuda":
        return choose_precision(device, calibration)
    if device.has_any(BF16_FEATURES):
        found = ", ".join(f for f in BF16_FEATURES if f in device.cpu_flags)
        return Choice(
            "bf16+channels_last+compiled",
            f"the CPU computes in bfloat16 ({found}): the backbone in bfloat16, compiled (int8-static is less "
            "faithful on this network)",
        )
    if device.has_any(INT8_FEATURES) and calibration is not None:
        found = ", ".join(f for f in INT8_FEATURES if f in device.cpu_flags)
        return Choice("int8-static", f"the CPU has int8 dot products ({found}) and a calibration was given")
    hint = " (give a calibration for int8-static)" if device.has_any(INT8_FEATURES) else ""
    return Choice(
        "fp32-fused+channels_last+compiled", f"no bfloat16 instructions{hint}: float32, norms folded, compiled"
    )
