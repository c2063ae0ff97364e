"""Where in a frame the model looks: regions around what moved and what was found, Frigate's idea.

A camera with motion rarely moves all over: a person crossing a 427x240
picture covers a tenth of it. Running the model on the whole frame then
spends most of its time where nothing changed, and on a small CPU one busy
camera keeps the model busy; run on regions, two or three busy cameras fit
in the time one took. The regions of a frame are planned here, without
torch; the detector runs on crops of the frame at the frame's own scale
(``FrameDetector.detect_crops``), and the results are put back together:

* each motion box is grown by half its width left and right and a quarter of
  its height above and below (a person detector wants context: HOG's window
  is twice a person's width), by ``MIN_PAD`` of the frame's height at least,
  and to ``MIN_SIDE`` of the frame's height at least, so that a detector's
  smallest window fits;
* a detection of the last look that a region touches is taken into that
  region whole, with the same margin: a known object next to a moving one
  is looked at again entirely rather than cut in two;
* regions that overlap or nearly touch are merged into their bounding box,
  until none do;
* more than ``MAX_REGIONS`` regions, or regions covering more than
  ``WHOLE_SHARE`` of the frame, are not worth it: the whole frame is looked
  at instead;
* the detections of the frame are those found in the regions (moved back
  into frame pixels) and the last look's detections that lie outside every
  region: where nothing moved, the last look stands, as it does for a frame
  the model skips altogether.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .types import Detections

MAX_REGIONS = 4
"""Most regions a frame is looked at in; more is most of the scene moving."""
WHOLE_SHARE = 0.7
"""Regions covering more of the frame than this: the whole frame costs about the same, and sees everything.
(hog-people on OpenCV's pedestrian sample at 427x240, every frame looked at where it moved: regions covering
0.43 of the frame on average took 0.33 of the whole frames' time, the larger pyramid levels of a small crop
being gone; a limit of 0.5 made half the looks whole frames, 0.66 of the time.)"""
MIN_SIDE = 1 / 3
"""A region's smallest width and height, as a share of the frame's height (80 pixels of a 240-row frame:
hog-people's smallest window is 64)."""
MIN_PAD = 0.05
"""A region's smallest margin around a box, as a share of the frame's height; regions closer than this merge."""
MARGIN = (0.5, 0.25)
"""Margin around a box, as shares of its width (left and right) and height (above and below)."""

ALIGN = 16
"""Regions start and end on multiples of this many pixels: a detector that searches on a grid (HOG's window
stride, a CNN's feature stride) then sees the crop's part of the grid where it sees the whole frame's, and
finds what it finds there."""

Box = Sequence[float] | np.ndarray
"""x1, y1, x2, y2 in pixels of the frame."""
Region = tuple[int, int, int, int]
"""x1, y1, x2, y2 in whole pixels of the frame; x2 and y2 exclusive (a slice of the frame)."""


def plan(frame_size: tuple[int, int], moved: np.ndarray, known: np.ndarray) -> list[Region] | None:
    """The regions of a frame of ``frame_size`` (width, height) to look at: around the ``moved`` boxes and
    the ``known`` boxes (the last look's) they touch; None where the whole frame should be looked at instead
    (nothing moved in it, or too much did)."""
    if len(moved) == 0:
        return None
    width, height = frame_size
    pad = MIN_PAD * height
    boxes = [_grown(box, frame_size) for box in np.asarray(moved, np.float64)]
    pending = [np.asarray(box, np.float64) for box in known]
    while True:
        boxes = _merged(boxes, pad)
        touches = [any(_gap(box, region) < 0 for region in boxes) for box in pending]
        if not any(touches):
            break
        boxes += [_grown(box, frame_size) for box, touched in zip(pending, touches, strict=True) if touched]
        pending = [box for box, touched in zip(pending, touches, strict=True) if not touched]
    regions = [_pixels(box, frame_size) for box in boxes]
    if len(regions) > MAX_REGIONS or covered(regions) > WHOLE_SHARE * width * height:
        return None
    return regions


def covered(regions: Sequence[Region]) -> int:
    """Pixels of the frame that ``regions`` cover (they never overlap: ``plan`` merges those that do)."""
    return sum((x2 - x1) * (y2 - y1) for x1, y1, x2, y2 in regions)


def combine(found: Sequence[Detections], regions: Sequence[Region], last: Detections | None) -> Detections:
    """A frame's detections: ``found`` in each of ``regions`` (crop pixels), and the ``last`` look's outside
    every region; best first."""
    parts = []
    for detections, (x1, y1, _, _) in zip(found, regions, strict=True):
        boxes = detections.boxes + np.array([x1, y1, x1, y1], np.float32)
        parts.append(Detections(boxes.astype(np.float32), detections.scores, detections.labels))
    if last is not None and len(last):
        outside = np.array([all(_gap(box, region) >= 0 for region in regions) for box in last.boxes], bool)
        parts.append(Detections(last.boxes[outside], last.scores[outside], last.labels[outside]))
    if not parts:
        return Detections.empty()
    scores = np.concatenate([part.scores for part in parts]).astype(np.float32)
    order = np.argsort(-scores, kind="stable")
    boxes = np.concatenate([part.boxes for part in parts]).reshape(-1, 4).astype(np.float32)
    labels = np.concatenate([part.labels for part in parts]).astype(np.int32)
    return Detections(boxes[order], scores[order], labels[order])


def _grown(box: Box, frame_size: tuple[int, int]) -> np.ndarray:
    """``box`` with its margin, at least ``MIN_SIDE`` wide and tall, inside the frame."""
    width, height = frame_size
    x1, y1, x2, y2 = (float(v) for v in box)
    pad = MIN_PAD * height
    dx, dy = max(MARGIN[0] * (x2 - x1), pad), max(MARGIN[1] * (y2 - y1), pad)
    x1, y1, x2, y2 = x1 - dx, y1 - dy, x2 + dx, y2 + dy
    side = MIN_SIDE * height
    x1, x2 = _at_least(x1, x2, min(side, width), width)
    y1, y2 = _at_least(y1, y2, min(side, height), height)
    return np.array([max(x1, 0.0), max(y1, 0.0), min(x2, width), min(y2, height)])


def _at_least(low: float, high: float, side: float, limit: float) -> tuple[float, float]:
    """[low, high] widened about its centre to ``side``, then moved inside [0, limit]."""
    if high - low < side:
        centre = (low + high) / 2
        low, high = centre - side / 2, centre + side / 2
    if low < 0:
        low, high = 0.0, high - low
    if high > limit:
        low, high = low - (high - limit), limit
    return low, high


def _gap(a: Box, b: Box) -> float:
    """How far apart two boxes are (the larger of the horizontal and vertical gaps); negative: they overlap."""
    return max(a[0] - b[2], b[0] - a[2], a[1] - b[3], b[1] - a[3])


def _merged(boxes: list[np.ndarray], pad: float) -> list[np.ndarray]:
    """Boxes closer than ``pad`` merged into their bounding box, until none are."""
    boxes = list(boxes)
    merged = True
    while merged:
        merged = False
        for i in range(len(boxes)):
            for j in range(i + 1, len(boxes)):
                if _gap(boxes[i], boxes[j]) < pad:
                    a, b = boxes[i], boxes.pop(j)
                    boxes[i] = np.concatenate([np.minimum(a[:2], b[:2]), np.maximum(a[2:], b[2:])])
                    merged = True
                    break
            if merged:
                break
    return boxes


def _pixels(box: np.ndarray, frame_size: tuple[int, int]) -> Region:
    """``box`` widened to multiples of ``ALIGN`` pixels, inside the frame."""
    width, height = frame_size
    x1, y1 = (max(int(v // ALIGN) * ALIGN, 0) for v in box[:2])
    x2, y2 = (int(-(-v // ALIGN)) * ALIGN for v in box[2:])
    return x1, y1, min(x2, width), min(y2, height)
