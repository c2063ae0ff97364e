"""The error every option check raises, naming the option it is about."""

from __future__ import annotations


class ModelOptionError(ValueError):
    """An option of a detector is invalid; ``option`` names it (name, weights, profile, …)."""

    def __init__(self, option: str, message: str) -> None:
        super().__init__(message)
        self.option = option
