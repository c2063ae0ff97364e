"""Where something moved in a camera's picture: cheap, per frame, in the capture process (no torch).

The model runs where something moves (Frigate's idea): the daemon's
inference stage looks at this before spending a model call on a frame. A
frame is compared, small and grey, with a running average of the earlier
ones (the background):

* the frame is shrunk to ``WORK_HEIGHT`` rows of grey and blurred, which
  takes out sensor noise and most compression artefacts before anything is
  compared;
* a pixel moved when it differs from the background by more than
  ``threshold`` grey levels *and* from the previous frame by more than half
  of that: something that stopped (a person standing still, a parked car)
  is no motion from the next frame on, though the background takes a while
  to learn it; moved pixels inside the mask (a tree, a clock overlay) are
  ignored;
* the moved pixels are dilated into blobs; blobs smaller than
  ``contour_area`` (pixels of a 427x240 picture) are noise, the others'
  bounding boxes, in the frame's pixels, are the motion;
* the background learns ``1 - exp(-dt / learn_s)`` of each frame (``dt``
  the seconds since the previous one), so it follows slow light changes
  (sunset, clouds) at any frame rate, and a person who stands still for
  longer than that becomes background (the tracker keeps them);
* a sudden change of most of the picture (lights switched on, a camera's
  infrared mode, auto exposure) is no motion but a new background: the
  detector recalibrates on it at once instead of reporting the whole frame
  moving until the average has caught up.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np

from .geometry import polygon_problem

WORK_HEIGHT = 120
"""Rows of the grey picture motion is computed on (a 427x240 frame: 213x120)."""
REFERENCE_AREA = 427 * 240
"""``contour_area`` is in pixels of a picture this size, whatever the camera's."""
RECALIBRATE = 0.5
"""A frame in which this share of the picture changed at once is a new background, not motion."""
MAX_BOXES = 16
"""Most motion boxes a frame reports (the largest); more is the whole scene moving."""


@dataclass(frozen=True)
class MotionConfig:
    """``[motion]`` (and a camera's own ``[cameras.motion]``): when the model runs on a live camera."""

    enabled: bool = True
    """Run the model only where something moves (with a re-check of tracked people and a keep-alive)."""
    threshold: int = 25
    """Grey levels (0-255) a pixel must differ from the background by to have moved."""
    contour_area: int = 100
    """Smallest moving blob, in pixels of a 427x240 picture (a person far away is a few hundred)."""
    learn_s: float = 5.0
    """How fast the background follows the picture: about two thirds of the way in this many seconds (light
    that changes by less than ``threshold`` in this time is followed without motion)."""
    mask: tuple[tuple[tuple[float, ...], ...], ...] = ()
    """Polygons where motion is ignored, ``[[x, y], …]`` each, in pixels of the analysed frame, or 0..1 with
    ``normalized``."""
    normalized: bool = False
    """``mask``'s points are fractions of the frame's width and height."""

    def __post_init__(self) -> None:
        if not 1 <= self.threshold <= 255:
            raise ValueError(f"motion.threshold must be between 1 and 255, got {self.threshold}")
        if not 1 <= self.contour_area <= REFERENCE_AREA:
            raise ValueError(f"motion.contour_area must be between 1 and {REFERENCE_AREA}, got {self.contour_area}")
        if not 0.1 <= self.learn_s <= 3600:
            raise ValueError(f"motion.learn_s must be between 0.1 and 3600 seconds, got {self.learn_s}")
        for polygon in self.mask:
            if len(polygon) < 3:
                raise ValueError(f"motion.mask: a polygon needs at least 3 points, got {len(polygon)}")
            for point in polygon:
                if len(point) != 2 or not all(math.isfinite(v) for v in point):
                    raise ValueError(f"motion.mask: every point is [x, y], got {list(point)}")
                if self.normalized and not all(0.0 <= v <= 1.0 for v in point):
                    raise ValueError(f"motion.mask: normalized points lie in 0..1, got {list(point)}")
            problem = polygon_problem(polygon)
            if problem:
                raise ValueError(f"motion.mask: the polygon {[list(p) for p in polygon]} {problem}")

    def mask_in(self, frame_size: tuple[int, int]) -> list[list[tuple[float, float]]]:
        """The mask's polygons in pixels of frames of ``frame_size`` (width, height); ValueError if a point
        lies outside the frame."""
        width, height = frame_size
        polygons = []
        for polygon in self.mask:
            points = [(x * width, y * height) if self.normalized else (x, y) for x, y in polygon]
            for x, y in points:
                if not (0 <= x <= width and 0 <= y <= height):
                    raise ValueError(f"motion.mask: point [{x:g}, {y:g}] lies outside the {width}x{height} frame")
            polygons.append(points)
        return polygons


