"""The "main" person of each frame, followed across frames.

Per frame, the candidates are the confident persons (label person, score at
least ``score_threshold``). A light IoU tracker links candidates to the tracks
of earlier frames, so every person keeps a ``track_id`` while visible and
through short gaps. The tracker *follows* one track:

* at the start, or once the followed person has been gone for more than
  ``max_gap`` frames, it follows the largest visible person;
* it keeps following that person while another is merely bigger; it switches
  only when another is at least ``switch_ratio`` times larger (box area) for
  ``switch_frames`` consecutive frames, so a passer-by near the camera does
  not steal the role for a frame or two;
* while the followed person is hidden (occlusion, a missed detection), the
  frame's main person is the largest visible one, without changing whom the
  tracker follows; when the followed person reappears within ``max_gap``
  frames it is the main person again, with the same ``track_id``.

A frame without a confident person has no main person (None), never an error.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np
import torch
from torchvision.ops import box_iou

from .labels import PERSON
from .types import Detections, MainPerson, MainPersonConfig


@dataclass
class _Track:
    track_id: int
    box: np.ndarray
    missed: int = 0
    challenge: int = 0
    detection: int | None = field(default=None)


def _area(box: np.ndarray) -> float:
    return float(max(0.0, box[2] - box[0]) * max(0.0, box[3] - box[1]))


class MainPersonTracker:
    """Feed it every processed frame's detections, in order."""

    def __init__(self, config: MainPersonConfig | None = None) -> None:
        self.config = config or MainPersonConfig()
        self._tracks: list[_Track] = []
        self._ids = itertools.count(1)
        self._followed: _Track | None = None

    def update(self, detections: Detections) -> MainPerson | None:
        cfg = self.config
        candidates = [
            i
            for i in range(len(detections))
            if detections.labels[i] == PERSON and detections.scores[i] >= cfg.score_threshold
        ]
        visible = self._associate(detections.boxes, candidates)
        if self._followed is not None and self._followed not in self._tracks:
            self._followed = None
        if not visible:
            return None
        largest = max(visible, key=lambda t: _area(t.box))
        if self._followed is None:
            self._followed = largest
        elif self._followed.detection is not None:
            self._challenge(visible)
        main = self._followed if self._followed.detection is not None else largest
        index = main.detection
        assert index is not None
        box = detections.boxes[index]
        return MainPerson(
            index=index,
            box=(float(box[0]), float(box[1]), float(box[2]), float(box[3])),
            score=float(detections.scores[index]),
            track_id=main.track_id,
        )

    def _associate(self, boxes: np.ndarray, candidates: list[int]) -> list[_Track]:
        """Greedy IoU matching of this frame's candidates to live tracks; returns the visible tracks."""
        pairs: list[tuple[float, int, int]] = []
        if self._tracks and candidates:
            ious = box_iou(
                torch.from_numpy(np.stack([track.box for track in self._tracks]).astype(np.float64)),
                torch.from_numpy(boxes[candidates].astype(np.float64)),
            )
            ious = torch.nan_to_num(ious, nan=0.0).tolist()  # two empty boxes: 0/0
            pairs = sorted(
                ((ious[t][j], t, i) for t in range(len(self._tracks)) for j, i in enumerate(candidates)),
                reverse=True,
            )
        for track in self._tracks:
            track.detection = None
        matched_detections: set[int] = set()
        for iou, t, i in pairs:
            track = self._tracks[t]
            if iou < self.config.match_iou:
                break
            if track.detection is None and i not in matched_detections:
                track.detection = i
                matched_detections.add(i)
        survivors = []
        for track in self._tracks:
            if track.detection is not None:
                track.box = boxes[track.detection].copy()
                track.missed = 0
                survivors.append(track)
            elif track.missed < self.config.max_gap:
                track.missed += 1
                track.challenge = 0
                survivors.append(track)
        for i in candidates:
            if i not in matched_detections:
                survivors.append(_Track(next(self._ids), boxes[i].copy(), detection=i))
        self._tracks = survivors
        return [t for t in survivors if t.detection is not None]

    def _challenge(self, visible: list[_Track]) -> None:
        followed = self._followed
        assert followed is not None
        threshold = self.config.switch_ratio * _area(followed.box)
        winner: _Track | None = None
        for track in visible:
            if track is followed:
                continue
            track.challenge = track.challenge + 1 if _area(track.box) >= threshold else 0
            if track.challenge >= self.config.switch_frames and (
                winner is None or _area(track.box) > _area(winner.box)
            ):
                winner = track
        if winner is not None:
            self._followed = winner
            for track in self._tracks:
                track.challenge = 0
