"""detectord's version, as installed."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as installed


def version() -> str:
    try:
        return installed("detectord")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "0+unknown"