@dataclass
class Motion:
    """What ``MotionDetector.detect`` found in one frame."""

    boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.float32))
    """float32[N, 4]: x1, y1, x2, y2 in pixels of the frame, largest first (at most ``MAX_BOXES``)."""
    recalibrated: bool = False
    """Most of the picture changed at once: the background was replaced, and nothing counts as moved."""

    def __bool__(self) -> bool:
        return len(self.boxes) > 0


class MotionDetector:
    """Feed it every frame of one camera, in order, with its capture time (seconds)."""

    def __init__(self, config: MotionConfig, frame_size: tuple[int, int]) -> None:
        width, height = frame_size
        self.config = config
        self.scale = WORK_HEIGHT / height
        self.work_size = (max(8, round(width * self.scale)), WORK_HEIGHT)
        self.min_area = config.contour_area * (self.work_size[0] * self.work_size[1]) / REFERENCE_AREA
        self.allowed = np.full((self.work_size[1], self.work_size[0]), 255, np.uint8)
        for polygon in config.mask_in(frame_size):
            points = np.round(np.array(polygon) * self.scale).astype(np.int32)
            cv2.fillPoly(self.allowed, [points], 0)
        self.kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5))
        self.moved_frames = 0
        """Frames with motion so far: a reader that looks only at some frames (the newest) learns from it
        whether anything moved in those it did not see."""
        self._background: np.ndarray | None = None
        self._previous = np.zeros((self.work_size[1], self.work_size[0]), np.float32)
        self._time = 0.0

    def detect(self, frame: np.ndarray, now: float) -> Motion:
        """The motion of ``frame`` (BGR uint8, the camera's frame size) taken at ``now``."""
        small = cv2.resize(frame, self.work_size, interpolation=cv2.INTER_AREA)
        grey = cv2.GaussianBlur(cv2.cvtColor(small, cv2.COLOR_BGR2GRAY), (5, 5), 0).astype(np.float32)
        if self._background is None:
            self._background, self._previous, self._time = grey.copy(), grey, now
            return Motion()
        changed = cv2.absdiff(grey, self._background) > self.config.threshold
        moving = cv2.absdiff(grey, self._previous) > self.config.threshold / 2
        rate = 1.0 - math.exp(-max(now - self._time, 0.0) / self.config.learn_s)
        self._time, self._previous = now, grey
        if changed.mean() >= RECALIBRATE:
            self._background = grey.copy()
            return Motion(recalibrated=True)
        cv2.accumulateWeighted(grey, self._background, rate)
        moved = (changed & moving).astype(np.uint8) * 255
        blobs = cv2.dilate(moved & self.allowed, self.kernel, iterations=2)
        contours, _ = cv2.findContours(blobs, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        found = sorted((c for c in contours if cv2.contourArea(c) >= self.min_area), key=cv2.contourArea, reverse=True)
        boxes = [cv2.boundingRect(c) for c in found[:MAX_BOXES]]
        self.moved_frames += bool(boxes)
        return Motion(np.array([(x, y, x + w, y + h) for x, y, w, h in boxes], np.float32).reshape(-1, 4) / self.scale)


def overlaps(motion: Sequence[Sequence[float]], box: Sequence[float], margin: float = 0.0) -> bool:
    """Whether any motion box touches ``box`` grown by ``margin`` of its size on each side."""
    x1, y1, x2, y2 = box
    dx, dy = margin * (x2 - x1), margin * (y2 - y1)
    return any(m[0] <= x2 + dx and m[2] >= x1 - dx and m[1] <= y2 + dy and m[3] >= y1 - dy for m in motion)
