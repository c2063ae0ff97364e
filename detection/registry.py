"""Every detector detectord can run, by name: what it is, how its options are checked, how it is loaded.

The registry is torch-free: the supervisor validates a configuration and
the publisher labels results without ever loading a model. Each entry names
its *backend*, a module that the registry imports only when it is asked to
check or load that detector. A backend module is itself torch-free at import
and provides:

``check(options)``
    everything about ``options`` that can be known without building the
    detector (raises ``ModelOptionError`` naming the option);
``load(options, frame_size)``
    the ``FrameDetector`` for frames of ``frame_size`` (width, height);
    heavy imports (torch, torchvision) happen here, in the inference process;
``weights_unavailable(options)``
    why the weights cannot be had on this machine now, or None;
``calibrate(options, frames, frame_size, source)``
    the int8-static calibration artifact, made from real frames (torch).

A new detector is one backend module and one line in ``DETECTORS``, the way
torchvision's ``get_model`` finds a builder by name.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from .devices import check_device_name
from .errors import ModelOptionError, PrecisionError
from .profiles import get_profile
from .schemes import Precision
from .types import FrameDetector, Scores

DEFAULT_MODEL = "fasterrcnn_resnet50_fpn"
OFFLINE_DETECTOR = "ssdlite-people"
"""What the demo runs where trained weights cannot be downloaded: the SSDLite person graph of an installed
package, nothing to download."""
LAST_RESORT_DETECTOR = "hog-people"
"""What it runs where that package is missing too: OpenCV's built-in person detector."""

TORCHVISION = "detectord.detection.torchvision"
SSDLITE = "detectord.detection.ssdlite"
OPENCV_HOG = "detectord.detection.opencv.hog"


@dataclass(frozen=True)
class DetectorOptions:
    """Everything that names and runs a detector, as the configuration's ``[model]`` table sets it."""

    name: str = DEFAULT_MODEL
    """A torchvision detector, ``ssdlite-people`` (a trained person graph from a package, nothing to download)
    or ``hog-people`` (OpenCV's built-in person detector)."""
    weights: str = "default"
    """``default`` (torchvision's pretrained, downloaded once; ssdlite-people: the package's graph), ``random``
    (untrained), or a file path."""
    device: str = "auto"
    """``auto`` (CUDA when available), ``cpu``, ``cuda`` or ``cuda:N``."""
    profile: str = "default"
    """Inference profile: input size, proposals, score threshold (see detectord.detection.profiles)."""
    score_threshold: float | None = None
    """Report detections from this score; None keeps the profile's threshold."""
    precision: str = "auto"
    """``auto`` (the scheme for the device found: README, "--precision auto") or a scheme (see
    detectord.detection.schemes), e.g. fp32-fused, bf16, int8-static, fp16."""
    calibration: Path | None = None
    """The artifact ``detectord calibrate`` made; needed by int8-static, used by ``auto`` where int8 pays."""
    force_precision: bool = False
    """Run a scheme this device would run slower than float32 (bf16 without bfloat16 instructions)."""
    threads: int = 0
    """CPU threads the model may use (torch's intra-op threads, OpenCV's); 0: the libraries' default, every
    core. Several analyses at once split the cores this way."""


PROBABILITIES = Scores(confident=0.9, main_person=0.9, events=0.5, weak=0.1)
"""torchvision's detectors: class probabilities. 0.9 is the reference notebook's main-person threshold."""
HOG_MARGINS = Scores(confident=0.5, main_person=0.5, events=0.5, weak=0.2, event_frames=5)
"""hog-people: ``1 - exp(-margin)`` of the SVM's margin; 0.5 is a margin of 0.69. On OpenCV's pedestrian
sample (120 frames at 427x240) the best box of a frame reaches 0.9 in 27 frames and 0.5 in 88: a main person
held to 0.9 was missing from most frames where people are plain to see. Its events start after 5 frames: on
600 frames of that sample at 10 fps, 3 left 2 of 26 events under a second (false persons, people at the
border), 5 leaves 1 of 21."""
SSDLITE_PROBABILITIES = Scores(confident=0.7, main_person=0.5, events=0.5, weak=0.1)
"""ssdlite-people: sigmoid probabilities of a network trained on people only. On OpenCV's pedestrian sample
(427x240) its people in plain view score 0.85-0.97 and what it is unsure of 0.1-0.5 (bench/people.py): a
main person held to 0.9 would drop out of most frames where someone walks half turned away."""


