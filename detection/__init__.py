"""The model side of detectord: detectors, inference profiles, the main person.

Knows nothing of processes, rings or MQTT: frames in, detections out.
"""

from .detector import Detections, Detector, FrameDetector, ModelInfo, frames_to_batch
from .errors import ModelOptionError
from .families import DEFAULT_MODEL, MODELS
from .labels import COCO_CATEGORIES, PERSON, label_name
from .main_person import MainPerson, MainPersonConfig, MainPersonTracker
from .models import WeightsError, build_model, calibrate_detector, load_detector, resolve_device
from .options import check_device_name, check_options
from .precision import SCHEMES, Precision, PrecisionError, apply_precision
from .profiles import PROFILES, InferenceProfile, get_profile
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
    "ModelOptionError",
    "WeightsError",
    "build_model",
    "calibrate_detector",
    "check_device_name",
    "check_options",
    "frames_to_batch",
    "get_profile",
    "label_name",
    "load_detector",
    "resolve_device",
]
