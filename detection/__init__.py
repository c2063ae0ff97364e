"""The model side of detectord: detectors, inference profiles, precision schemes, the main person.

Knows nothing of processes, rings or MQTT: frames in, detections out.

What this package exports is torch-free, so the processes that never run a
model (supervisor, capture, publisher) import it freely: the vocabulary
(``types``, ``errors``, ``schemes``, ``profiles``, ``devices``), the
detector registry (``registry``: names, option checks, ``load``, which
imports a backend only when called) and the trackers. The backends
live in their own packages: ``torchvision/`` (the only modules that import
torch) and ``opencv/``.
"""

from __future__ import annotations

from .devices import check_device_name, resolve_device_name
from .errors import CalibrationError, ModelOptionError, PrecisionError, WeightsError
from .main_person import MainPersonTracker
from .profiles import PROFILES, InferenceProfile, get_profile
from .registry import DEFAULT_MODEL, DETECTORS, DetectorOptions, check_options, family, load, scores_of
from .schemes import SCHEMES, Precision
from .tracking import Track, Tracker, box_iou
from .types import PERSON, Detections, FrameDetector, MainPerson, MainPersonConfig, ModelInfo, Scores, label_name

__all__ = [
    "DEFAULT_MODEL",
    "DETECTORS",
    "PERSON",
    "PROFILES",
    "SCHEMES",
    "CalibrationError",
    "DetectorOptions",
    "Detections",
    "FrameDetector",
    "InferenceProfile",
    "MainPerson",
    "MainPersonConfig",
    "MainPersonTracker",
    "ModelInfo",
    "ModelOptionError",
    "Precision",
    "PrecisionError",
    "Scores",
    "Track",
    "Tracker",
    "WeightsError",
    "box_iou",
    "check_device_name",
    "check_options",
    "family",
    "get_profile",
    "label_name",
    "load",
    "scores_of",
    "resolve_device_name",
]
