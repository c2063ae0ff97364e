"""The torchvision detectors' backend (``detection/registry.py``): Faster R-CNN, RetinaNet, SSDlite.

This module is torch-free, so that the registry can check options in
processes that never run a model; ``load`` imports torch and torchvision
(``models.py``), in the inference process. The modules beside it (models,
precision schemes, int8 calibration, tuning, evaluation) are the only ones
in detectord that import torch.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from detectord.detection.errors import ModelOptionError
from detectord.detection.registry import DetectorOptions
from detectord.detection.types import FrameDetector

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


def check(options: DetectorOptions) -> None:
    if options.weights not in ("default", "random"):
        check_weights_file(Path(options.weights))


def load(options: DetectorOptions, frame_size: tuple[int, int]) -> FrameDetector:
    import torch

    from .models import load_detector

    if options.threads:
        torch.set_num_threads(options.threads)

    return load_detector(
        options.name,
        options.weights,
        options.device,
        options.profile,
        frame_size=frame_size,
        score_threshold=options.score_threshold,
        precision=options.precision,
        calibration=options.calibration,
        force_precision=options.force_precision,
    )


def weights_unavailable(options: DetectorOptions) -> str | None:
    if options.weights != "default":
        return None
    from .models import pretrained_unavailable

    return pretrained_unavailable(options.name)


def calibrate(
    options: DetectorOptions, frames: Sequence[np.ndarray], frame_size: tuple[int, int], source: str
) -> dict[str, Any]:
    from .models import calibrate_detector

    return calibrate_detector(
        frames, options.name, options.weights, options.profile, frame_size=frame_size, source=source
    )
