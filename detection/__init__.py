"""The model side of detectord: detectors, inference profiles, the main person.

Knows nothing of processes, rings or MQTT: frames in, detections out.
"""

from .detector import Detections, Detector, FrameDetector, ModelInfo, frames_to_batch
from .labels import COCO_CATEGORIES, PERSON, label_name
from .main_person import MainPerson, MainPersonConfig, MainPersonTracker
from .models import DEFAULT_MODEL, MODELS, WeightsError, build_model, load_detector, resolve_device
from .profiles import PROFILES, InferenceProfile, apply_profile, get_profile

__all__ = [
    "COCO_CATEGORIES",
    "DEFAULT_MODEL",
    "MODELS",
    "PERSON",
    "PROFILES",
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
    "frames_to_batch",
    "get_profile",
    "label_name",
    "load_detector",
    "resolve_device",
]
