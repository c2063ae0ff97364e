"""The errors of ``detectord.detection``, importable without torch (processes that only report them)."""

from __future__ import annotations


class ModelOptionError(ValueError):
    """An option of a detector is invalid; ``option`` names it (name, weights, profile, …)."""

    def __init__(self, option: str, message: str) -> None:
        super().__init__(message)
        self.option = option


class WeightsError(RuntimeError):
    """Weights cannot be obtained or do not fit the model."""


class PrecisionError(ValueError):
    """A scheme cannot run here, or is asked for without what it needs."""


class CalibrationError(RuntimeError):
    """A calibration artifact is missing, malformed or made for another model."""
