"""``hog-people``: OpenCV's built-in HOG pedestrian detector, for machines that cannot download weights.

Its linear SVM (Dalal and Triggs, 2005) is compiled into OpenCV, so it needs
no file and no network, and it needs no torch either. It is far less
accurate than Faster R-CNN: upright, mostly whole people only, missed when
small, sitting, occluded or seen from above, and some false boxes on
railings and trees. It is here so that detectord shows real person boxes,
events and occupancy on real footage wherever it is installed.

What it does to a frame:

* every frame is resized to ``ANALYSIS_HEIGHT`` (480) pixels tall before the
  search, whatever its size: the detector's window is 64x128 pixels, so the
  smallest person it finds is 128/480 = 27% of the frame's height (64 pixels
  of a 427x240 frame, which is upscaled 2x); larger frames are shrunk, which
  keeps the cost per frame the same (about 60 ms on one 2-vCPU machine);
* OpenCV searches an image pyramid (scale step 1.05) and groups its hits;
* each hit is the detection *window*, which holds the person with a margin:
  Dalal and Triggs' 64x128 window has "about 16 pixels of margin around the
  person on all four sides", so the person is its central 32x96 pixels. The
  box reported is that part (``WINDOW_MARGIN``: a quarter of the width on
  each side, an eighth of the height above and below), not the window, which
  was about twice a person's width;
* boxes that still overlap are merged (non-maximum suppression: IoU at
  least ``MERGE_IOU``, or one box nearly inside a better one), on the fitted
  boxes, so two people side by side stay two;
* the SVM's margin ``m`` (≥ 0 for a hit, unbounded above) becomes a score
  in 0..1 as ``1 - exp(-m)``: 0.5 is a margin of 0.69, 0.9 a margin of 2.3.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from detectord.detection.errors import ModelOptionError
from detectord.detection.registry import DetectorOptions
from detectord.detection.tracking import box_iou
from detectord.detection.types import PERSON, Detections, ModelInfo

ANALYSIS_HEIGHT = 480
"""Frames are searched at this height: the 128-pixel window is then a person 27% of the frame tall."""
WINDOW = (64, 128)
"""The detection window (width, height) in search pixels: nothing smaller is searched."""
WINDOW_MARGIN = (0.25, 0.125)
"""The detection window's margin around the person, as fractions of its width and height (each side)."""
MERGE_IOU = 0.5
"""Two fitted boxes are the same person when their IoU reaches this ..."""
INSIDE = 0.8
"""... or when this much of the smaller one lies inside the other."""
CATEGORIES = ("__background__", "person")
"""Label 1 is a person, as in torchvision's COCO numbering, so the rest of detectord needs no special case."""


def margin_to_score(margin: np.ndarray) -> np.ndarray:
    return (1.0 - np.exp(-np.clip(margin, 0.0, None))).astype(np.float32)


def _overlap_of_smaller(box: np.ndarray, others: np.ndarray) -> np.ndarray:
    top_left = np.maximum(box[:2], others[:, :2])
    bottom_right = np.minimum(box[2:], others[:, 2:])
    overlap = np.clip(bottom_right - top_left, 0, None).prod(axis=1)
    area = (box[2:] - box[:2]).prod()
    areas = (others[:, 2:] - others[:, :2]).prod(axis=1)
    return overlap / np.maximum(np.minimum(area, areas), 1e-9)


