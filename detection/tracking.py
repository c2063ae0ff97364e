"""Boxes followed across frames, without torch: the main-person tracker and the event logic share it.

Both run where the model may not (the publisher never imports torch), so
the box arithmetic is NumPy: IoU and a greedy IoU
tracker that links each frame's boxes to the tracks of the frames before.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box in ``a`` [N, 4] with every box in ``b`` [M, 4] (x1, y1, x2, y2); 0 where both are empty."""
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    area_a = np.clip(a[:, 2] - a[:, 0], 0, None) * np.clip(a[:, 3] - a[:, 1], 0, None)
    area_b = np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)
    top_left = np.maximum(a[:, None, :2], b[None, :, :2])
    bottom_right = np.minimum(a[:, None, 2:], b[None, :, 2:])
    overlap = np.clip(bottom_right - top_left, 0, None).prod(axis=2)
    union = area_a[:, None] + area_b[None, :] - overlap
    return np.divide(overlap, union, out=np.zeros_like(overlap), where=union > 0)


@dataclass
class Track:
    """One object followed across frames."""

    track_id: int
    box: np.ndarray
    seen_at: float
    """When it was last matched (the caller's clock: a frame count or seconds)."""
    hits: int = 1
    missed: int = 0
    """Frames in a row it went unmatched."""
    detection: int | None = None
    """Its index in the latest frame's detections; None when that frame did not show it."""


class IouTracker:
    """Greedy IoU association: the best-overlapping pairs first, each track and box used once.

    ``alive(track, now)`` decides whether an unmatched track is still worth
    matching later (a number of frames for the main person, seconds for events).
    """

    def __init__(self, match_iou: float, alive: Callable[[Track, float], bool]) -> None:
        self.match_iou = match_iou
        self.alive = alive
        self.tracks: list[Track] = []
        self._ids = itertools.count(1)

    def update(self, boxes: np.ndarray, candidates: Sequence[int], now: float) -> list[Track]:
        """Match ``boxes[candidates]`` to the tracks; returns the tracks this frame shows, new ones included."""
        pairs: list[tuple[float, int, int]] = []
        if self.tracks and candidates:
            ious = box_iou(np.stack([track.box for track in self.tracks]), boxes[list(candidates)]).tolist()
            pairs = sorted(
                ((ious[t][j], t, i) for t in range(len(self.tracks)) for j, i in enumerate(candidates)),
                reverse=True,
            )
        for track in self.tracks:
            track.detection = None
        matched: set[int] = set()
        for iou, t, i in pairs:
            if iou < self.match_iou:
                break
            track = self.tracks[t]
            if track.detection is None and i not in matched:
                track.detection = i
                matched.add(i)
        survivors = []
        for track in self.tracks:
            if track.detection is not None:
                track.box = np.array(boxes[track.detection], np.float64)
                track.seen_at = now
                track.hits += 1
                track.missed = 0
                survivors.append(track)
            else:
                track.missed += 1
                if self.alive(track, now):
                    survivors.append(track)
        for i in candidates:
            if i not in matched:
                survivors.append(Track(next(self._ids), np.array(boxes[i], np.float64), now, detection=i))
        self.tracks = survivors
        return [track for track in survivors if track.detection is not None]

    def expire(self, now: float) -> list[Track]:
        """Drop the unmatched tracks ``alive`` gives up on at ``now`` (no frame needed); returns them."""
        gone = [track for track in self.tracks if track.detection is None and not self.alive(track, now)]
        self.tracks = [track for track in self.tracks if track not in gone]
        return gone
