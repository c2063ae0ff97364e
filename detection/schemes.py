"""Precision schemes by name: what each is, where it runs, what it needs (no torch needed to ask).

``precision.apply_precision`` does the converting; this module only answers
questions about a scheme, so a configuration can be validated in a process
that never loads a model.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .errors import PrecisionError

SCHEMES = ("fp32", "fp32-fused", "fp16", "mixed", "autocast", "bf16", "int8-dynamic", "int8-static")
AUTO = "auto"
"""Not a scheme: the one ``detection/auto.py`` chooses for the device found."""
CHANNELS_LAST = "+channels_last"
COMPILED = "+compiled"
"""The network compiled by Inductor on the CPU (ssdlite-people's schemes; see its precision module)."""


@dataclass(frozen=True)
class Precision:
    scheme: str
    channels_last: bool = False
    compiled: bool = False

    @classmethod
    def parse(cls, name: str) -> Precision:
        if name == AUTO:
            return cls(AUTO)
        scheme, modifiers = name, set[str]()
        for modifier in (COMPILED, CHANNELS_LAST, COMPILED):
            if scheme.endswith(modifier) and modifier not in modifiers:
                scheme, modifiers = scheme[: -len(modifier)], modifiers | {modifier}
        if scheme not in SCHEMES:
            raise PrecisionError(
                f"unknown precision {name!r}; choose auto or one of {', '.join(SCHEMES)} "
                f"(optionally with {CHANNELS_LAST} and {COMPILED})"
            )
        return cls(scheme, CHANNELS_LAST in modifiers, COMPILED in modifiers)

    @property
    def auto(self) -> bool:
        return self.scheme == AUTO

    @property
    def name(self) -> str:
        return self.scheme + (CHANNELS_LAST if self.channels_last else "") + (COMPILED if self.compiled else "")

    def check_calibration(self, calibration: Path | None) -> None:
        """int8-static needs a calibration artifact, and nothing else takes one."""
        if self.auto:
            if calibration is not None and not calibration.is_file():
                raise PrecisionError(f"no such calibration file: {str(calibration)!r}")
            return
        if self.scheme == "int8-static" and calibration is None:
            raise PrecisionError("int8-static needs a calibration file (make one with: detectord calibrate VIDEO)")
        if calibration is not None and self.scheme != "int8-static":
            raise PrecisionError(f"a calibration file only applies to int8-static (or auto), not {self.name}")
        if calibration is not None and not calibration.is_file():
            raise PrecisionError(f"no such calibration file: {str(calibration)!r}")

    @property
    def device_types(self) -> frozenset[str]:
        """The kinds of device (``cpu``, ``cuda``) this scheme runs on."""
        if self.scheme in ("fp16", "mixed"):
            return frozenset({"cuda"})
        if self.scheme.startswith("int8") or self.compiled:
            return frozenset({"cpu"})
        return frozenset({"cpu", "cuda"})

    def check_device(self, device_type: str) -> None:
        """Refuse, with the reason, what this kind of device (``cpu``, ``cuda``) cannot run."""
        if self.scheme in ("fp16", "mixed") and device_type != "cuda":
            raise PrecisionError(
                f"{self.scheme} needs a CUDA device: on the CPU torchvision's nms has no float16 kernel and "
                "float16 convolutions are emulated; on the CPU use int8-static, int8-dynamic or fp32-fused"
            )
        if self.scheme.startswith("int8") and device_type != "cpu":
            raise PrecisionError(
                f"{self.scheme} runs on the CPU (PyTorch's x86 int8 kernels); on {device_type} use fp16 or mixed"
            )
        if self.compiled and device_type != "cpu":
            raise PrecisionError(f"{COMPILED} was measured on the CPU only; on {device_type} leave it out")
        if self.compiled and self.scheme in ("int8-static", "int8-dynamic"):
            raise PrecisionError(f"{self.scheme} is compiled already (or not at all); leave {COMPILED} out")