@dataclass(frozen=True)
class Family:
    """What detectord must know of a detector before loading it."""

    backend: str
    """The module that checks and loads it (see the module's docstring)."""
    kind: str
    """``two_stage``, ``one_stage`` or ``fixed_size`` (torchvision: which builder arguments a profile sets),
    ``graph`` (a frozen graph ported to torch) or ``opencv``."""
    frozen_backbone_norm: bool = False
    """torchvision swaps BatchNorm2d for FrozenBatchNorm2d when it builds this detector with trained weights;
    building it "random" or from a file must produce the same modules."""
    downloads: bool = False
    """Its ``default`` weights come from the network (the demo falls back to ``OFFLINE_DETECTOR`` without)."""
    precisions: bool = True
    """Precision schemes apply to it (``detectord tune`` has something to measure)."""
    compiles: bool = False
    """Its schemes take ``+compiled`` (Inductor on the CPU)."""
    scores: Scores = PROBABILITIES
    """What its scores mean, and the thresholds used with them unless configured."""


_TWO_STAGE = Family(TORCHVISION, "two_stage", frozen_backbone_norm=True, downloads=True)

DETECTORS: dict[str, Family] = {
    "fasterrcnn_resnet50_fpn": _TWO_STAGE,
    "fasterrcnn_resnet50_fpn_v2": Family(TORCHVISION, "two_stage", downloads=True),
    "fasterrcnn_mobilenet_v3_large_fpn": _TWO_STAGE,
    "fasterrcnn_mobilenet_v3_large_320_fpn": _TWO_STAGE,
    "retinanet_resnet50_fpn": Family(TORCHVISION, "one_stage", frozen_backbone_norm=True, downloads=True),
    "ssdlite320_mobilenet_v3_large": Family(TORCHVISION, "fixed_size", downloads=True),
    OFFLINE_DETECTOR: Family(SSDLITE, "graph", compiles=True, scores=SSDLITE_PROBABILITIES),
    LAST_RESORT_DETECTOR: Family(OPENCV_HOG, "opencv", precisions=False, scores=HOG_MARGINS),
}


def family(name: str) -> Family:
    """The registry's entry for ``name``; ModelOptionError (option ``name``) for a name it does not hold."""
    try:
        return DETECTORS[name]
    except KeyError:
        raise ModelOptionError("name", f"unknown model {name!r}; choose one of {', '.join(DETECTORS)}") from None


def scores_of(name: str) -> Scores:
    """The score semantics of detector ``name``; a detector the registry does not know (a test double)
    speaks probabilities."""
    entry = DETECTORS.get(name)
    return PROBABILITIES if entry is None else entry.scores


def backend(name: str) -> ModuleType:
    return importlib.import_module(family(name).backend)


def check_options(options: DetectorOptions) -> None:
    """Everything about ``options`` that can be known without building the detector."""
    get_profile(options.profile)
    if options.score_threshold is not None and not 0.0 <= options.score_threshold <= 1.0:
        raise ModelOptionError("score_threshold", f"must be in [0, 1], got {options.score_threshold}")
    check_device_name(options.device)
    if not 0 <= options.threads <= 1024:
        raise ModelOptionError("threads", f"must be between 0 (every core) and 1024, got {options.threads}")
    try:
        Precision.parse(options.precision).check_calibration(options.calibration)
    except PrecisionError as exc:
        raise ModelOptionError("calibration" if "calibration" in str(exc) else "precision", str(exc)) from None
    backend(options.name).check(options)


def load(options: DetectorOptions, frame_size: tuple[int, int]) -> FrameDetector:
    """The detector ``options`` name, for frames of ``frame_size`` (width, height); its backend does the work
    and the heavy imports (see ``detection/torchvision/models.py load_detector`` for what the options mean
    to a torchvision detector)."""
    detector: FrameDetector = backend(options.name).load(options, frame_size)
    return detector


def calibrate(
    options: DetectorOptions, frames: Sequence[np.ndarray], frame_size: tuple[int, int], source: str
) -> dict[str, Any]:
    """The int8-static calibration artifact of the detector ``options`` name, observed on real ``frames`` (BGR
    uint8 of ``frame_size``); ``source`` says where they came from. Runs in the calling process (torch)."""
    artifact: dict[str, Any] = backend(options.name).calibrate(options, frames, frame_size, source)
    return artifact


def weights_unavailable(options: DetectorOptions) -> str | None:
    """Why the detector's weights cannot be had on this machine now (no cache, no network), or None."""
    reason: str | None = backend(options.name).weights_unavailable(options)
    return reason
