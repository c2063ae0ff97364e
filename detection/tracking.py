"""Boxes followed across frames, without torch: the main-person tracker and the event logic share it.

Both run where the model may not (the publisher never imports torch), so the
tracker is NumPy. It is ByteTrack's association (Zhang et al., 2022) on
SORT's motion model (Bewley et al., 2016), with time in seconds because the
processed frame rate of a live camera varies (0.5 to 15 frames a second):

* **motion**: each track's box (centre, width, height) and their velocities
  are a Kalman filter's state, predicted to the frame's time before matching,
  so a walking person's box is looked for where they went, not where they were;
* **reach**: a confident detection left unmatched (a walker seen at 2 frames
  a second, whose boxes of two frames barely overlap; a person back from
  behind a pillar) is matched by distance to a track left unmatched, within
  how far a person walks in the time between the two frames;
* **two passes**: confident detections are matched to the tracks first; then
  the detections too weak to start a track (``low`` ≤ score < ``high``) are
  matched to the tracks still unmatched, so a person the detector is briefly
  unsure of keeps their identity;
* **groups**: a detection that covers two or more tracks' predicted boxes
  (two people walking close together, boxed as one) keeps all of them alive
  without moving any of them, instead of dragging one onto the group;
* **gaps**: an unmatched track lives on while the caller's ``alive(track,
  now)`` says so (a number of frames for the main person, seconds for events).

Matching is greedy on IoU (best pairs first): a few people per camera do
not need the Hungarian algorithm's optimality, and it needs no SciPy.
``motion``, ``second_pass`` and ``groups`` can be turned off, which gives
back the plain greedy IoU tracker this one replaced (``bench/events.py``
compares the two).

A library was the first choice: Roboflow's ``trackers`` (which took over
``supervision``'s ByteTrack, gone from supervision 0.31) requires the plain
``opencv-python`` wheel, which would replace the OpenCV contrib build
detectord runs, and brings ``supervision`` with PyAV and Matplotlib; this
module is its association logic in NumPy.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

POSITION_NOISE = 0.05
"""Kalman process noise: how far (fraction of the box's height, per second) a box may move unexplained."""
VELOCITY_NOISE = 0.2
"""Kalman process noise on the velocities (fraction of height per second, per second)."""
MEASUREMENT_NOISE = 0.05
"""How far (fraction of the box's height) a detected box may be from where the person is."""
GROUP_COVER = 0.6
"""A detection is a group box when it covers this share of two or more tracks' predicted boxes ..."""
GROUP_SIZE = 1.3
"""... and is at least this many times as large as each of them (two people crossing, each boxed alone,
overlap as much, but neither box is larger than a person)."""
REACH = 1.0
"""How far (in the track's box heights per second, at least half a height and at most ``MAX_REACH``) a person
may have gone between two frames to be matched by distance when the boxes no longer overlap enough: a walker
moves about 0.8 heights a second, so at 2 processed frames a second their boxes barely overlap."""
MAX_REACH = 1.5
"""Beyond this many heights, someone who appears is someone else, however long the track was unseen."""
SAME_SIZE = 1.5
"""Boxes matched by distance differ in height by at most this factor."""


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box in ``a`` [N, 4] with every box in ``b`` [M, 4] (x1, y1, x2, y2); 0 where both are empty."""
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    overlap = _overlap(a, b)
    union = _area(a)[:, None] + _area(b)[None, :] - overlap
    return np.divide(overlap, union, out=np.zeros_like(overlap), where=union > 0)


def _area(boxes: np.ndarray) -> np.ndarray:
    return np.clip(boxes[:, 2] - boxes[:, 0], 0, None) * np.clip(boxes[:, 3] - boxes[:, 1], 0, None)


def _centre(box: np.ndarray) -> np.ndarray:
    return np.array([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2])


def _overlap(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    top_left = np.maximum(a[:, None, :2], b[None, :, :2])
    bottom_right = np.minimum(a[:, None, 2:], b[None, :, 2:])
    return np.asarray(np.clip(bottom_right - top_left, 0, None).prod(axis=2))


class BoxFilter:
    """A constant-velocity Kalman filter of one box: state (cx, cy, w, h) and their rates, in seconds."""

    def __init__(self, box: np.ndarray, now: float) -> None:
        x1, y1, x2, y2 = (float(v) for v in box)
        self.state = np.array([(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1, 0, 0, 0, 0], np.float64)
        size = max(y2 - y1, 1.0)
        self.covariance = np.diag(np.square([size * 0.1] * 4 + [size] * 4))
        self.time = now

    def predict(self, now: float) -> np.ndarray:
        """The box (x1, y1, x2, y2) at ``now``; the filter moves to that time."""
        dt = max(now - self.time, 0.0)
        if dt > 0:
            motion = np.eye(8)
            motion[:4, 4:] = dt * np.eye(4)
            size = max(self.state[3], 1.0)
            noise = np.diag(np.square([POSITION_NOISE * size] * 4 + [VELOCITY_NOISE * size] * 4)) * dt
            self.state = motion @ self.state
            self.state[2:4] = np.maximum(self.state[2:4], 1.0)
            self.covariance = motion @ self.covariance @ motion.T + noise
            self.time = now
        return self.box

    def correct(self, box: np.ndarray) -> None:
        """Take the detected ``box`` (at the filter's time) into account."""
        x1, y1, x2, y2 = (float(v) for v in box)
        measured = np.array([(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1])
        noise = np.diag(np.square([MEASUREMENT_NOISE * max(y2 - y1, 1.0)] * 4))
        projected = self.covariance[:4, :4] + noise
        gain = self.covariance[:, :4] @ np.linalg.inv(projected)
        self.state = self.state + gain @ (measured - self.state[:4])
        self.covariance = self.covariance - gain @ self.covariance[:4, :]

    @property
    def box(self) -> np.ndarray:
        cx, cy, w, h = self.state[:4]
        return np.array([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])


@dataclass(eq=False)
class Track:
    """One object followed across frames (compared by identity)."""

    track_id: int
    box: np.ndarray
    """Where it was last seen (the detection's box), or, where ``motion`` is on, where it is predicted."""
    seen_at: float
    """When it was last matched or covered by a group box (seconds, or the caller's frame clock)."""
    hits: int = 1
    """Frames it was matched in."""
    missed: int = 0
    """Frames in a row it went unmatched (a group box does not count as a match)."""
    detection: int | None = None
    """Its index in the latest frame's detections; None when that frame did not show it on its own."""
    motion: BoxFilter | None = field(default=None, repr=False)


class Tracker:
    """Feed it every processed frame's boxes, in order, with the frame's time; it says which tracks each shows.

    ``match_iou``: the overlap linking a detection to a track's (predicted)
    box. ``alive(track, now)`` decides whether an unmatched track is still
    worth matching later.
    """

    def __init__(
        self,
        match_iou: float,
        alive: Callable[[Track, float], bool],
        *,
        motion: bool = True,
        second_pass: bool = True,
        groups: bool = True,
    ) -> None:
        self.match_iou = match_iou
        self.alive = alive
        self.motion = motion
        self.second_pass = second_pass
        self.groups = groups
        self.tracks: list[Track] = []
        self._ids = itertools.count(1)
        self._groups: set[int] = set()
        """This frame's detections that are group boxes: a track matched to one is seen there, not moved there."""

    def update(self, boxes: np.ndarray, confident: Sequence[int], now: float, weak: Sequence[int] = ()) -> list[Track]:
        """Match ``boxes[confident]`` (then ``boxes[weak]``, which start no track) to the tracks at time ``now``;
        returns the tracks this frame shows, new ones included."""
        boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
        for track in self.tracks:
            track.detection = None
            if track.motion is not None:
                track.box = track.motion.predict(now)
        unmatched = self._match(self.tracks, boxes, list(confident), self.match_iou)
        if self.motion and unmatched:
            unmatched = self._reach([t for t in self.tracks if t.detection is None], boxes, unmatched, now)
        self._groups = self._keep_grouped(boxes, list(confident), now) if self.groups else set()
        if self.second_pass and weak:
            leftover = [track for track in self.tracks if track.detection is None]
            self._match(leftover, boxes, list(weak), max(self.match_iou, 0.5))
        survivors = []
        for track in self.tracks:
            if track.detection is not None:
                self._seen(track, boxes[track.detection], now)
                survivors.append(track)
            else:
                track.missed += 1
                if self.alive(track, now):
                    survivors.append(track)
        for i in unmatched:
            track = Track(next(self._ids), boxes[i].copy(), now, detection=i)
            if self.motion:
                track.motion = BoxFilter(boxes[i], now)
            survivors.append(track)
        self.tracks = survivors
        return [track for track in survivors if track.detection is not None]

    def expire(self, now: float) -> list[Track]:
        """Drop the tracks ``alive`` gives up on at ``now``, when time passes without a frame (a camera whose
        frames the model skips: nothing moved); returns them."""
        gone = [track for track in self.tracks if not self.alive(track, now)]
        self.tracks = [track for track in self.tracks if track not in gone]
        return gone

    def _match(self, tracks: list[Track], boxes: np.ndarray, candidates: list[int], threshold: float) -> list[int]:
        """Greedy IoU matching of ``tracks`` and ``boxes[candidates]``; the candidates left unmatched."""
        if not tracks or not candidates:
            return candidates
        ious = box_iou(np.stack([track.box for track in tracks]), boxes[candidates])
        taken: set[int] = set()
        for flat in np.argsort(-ious, axis=None, kind="stable"):
            t, j = divmod(int(flat), len(candidates))
            if ious[t, j] < threshold:
                break
            if tracks[t].detection is None and candidates[j] not in taken:
                tracks[t].detection = candidates[j]
                taken.add(candidates[j])
        return [i for i in candidates if i not in taken]

    def _reach(self, tracks: list[Track], boxes: np.ndarray, candidates: list[int], now: float) -> list[int]:
        """Match by distance what overlap could not: nearest pairs first, each within its track's reach."""
        pairs = []
        for t, track in enumerate(tracks):
            height = max(float(track.box[3] - track.box[1]), 1.0)
            reach = min(MAX_REACH, max(0.5, REACH * (now - track.seen_at))) * height
            for i in candidates:
                ratio = float(boxes[i][3] - boxes[i][1]) / height
                distance = float(np.hypot(*(_centre(boxes[i]) - _centre(track.box))))
                if distance <= reach and 1 / SAME_SIZE <= ratio <= SAME_SIZE:
                    pairs.append((distance / height, t, i))
        taken: set[int] = set()
        for _, t, i in sorted(pairs):
            if tracks[t].detection is None and i not in taken:
                tracks[t].detection = i
                taken.add(i)
        return [i for i in candidates if i not in taken]

    def _keep_grouped(self, boxes: np.ndarray, confident: list[int], now: float) -> set[int]:
        """The group boxes among ``boxes[confident]``: each covers two or more tracks, which are all seen there
        (the unmatched ones too) and none of which is moved there. Returns their indices."""
        if len(self.tracks) < 2 or not confident:
            return set()
        predicted = np.stack([track.box for track in self.tracks])
        areas = np.maximum(_area(predicted), 1e-9)
        covered = _overlap(predicted, boxes[confident]) / areas[:, None]
        larger = _area(boxes[confident])[None, :] >= GROUP_SIZE * areas[:, None]
        groups = set()
        for j, i in enumerate(confident):
            inside = np.flatnonzero((covered[:, j] >= GROUP_COVER) & larger[:, j])
            if len(inside) >= 2:
                groups.add(i)
                for t in inside:
                    self.tracks[t].seen_at = now
        return groups

    def _seen(self, track: Track, box: np.ndarray, now: float) -> None:
        if track.detection in self._groups:
            pass  # where the group is says little of where this one person is: the prediction stands
        elif track.motion is not None:
            track.motion.correct(box)
            track.box = track.motion.box
        else:
            track.box = np.array(box, np.float64)
        track.seen_at = now
        track.hits += 1
        track.missed = 0
