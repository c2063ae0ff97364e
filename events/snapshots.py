"""The picture of an event, encoded once when it becomes the event's best."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from .config import SnapshotConfig

EDGE_PX = 2.0
"""A box this close to the frame's border is a person partly outside the picture."""
BOX_COLOUR = (0, 200, 255)


def wholly_inside(box: Sequence[float], frame_size: tuple[int, int]) -> bool:
    width, height = frame_size
    return box[0] >= EDGE_PX and box[1] >= EDGE_PX and box[2] <= width - EDGE_PX and box[3] <= height - EDGE_PX


def snapshot_quality(
    box: Sequence[float], score: float, frame_size: tuple[int, int], confident: float
) -> tuple[bool, bool, float, float]:
    """How good a picture of the person at ``box`` a frame is; tuples compare: seen whole (not cut by the
    frame's border) first, then confidently detected, then large (more pixels of who it is), then the score."""
    area = max(0.0, box[2] - box[0]) * max(0.0, box[3] - box[1])
    return wholly_inside(box, frame_size), score >= confident, area, score


def render(pixels: np.ndarray, box: Sequence[float], config: SnapshotConfig, frame_size: tuple[int, int]) -> bytes:
    """JPEG of ``pixels`` (BGR) with the box drawn and/or cropped around as configured. ``box`` is in pixels of a
    ``frame_size`` (width, height) frame, the detection frame; ``pixels`` may be the same frame at any size
    (the camera's full frame)."""
    image = pixels.copy() if config.draw_box or config.crop else pixels
    sx, sy = pixels.shape[1] / frame_size[0], pixels.shape[0] / frame_size[1]
    x1, y1, x2, y2 = (round(float(v) * s) for v, s in zip(box, (sx, sy, sx, sy), strict=True))
    if config.draw_box:
        thickness = max(1, round(min(image.shape[:2]) / 200))
        cv2.rectangle(image, (x1, y1), (x2 - 1, y2 - 1), BOX_COLOUR, thickness)
    if config.crop:
        height, width = image.shape[:2]
        dx = int((x2 - x1) * config.crop_margin)
        dy = int((y2 - y1) * config.crop_margin)
        cropped = image[max(0, y1 - dy) : min(height, y2 + dy), max(0, x1 - dx) : min(width, x2 + dx)]
        image = cropped if cropped.size else image
    ok, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, config.jpeg_quality])
    if not ok:
        raise ValueError("cannot encode the snapshot as JPEG")
    return jpeg.tobytes()