def merge_overlapping(boxes: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Indices of the boxes kept, best first: each drops the weaker boxes that are the same person (IoU at least
    ``MERGE_IOU``, or ``INSIDE`` of the smaller within it)."""
    order = np.argsort(-scores, kind="stable")
    keep: list[int] = []
    while order.size:
        best = int(order[0])
        keep.append(best)
        rest = order[1:]
        same = (box_iou(boxes[best : best + 1], boxes[rest])[0] >= MERGE_IOU) | (
            _overlap_of_smaller(boxes[best], boxes[rest]) >= INSIDE
        )
        order = rest[~same]
    return np.array(keep, np.int64)


def fit_to_person(windows: np.ndarray) -> np.ndarray:
    """The person inside each detection window (x1, y1, x2, y2): the window less its margin (``WINDOW_MARGIN``)."""
    width = windows[:, 2] - windows[:, 0]
    height = windows[:, 3] - windows[:, 1]
    dx, dy = WINDOW_MARGIN[0] * width, WINDOW_MARGIN[1] * height
    return np.stack([windows[:, 0] + dx, windows[:, 1] + dy, windows[:, 2] - dx, windows[:, 3] - dy], axis=1)


def check(options: DetectorOptions) -> None:
    """What ``hog-people`` accepts: built-in weights, the CPU, float32."""
    if options.weights != "default":
        raise ModelOptionError("weights", "hog-people's weights are built into OpenCV; leave weights at 'default'")
    if options.device not in ("auto", "cpu"):
        raise ModelOptionError("device", f"hog-people runs on the CPU only, not {options.device!r}")
    if options.precision not in ("fp32", "auto"):
        raise ModelOptionError("precision", f"hog-people has one precision, fp32 (or auto), not {options.precision!r}")


def load(options: DetectorOptions, frame_size: tuple[int, int]) -> HogPeopleDetector:
    check(options)
    if options.threads:
        cv2.setNumThreads(options.threads)
    return HogPeopleDetector(frame_size, options.score_threshold)


def calibrate(options: DetectorOptions, frames: object, frame_size: tuple[int, int], source: str) -> dict[str, object]:
    """Nothing to calibrate: hog-people has one precision."""
    raise ModelOptionError("name", "hog-people runs in float32 only; there is no int8 version to calibrate")


def weights_unavailable(options: DetectorOptions) -> str | None:
    """Never: the weights are compiled into OpenCV."""
    return None


class HogPeopleDetector:
    """Persons in BGR uint8 frames; the same interface as the torchvision detectors (``FrameDetector``)."""

    categories: tuple[str, ...] = CATEGORIES

    def __init__(self, frame_size: tuple[int, int], score_threshold: float | None = None) -> None:
        width, height = frame_size
        scale = ANALYSIS_HEIGHT / height
        self.search_size = (max(WINDOW[0], round(width * scale)), ANALYSIS_HEIGHT)
        self.score_threshold = score_threshold or 0.0
        self.info = ModelInfo(
            name="hog-people", weights="built-in", precision="fp32", device="cpu", profile="default",
            reason="hog-people runs in float32",
        )  # fmt: skip
        self._hog = cv2.HOGDescriptor()
        self._hog.setSVMDetector(np.asarray(cv2.HOGDescriptor.getDefaultPeopleDetector(), np.float32))

    def __call__(self, frames: Sequence[np.ndarray]) -> list[Detections]:
        return [self._detect(frame, self.search_size) for frame in frames]

    def detect_crops(self, crops: Sequence[np.ndarray], frame_size: tuple[int, int]) -> list[Detections]:
        """Parts of frames of ``frame_size``, each searched at the scale its whole frame would be: the same
        person is the same number of search pixels tall in the crop as in the frame."""
        scale = ANALYSIS_HEIGHT / frame_size[1]
        found = []
        for crop in crops:
            height, width = crop.shape[:2]
            search = (round(width * scale), round(height * scale))
            fits = search[0] >= WINDOW[0] and search[1] >= WINDOW[1]
            found.append(self._detect(crop, search) if fits else Detections.empty())
        return found

    def _detect(self, frame: np.ndarray, search_size: tuple[int, int]) -> Detections:
        height, width = frame.shape[:2]
        interpolation = cv2.INTER_LINEAR if search_size[1] >= height else cv2.INTER_AREA
        search = cv2.resize(np.ascontiguousarray(frame), search_size, interpolation=interpolation)
        rects, margins = self._hog.detectMultiScale(search, winStride=(8, 8), padding=(8, 8), scale=1.05)
        if len(rects) == 0:
            return Detections.empty()
        found = np.asarray(rects, np.float32).reshape(-1, 4)
        boxes = fit_to_person(np.concatenate([found[:, :2], found[:, :2] + found[:, 2:]], axis=1))
        boxes[:, [0, 2]] *= width / search_size[0]
        boxes[:, [1, 3]] *= height / search_size[1]
        boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, width)
        boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, height)
        scores = margin_to_score(np.asarray(margins, np.float32).reshape(-1))
        keep = merge_overlapping(boxes, scores)
        keep = keep[scores[keep] >= self.score_threshold]
        return Detections(boxes[keep], scores[keep], np.full(len(keep), PERSON, np.int32))
