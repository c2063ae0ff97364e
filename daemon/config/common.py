"""What every command's configuration shares: the error that names the key, the frame, the model."""

from __future__ import annotations

from dataclasses import dataclass

from detectord.detection import (
    PROFILES,
    DetectorOptions,
    ModelOptionError,
    Precision,
    check_options,
    resolve_device_name,
)


class ConfigError(ValueError):
    """A configuration value is invalid; the message names the key."""


DEFAULT_FRAME_SIZE = (427, 240)
"""(width, height): the product's frame size, what the main-person job needs and no more."""


@dataclass(frozen=True)
class FrameConfig:
    width: int = DEFAULT_FRAME_SIZE[0]
    """Width of the frames every stage works on (and of published frames), pixels."""
    height: int = DEFAULT_FRAME_SIZE[1]
    """Height of those frames, pixels."""

    def __post_init__(self) -> None:
        for key, value in (("frame.width", self.width), ("frame.height", self.height)):
            if not 16 <= value <= 8192:
                raise ConfigError(f"{key} must be between 16 and 8192 pixels, got {value}")

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.height, self.width, 3

    @property
    def size(self) -> tuple[int, int]:
        return self.width, self.height


@dataclass(frozen=True)
class ModelConfig(DetectorOptions):
    """``[model]``: the detector and how it runs (its settings are ``detection.DetectorOptions``')."""

    def __post_init__(self) -> None:
        try:
            check_options(self)
        except ModelOptionError as exc:
            raise ConfigError(f"model.{exc.option}: {exc}") from None

    def check_runnable(self) -> None:
        """Refuse, before any process starts, what this machine cannot run (no CUDA, fp16 on a CPU).

        Whether CUDA is there is only asked when the answer matters (``auto``
        with a scheme that runs anywhere needs no answer).
        """
        precision = Precision.parse(self.precision)
        if self.device == "auto" and precision.device_types == {"cpu", "cuda"}:
            return
        try:
            device = resolve_device_name(self.device)
            precision.check_device(device.split(":")[0])
        except ValueError as exc:
            raise ConfigError(f"model: {exc}") from None

    @property
    def max_detections(self) -> int:
        return PROFILES[self.profile].detections_per_image


def parse_size(text: str, key: str) -> tuple[int, int]:
    """``"1280x720"`` (or with the multiplication sign) -> (1280, 720); ConfigError naming ``key`` otherwise."""
    width, sep, height = text.lower().replace("\u00d7", "x").partition("x")
    if not (sep and width.strip().isdigit() and height.strip().isdigit()):
        raise ConfigError(f'{key} must be WIDTHxHEIGHT (e.g. "1280x720"), got {text!r}')
    size = int(width), int(height)
    if not all(16 <= v <= 8192 for v in size):
        raise ConfigError(f"{key}: width and height must be between 16 and 8192 pixels, got {text!r}")
    return size
