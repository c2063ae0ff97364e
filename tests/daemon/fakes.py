"""A test double for the detector: finds the one bright rectangle the synthetic videos draw.

Only the tests construct it (through ``bright_box_factory``, handed to
``analyze`` from Python); the command line has no way to reach it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

import cv2
import numpy as np

from detectord.daemon.config import ModelConfig
from detectord.detection import Detections, ModelInfo

PERSON = 1


class BrightBoxDetector:
    info = ModelInfo(name="bright-box", weights="none", precision="fp32", device="cpu", profile="test")
    categories = ("__background__", "person")

    def __call__(self, frames: Sequence[np.ndarray]) -> list[Detections]:
        out = []
        for frame in frames:
            ys, xs = np.nonzero(frame.min(axis=2) > 200)
            if xs.size == 0:
                out.append(Detections.empty())
                continue
            box = np.array([[xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]], np.float32)
            out.append(Detections(box, np.array([0.99], np.float32), np.array([PERSON], np.int32)))
        return out


def bright_box_factory(config: ModelConfig, frame_size: tuple[int, int]) -> BrightBoxDetector:
    return BrightBoxDetector()


class BlobDetector(BrightBoxDetector):
    """Every bright rectangle is a person: the scripted videos of the event tests draw several, or one for a
    single frame."""

    info = ModelInfo(name="bright-blobs", weights="none", precision="fp32", device="cpu", profile="test")

    def __call__(self, frames: Sequence[np.ndarray]) -> list[Detections]:
        out = []
        for frame in frames:
            mask = (frame.min(axis=2) > 200).astype(np.uint8)
            count, _, stats, _ = cv2.connectedComponentsWithStats(mask)
            blobs = [s for s in stats[1:count] if s[cv2.CC_STAT_AREA] >= 50]
            if not blobs:
                out.append(Detections.empty())
                continue
            boxes = np.array([[x, y, x + w, y + h] for x, y, w, h, _ in blobs], np.float32)
            out.append(Detections(boxes, np.full(len(boxes), 0.99, np.float32), np.full(len(boxes), PERSON, np.int32)))
        return out


class RegionBlobDetector(BlobDetector):
    """The blob detector that also looks at parts of frames (regions): the same rectangles, crop pixels."""

    def detect_crops(self, crops: Sequence[np.ndarray], frame_size: tuple[int, int]) -> list[Detections]:
        return self(crops)


def blob_factory(config: ModelConfig, frame_size: tuple[int, int]) -> BlobDetector:
    return BlobDetector()


def region_blob_factory(config: ModelConfig, frame_size: tuple[int, int]) -> RegionBlobDetector:
    return RegionBlobDetector()


def failing_factory(config: ModelConfig, frame_size: tuple[int, int]) -> BrightBoxDetector:
    raise RuntimeError("this detector cannot be built")


class StuckDetector(BrightBoxDetector):
    """Answers three frames, then never returns: what a wedged driver looks like from outside."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, frames: Sequence[np.ndarray]) -> list[Detections]:
        self.calls += 1
        if self.calls > 3:
            threading.Event().wait()
        return super().__call__(frames)


def stuck_factory(config: ModelConfig, frame_size: tuple[int, int]) -> StuckDetector:
    return StuckDetector()


class SlowDetector(BrightBoxDetector):
    """A tenth of a second per call, whatever the batch: inference is the bottleneck, as on a real CPU."""

    def __call__(self, frames: Sequence[np.ndarray]) -> list[Detections]:
        time.sleep(0.1)
        return super().__call__(frames)


def slow_factory(config: ModelConfig, frame_size: tuple[int, int]) -> SlowDetector:
    return SlowDetector()
