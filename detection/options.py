"""Validation of the options that name and run a detector, once, for every caller.

The command line, the configuration file and Python callers all reach these
checks; each failure names the option it is about (``ModelOptionError.option``)
so that a caller can add its own name for the key (``model.profile`` in a
configuration file) without rewording the message.
"""

from __future__ import annotations

import re
from pathlib import Path

from .errors import ModelOptionError, PrecisionError
from .families import HOG_PEOPLE, MODELS
from .profiles import PROFILES
from .schemes import Precision

_DEVICE_RE = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")


WEIGHTS_MAGIC = (b"PK\x03\x04", b"\x80")
"""How a file torch.save wrote starts: a zip archive, or (before torch 1.6) a pickle."""


def check_weights_file(path: Path) -> None:
    """A weights file must exist and look like something torch.save wrote; the rest is checked at load."""
    if not path.is_file():
        raise ModelOptionError("weights", f"no such file {str(path)!r} (or use 'default' or 'random')")
    try:
        with path.open("rb") as f:
            head = f.read(4)
    except OSError as exc:
        raise ModelOptionError("weights", f"cannot read {path}: {exc.strerror}") from None
    if not head.startswith(WEIGHTS_MAGIC):
        raise ModelOptionError("weights", f"{path} is not a PyTorch weights file (torch.save writes a zip archive)")


def check_device_name(device: str) -> str:
    """``device`` if it is auto, cpu, cuda or cuda:N (whether this machine has it is checked at load)."""
    if not _DEVICE_RE.match(device):
        raise ModelOptionError("device", f"unknown device {device!r}; use auto, cpu, cuda or cuda:N")
    return device


def check_options(
    *,
    name: str,
    weights: str,
    profile: str,
    device: str,
    precision: str,
    calibration: Path | None,
    score_threshold: float | None,
) -> None:
    """Everything about a detector's options that can be known without building it."""
    if name not in MODELS:
        raise ModelOptionError("name", f"unknown model {name!r}; choose one of {', '.join(MODELS)}")
    if profile not in PROFILES:
        raise ModelOptionError("profile", f"unknown profile {profile!r}; choose one of {', '.join(PROFILES)}")
    if name == HOG_PEOPLE:
        from .hog import check_hog_options

        check_hog_options(weights, device, precision)
    elif weights not in ("default", "random"):
        check_weights_file(Path(weights))
    if score_threshold is not None and not 0.0 <= score_threshold <= 1.0:
        raise ModelOptionError("score_threshold", f"must be in [0, 1], got {score_threshold}")
    check_device_name(device)
    try:
        Precision.parse(precision).check_calibration(calibration)
    except PrecisionError as exc:
        raise ModelOptionError("calibration" if "calibration" in str(exc) else "precision", str(exc)) from None
