"""Configuration as data: typed, frozen, validated once at the edge with messages naming the key.

What a value may be is decided where the value is used (``detectord.detection``
for the model, ``detectord.contract`` for the broker); these dataclasses only
add the key's name to the message. ``cli.loading`` fills them from TOML and
flags.

``common`` holds what every command shares, ``offline`` the commands that read
videos, ``live`` the daemon's; every name is importable from here.
"""

from __future__ import annotations

from .common import DEFAULT_FRAME_SIZE, ConfigError, FrameConfig, ModelConfig, parse_size
from .live import (
    BOTH_FORMS,
    FRAME_SIZES,
    CameraConfig,
    DaemonConfig,
    DemoConfig,
    DetectConfig,
    InferenceConfig,
    MqttConfig,
    PublishConfig,
    SourceConfig,
)
from .offline import AnalysisSettings, AnalyzeConfig, ArchiveConfig, CalibrateConfig, TuneConfig

__all__ = [
    "AnalysisSettings",
    "AnalyzeConfig",
    "ArchiveConfig",
    "BOTH_FORMS",
    "CalibrateConfig",
    "CameraConfig",
    "ConfigError",
    "DEFAULT_FRAME_SIZE",
    "DaemonConfig",
    "DemoConfig",
    "DetectConfig",
    "FRAME_SIZES",
    "FrameConfig",
    "InferenceConfig",
    "ModelConfig",
    "MqttConfig",
    "PublishConfig",
    "SourceConfig",
    "TuneConfig",
    "parse_size",
]
