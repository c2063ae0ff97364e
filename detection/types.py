"""The vocabulary of detection that every process may speak, without torch.

Detections, what produced them, the main person and its settings: the
supervisor, the publisher and the writer handle these, and only the
inference process ever loads a model.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

PERSON = 1
"""The COCO id of a person, as torchvision's detection weights number it (and every detector here reports it)."""


@dataclass(frozen=True)
class Detections:
    """Detections of one frame, best score first.

    ``boxes`` (float32[N, 4]) are x1, y1, x2, y2 in pixels of the frame the
    detector was given; ``scores`` float32[N]; ``labels`` int32[N], COCO ids
    as torchvision numbers them (1 = person).
    """

    boxes: np.ndarray
    scores: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.scores)

    @classmethod
    def empty(cls) -> Detections:
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int32))


@dataclass(frozen=True)
class ModelInfo:
    """What produced a set of detections, as published with them."""

    name: str
    weights: str
    precision: str
    device: str
    profile: str
    reason: str = ""
    """Why this precision: ``asked for``, or what ``auto`` found on the device."""


class FrameDetector(Protocol):
    """Anything the inference stage can run: a real torchvision detector or a test double.

    A detector that can also look at parts of a frame (``detection/regions.py``) has
    ``detect_crops(crops, frame_size) -> list[Detections]``: each crop is a part of a frame of
    ``frame_size`` (width, height), searched at the scale that detector gives whole frames of that size (so
    a person is found in a crop as in the frame), its boxes in the crop's pixels. The inference stage looks
    for that method; without it, the model sees whole frames only.
    """

    info: ModelInfo
    categories: tuple[str, ...]

    def __call__(self, frames: Sequence[np.ndarray]) -> list[Detections]: ...


@dataclass(frozen=True)
class Scores:
    """What a detector family's scores mean: each family declares them (``registry.DETECTORS``), since a
    Faster R-CNN probability and hog-people's ``1 - exp(-margin)`` are different scales."""

    confident: float
    """A person the detector is sure of (a snapshot prefers one)."""
    main_person: float
    """The main person's default ``score_threshold``."""
    events: float
    """Events' and occupancy's default ``score_threshold``."""
    weak: float
    """Detections from this score, too weak to start a track, keep a tracked person's identity (ByteTrack's
    second pass)."""
    event_frames: int = 3
    """Events' default ``min_frames``: processed frames a person must be seen in before their event starts (a
    detector whose false persons last a few frames needs more)."""

    def threshold(self, configured: float | None, default: float) -> float:
        """A configured threshold, or the family's ``default`` when none is set."""
        return default if configured is None else configured


@dataclass(frozen=True)
class MainPersonConfig:
    score_threshold: float | None = None
    """Minimum score of a person to be a candidate; None: the detector family's (``Scores.main_person``:
    Faster R-CNN 0.9, the notebook's; hog-people 0.5)."""
    switch_ratio: float = 1.5
    """How many times larger (area) another person must be to take over."""
    switch_frames: int = 5
    """For how many consecutive frames that must hold."""
    max_gap: int = 10
    """Frames a track survives unseen (occlusion) before it is forgotten."""
    match_iou: float = 0.3
    """Minimum IoU linking a detection to a track of the previous frame."""

    def __post_init__(self) -> None:
        if self.score_threshold is not None and not 0.0 <= self.score_threshold <= 1.0:
            raise ValueError(f"main_person.score_threshold must be in [0, 1], got {self.score_threshold}")
        if self.switch_ratio < 1.0:
            raise ValueError(f"main_person.switch_ratio must be at least 1, got {self.switch_ratio}")
        if self.switch_frames < 1 or self.max_gap < 0:
            raise ValueError("main_person.switch_frames must be at least 1 and max_gap at least 0")
        if not 0.0 < self.match_iou <= 1.0:
            raise ValueError(f"main_person.match_iou must be in (0, 1], got {self.match_iou}")


@dataclass(frozen=True)
class MainPerson:
    """The main person of a frame; ``index`` points into that frame's detections."""

    index: int
    box: tuple[float, float, float, float]
    score: float
    track_id: int


def label_name(class_id: int, categories: tuple[str, ...]) -> str:
    """The category name of ``class_id``, or ``class_<id>`` for ids outside the table."""
    if 0 <= class_id < len(categories):
        return categories[class_id]
    return f"class_{class_id}"
