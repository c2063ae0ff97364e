"""The model side of detectord: detectors, inference profiles, the main person.

Knows nothing of processes, rings or MQTT: frames in, detections out.
"""

from .detector import Detections, Detector, FrameDetector, ModelInfo, frames_to_batch
from .labels import COCO_CATEGORIES, PERSON, label_name
from .main_person import MainPerson, MainPersonConfig, MainPersonTracker
from .models import (
    DEFAULT_MODEL,
    MODELS,
    WeightsError,
    build_model,
    calibrate_detector,
    load_detector,
    resolve_device,
)
from .precision import SCHEMES, Precision, PrecisionError, apply_precision
from .profiles import PROFILES, InferenceProfile, apply_profile, get_profile
from .quantization import CalibrationError

__all__ = [
    "COCO_CATEGORIES",
    "DEFAULT_MODEL",
    "MODELS",
    "PERSON",
    "PROFILES",
    "SCHEMES",
    "CalibrationError",
    "Precision",
    "PrecisionError",
    "apply_precision",
    "Detections",
    "Detector",
    "FrameDetector",
    "InferenceProfile",
    "MainPerson",
    "MainPersonConfig",
    "MainPersonTracker",
    "ModelInfo",
    "WeightsError",
    "apply_profile",
    "build_model",
    "calibrate_detector",
    "frames_to_batch",
    "get_profile",
    "label_name",
    "load_detector",
    "resolve_device",
]
