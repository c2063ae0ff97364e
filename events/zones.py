"""Zones in pixels of one camera's frames, and which of them a person stands in."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from .config import ZoneConfig


@dataclass(frozen=True)
class Zone:
    name: str
    polygon: np.ndarray
    """float32[N, 2], pixels of the analysed frame."""

    def contains(self, point: tuple[float, float]) -> bool:
        """Inside or on the edge."""
        return cv2.pointPolygonTest(self.polygon, point, False) >= 0

    def points(self) -> list[list[float]]:
        return [[round(float(x), 2), round(float(y), 2)] for x, y in self.polygon]


def resolve_zones(configs: Sequence[ZoneConfig], frame_size: tuple[int, int]) -> tuple[Zone, ...]:
    """Zones in pixels of frames of ``frame_size`` (width, height); ValueError for a zone outside the frame."""
    width, height = frame_size
    zones = []
    for config in configs:
        points = np.array(config.points, np.float32).reshape(-1, 2)
        if config.normalized:
            points *= np.array([width, height], np.float32)
        elif (points < 0).any() or (points[:, 0] > width).any() or (points[:, 1] > height).any():
            raise ValueError(
                f"zone {config.name!r}: a point lies outside the {width}x{height} frame "
                "(pixels of the analysed frame, or set normalized = true for 0..1)"
            )
        zones.append(Zone(config.name, points))
    names = [zone.name for zone in zones]
    for name in names:
        if names.count(name) > 1:
            raise ValueError(f"zone {name!r}: two zones of one camera have this name")
    return tuple(zones)


def foot_point(box: Sequence[float] | np.ndarray) -> tuple[float, float]:
    """Where a person stands: the bottom centre of their box."""
    return (float(box[0] + box[2]) / 2.0, float(box[3]))


def zones_at(zones: Sequence[Zone], box: Sequence[float]) -> tuple[str, ...]:
    point = foot_point(box)
    return tuple(zone.name for zone in zones if zone.contains(point))
