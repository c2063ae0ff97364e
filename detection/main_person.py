"""The "main" person of each frame, followed across frames.

Per frame, the candidates are the confident persons (label person, score at
least ``score_threshold``, by default the detector family's). The tracker
(``tracking.Tracker``: motion prediction, a second pass on weaker boxes,
group boxes) links them to the tracks of earlier frames, so every person
keeps a ``track_id`` while visible and through short gaps; a person seen
only weakly in a frame keeps their identity but is no candidate then. The
tracker *follows* one track:

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

from .registry import PROBABILITIES
from .tracking import Track, Tracker
from .types import PERSON, Detections, MainPerson, MainPersonConfig, Scores


def _area(box: np.ndarray) -> float:
    return float(max(0.0, box[2] - box[0]) * max(0.0, box[3] - box[1]))


class MainPersonTracker:
    """Feed it every processed frame's detections, in order, with the frame's time in seconds.

    ``scores`` says what the detector's scores mean (``registry.Family.scores``): the threshold defaults to
    its ``main_person``, and its ``weak`` boxes keep identities.
    """

    def __init__(self, config: MainPersonConfig | None = None, scores: Scores = PROBABILITIES) -> None:
        self.config = config or MainPersonConfig()
        self.threshold = scores.threshold(self.config.score_threshold, scores.main_person)
        self.weak = min(scores.weak, self.threshold)
        self._tracker = Tracker(self.config.match_iou, lambda track, now: track.missed <= self.config.max_gap)
        self._challenge_frames: dict[int, int] = {}
        self._followed: Track | None = None

    def update(self, detections: Detections, now: float) -> MainPerson | None:
        persons = [i for i in range(len(detections)) if detections.labels[i] == PERSON]
        candidates = [i for i in persons if detections.scores[i] >= self.threshold]
        weak = [i for i in persons if self.weak <= detections.scores[i] < self.threshold]
        shown = self._tracker.update(detections.boxes, candidates, now, weak)
        visible = [track for track in shown if track.detection in candidates]
        live = {track.track_id for track in self._tracker.tracks}
        self._challenge_frames = {track.track_id: self._challenge_frames.get(track.track_id, 0) for track in visible}
        if self._followed is not None and self._followed.track_id not in live:
            self._followed = None
        if not visible:
            return None
        largest = max(visible, key=lambda t: _area(t.box))
        if self._followed is None:
            self._followed = largest
        elif self._followed in visible:
            self._challenge(visible)
        main = self._followed if self._followed in visible else largest
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
