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

import numpy as np

from .tracking import IouTracker, Track
from .types import PERSON, Detections, MainPerson, MainPersonConfig


def _area(box: np.ndarray) -> float:
    return float(max(0.0, box[2] - box[0]) * max(0.0, box[3] - box[1]))


class MainPersonTracker:
    """Feed it every processed frame's detections, in order."""

    def __init__(self, config: MainPersonConfig | None = None) -> None:
        self.config = config or MainPersonConfig()
        self._tracker = IouTracker(self.config.match_iou, lambda track, now: track.missed <= self.config.max_gap)
        self._challenge_frames: dict[int, int] = {}
        self._followed: Track | None = None

    def update(self, detections: Detections) -> MainPerson | None:
        cfg = self.config
        candidates = [
            i
            for i in range(len(detections))
            if detections.labels[i] == PERSON and detections.scores[i] >= cfg.score_threshold
        ]
        visible = self._tracker.update(detections.boxes, candidates, 0.0)
        live = {track.track_id for track in self._tracker.tracks}
        self._challenge_frames = {track.track_id: self._challenge_frames.get(track.track_id, 0) for track in visible}
        if self._followed is not None and self._followed.track_id not in live:
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

    def _challenge(self, visible: list[Track]) -> None:
        followed = self._followed
        assert followed is not None
        threshold = self.config.switch_ratio * _area(followed.box)
        winner: Track | None = None
        for track in visible:
            if track is followed:
                continue
            frames = self._challenge_frames[track.track_id] + 1 if _area(track.box) >= threshold else 0
            self._challenge_frames[track.track_id] = frames
            if frames >= self.config.switch_frames and (winner is None or _area(track.box) > _area(winner.box)):
                winner = track
        if winner is not None:
            self._followed = winner
            self._challenge_frames = dict.fromkeys(self._challenge_frames, 0)
