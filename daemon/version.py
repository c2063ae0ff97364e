"""detectord's version, and what it runs on: ``detectord --version``."""

from __future__ import annotations

import platform
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as installed


def version(package: str = "detectord") -> str:
    try:
        return installed(package)
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "0+unknown"


def describe() -> str:
    """The version, the libraries that decide speed, the device's features, and what ``auto`` picks here."""
    import cv2

    from detectord.detection.auto import choose_precision
    from detectord.detection.devices import cpu_description, cuda_description, local_features

    model, flags = cpu_description()
    choice = choose_precision(local_features())
    return "\n".join(
        [
            f"detectord {version()}",
            f"Python {platform.python_version()}, torch {version('torch')}, torchvision {version('torchvision')}, "
            f"OpenCV {cv2.__version__}",
            f"CPU: {model}, {platform.machine()}; features: {', '.join(flags) or 'none of interest'}",
            f"CUDA: {cuda_description() or 'none'}",
            f"--precision auto here: {choice.precision} ({choice.reason})",
        ]
    )
