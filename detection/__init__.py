"""The model side of detectord: detectors, inference profiles, precision schemes, the main person.

Knows nothing of processes, rings or MQTT: frames in, detections out.

Names are loaded on first use (PEP 562): ``from detectord.detection import
ModelInfo`` loads only the torch-free vocabulary (``types``, ``errors``,
``options``, ``schemes``, ``profiles``, ``families``, ``devices``, ``tracking``), so the
processes that never run a model (supervisor, capture, publisher) never import
torch; the names that need it (``load_detector``, ``MainPersonTracker``…) load
it when first asked for.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_WHERE = {
    "COCO_CATEGORIES": "labels",
    "PERSON": "tracking",
    "IouTracker": "tracking",
    "Track": "tracking",
    "box_iou": "tracking",
    "DEFAULT_MODEL": "families",
    "MODELS": "families",
    "PROFILES": "profiles",
    "InferenceProfile": "profiles",
    "get_profile": "profiles",
    "SCHEMES": "schemes",
    "Precision": "schemes",
    "CalibrationError": "errors",
    "ModelOptionError": "errors",
    "PrecisionError": "errors",
    "WeightsError": "errors",
    "Detections": "types",
    "FrameDetector": "types",
    "MainPerson": "types",
    "MainPersonConfig": "types",
    "ModelInfo": "types",
    "label_name": "types",
    "check_device_name": "options",
    "check_options": "options",
    "resolve_device_name": "devices",
    "Detector": "detector",
    "HogPeopleDetector": "hog",
    "frames_to_batch": "detector",
    "MainPersonTracker": "main_person",
    "build_model": "models",
    "calibrate_detector": "models",
    "load_detector": "models",
    "resolve_device": "models",
    "apply_precision": "precision",
}

__all__ = [
    "COCO_CATEGORIES",
    "CalibrationError",
    "DEFAULT_MODEL",
    "Detections",
    "Detector",
    "FrameDetector",
    "HogPeopleDetector",
    "InferenceProfile",
    "IouTracker",
    "MODELS",
    "MainPerson",
    "MainPersonConfig",
    "MainPersonTracker",
    "ModelInfo",
    "ModelOptionError",
    "PERSON",
    "PROFILES",
    "Precision",
    "PrecisionError",
    "SCHEMES",
    "Track",
    "WeightsError",
    "apply_precision",
    "box_iou",
    "build_model",
    "calibrate_detector",
    "check_device_name",
    "check_options",
    "frames_to_batch",
    "get_profile",
    "label_name",
    "load_detector",
    "resolve_device",
    "resolve_device_name",
]


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
    globals()[name] = value
    return value


if TYPE_CHECKING:
    from .detector import Detector, frames_to_batch
    from .devices import resolve_device_name
    from .errors import CalibrationError, ModelOptionError, PrecisionError, WeightsError
    from .families import DEFAULT_MODEL, MODELS
    from .hog import HogPeopleDetector
    from .labels import COCO_CATEGORIES
    from .main_person import MainPersonTracker
    from .models import build_model, calibrate_detector, load_detector, resolve_device
    from .options import check_device_name, check_options
    from .precision import apply_precision
    from .profiles import PROFILES, InferenceProfile, get_profile
    from .schemes import SCHEMES, Precision
    from .tracking import PERSON, IouTracker, Track, box_iou
    from .types import Detections, FrameDetector, MainPerson, MainPersonConfig, ModelInfo, label_name
