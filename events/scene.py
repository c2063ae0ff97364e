"""One camera's scene: confident persons followed into events, with counts, occupancy and snapshots.

A person becomes an event once seen in ``min_frames`` processed frames
(``new``); the event is ``update``d when its best snapshot improves or its
zones change, at most every ``update_interval_s``; it ends (``end``) when
the person has gone unseen for ``end_after_s``. The person count of the
camera, and of each zone, is the number of events going on (in the zone:
whose person last stood in it); occupancy follows its own rule
(``Occupancy``), on every confident person of each frame.

Time is the capture time of the frames (seconds since the epoch), so what
happens does not depend on how late the frames are processed; ``tick``
lets time pass when no frame comes.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from detectord.contract.scene import EventMessage
from detectord.detection.tracking import Track, Tracker
from detectord.detection.types import PERSON, Detections, Scores

from .config import EventsConfig
from .occupancy import Occupancy
from .snapshots import render, snapshot_quality
from .zones import Zone, foot_point, zones_at


@dataclass(frozen=True)
class EventUpdate:
    """One message of an event (``detectord.contract.build_event`` takes its fields), and the snapshot it names
    when it is the first message to name it: the snapshot goes out first."""

    message: EventMessage
    snapshot: bytes | None = field(default=None, repr=False)


@dataclass
class SceneChanges:
    """What one frame (or the passing of time) changed; None and empty mean unchanged."""

    events: list[EventUpdate] = field(default_factory=list)
    count: int | None = None
    occupancy: bool | None = None
    zone_counts: dict[str, int] = field(default_factory=dict)
    zone_occupancy: dict[str, bool] = field(default_factory=dict)


@dataclass
class _Event:
    id: str
    track: Track
    start_time: float
    score: float = 0.0
    top_score: float = 0.0
    box: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)
    zones: tuple[str, ...] = ()
    entered: list[str] = field(default_factory=list)
    best: tuple[bool, bool, float, float] = (False, False, -1.0, -1.0)
    """``snapshot_quality`` of the best snapshot so far."""
    snapshot: tuple[int, bytes, tuple[float, float, float, float]] | None = None
    """(frame id, JPEG, the person's box in that frame) of the best snapshot."""
    published_snapshot: int | None = None
    started: bool = False
    """``new`` was sent."""
    sent_at: float = 0.0
    changed: bool = False
    """Something an ``update`` would report changed since the last message."""


class Scene:
    """Feed it every processed frame of one camera, in order (``observe``), and the time when none comes
    (``tick``); it returns what changed."""

    def __init__(
        self, camera: str, frame_size: tuple[int, int], zones: Sequence[Zone], config: EventsConfig, *, scores: Scores
    ) -> None:
        """``scores``: what the detector's scores mean (``detection.scores_of``); the threshold defaults to its
        ``events``, its ``weak`` boxes keep identities, and a snapshot prefers a ``confident`` person."""
        self.camera = camera
        self.frame_size = frame_size
        self.zones = tuple(zones)
        self.config = config
        self.scores = scores
        self.threshold = scores.threshold(config.score_threshold, scores.events)
        self.weak = min(scores.weak, self.threshold)
        self.min_frames = config.min_frames or scores.event_frames
        self.occupancy = Occupancy(config.occupancy)
        self.zone_occupancy = {zone.name: Occupancy(config.occupancy) for zone in self.zones}
        self.count = 0
        self.zone_counts = dict.fromkeys((zone.name for zone in self.zones), 0)
        tracking = config.tracking
        self._tracker = Tracker(
            config.match_iou, self._alive, motion=tracking.motion, second_pass=tracking.second_pass,
            groups=tracking.groups,
        )  # fmt: skip
        self._events: dict[int, _Event] = {}
        self.last_time = float("-inf")

    def _alive(self, track: Track, now: float) -> bool:
        return now - track.seen_at <= self.config.end_after_s

    def observe(self, frame_id: int, now: float, detections: Detections, pixels: np.ndarray) -> SceneChanges:
        """One processed frame taken at ``now``; ``pixels`` (BGR), the frame the detections were found on at
        detection size or larger (the camera's full frame), is only read, for a snapshot."""
        self.last_time = now
        changes = SceneChanges()
        self._end(self._tracker.expire(now), changes)
        persons = [i for i in range(len(detections)) if detections.labels[i] == PERSON]
        candidates = [i for i in persons if detections.scores[i] >= self.threshold]
        weak = [i for i in persons if self.weak <= detections.scores[i] < self.threshold]
        for track in self._tracker.update(detections.boxes, candidates, now, weak):
            assert track.detection is not None
            box = detections.boxes[track.detection]
            self._see(track, box, float(detections.scores[track.detection]), frame_id, now, pixels, changes)
        self._flush(now, changes)
        self._occupancy(now, [detections.boxes[i] for i in candidates], changes)
        self._counts(changes)
        return changes

    def tick(self, now: float) -> SceneChanges:
        """Time passes without a frame: events end, occupancy turns off, held-back updates go out."""
        self.last_time = now
        changes = SceneChanges()
        self._end(self._tracker.expire(now), changes)
        self._flush(now, changes)
        turned = self.occupancy.tick(now)
        if turned is not None:
            changes.occupancy = turned
        for name, occupancy in self.zone_occupancy.items():
            turned = occupancy.tick(now)
            if turned is not None:
                changes.zone_occupancy[name] = turned
        self._counts(changes)
        return changes

    def close(self) -> SceneChanges:
        """The daemon stops: every event going on ends now, and occupancy is off (a retained ``ON`` would
        outlive the daemon that could turn it off)."""
        changes = SceneChanges()
        self._end([event.track for event in self._events.values()], changes)
        changes.occupancy = self.occupancy.clear()
        for name, occupancy in self.zone_occupancy.items():
            if occupancy.clear() is not None:
                changes.zone_occupancy[name] = False
        self._counts(changes)
        return changes

    # -- events ----------------------------------------------------------------------

    def _see(
        self,
        track: Track,
        box: np.ndarray,
        score: float,
        frame_id: int,
        now: float,
        pixels: np.ndarray,
        changes: SceneChanges,
    ) -> None:
        """The person of ``track`` seen in this frame at ``box`` (the detection's)."""
        event = self._events.get(track.track_id)
        if event is None:
            event = _Event(f"{now:.6f}-{uuid.uuid4().hex[:6]}", track, start_time=now)
            self._events[track.track_id] = event
        event.score = score
        event.top_score = max(event.top_score, score)
        event.box = (float(box[0]), float(box[1]), float(box[2]), float(box[3]))
        zones = zones_at(self.zones, event.box)
        if zones != event.zones:
            event.zones = zones
            event.entered += [name for name in zones if name not in event.entered]
            event.changed = True
        quality = snapshot_quality(event.box, score, self.frame_size, self.scores.confident)
        if quality > event.best:
            event.best = quality
            event.snapshot = (frame_id, render(pixels, event.box, self.config.snapshot, self.frame_size), event.box)
            event.changed = True
        if not event.started and track.hits >= self.min_frames:
            event.started = True
            self._send(event, "new", now, changes)

    def _flush(self, now: float, changes: SceneChanges) -> None:
        for event in self._events.values():
            if event.started and event.changed and now - event.sent_at >= self.config.update_interval_s:
                self._send(event, "update", now, changes)

    def _end(self, tracks: Sequence[Track], changes: SceneChanges) -> None:
        for track in tracks:
            event = self._events.pop(track.track_id, None)
            if event is not None and event.started:
                self._send(event, "end", track.seen_at, changes, end_time=track.seen_at)

    def _send(self, event: _Event, kind: str, now: float, changes: SceneChanges, end_time: float | None = None) -> None:
        snapshot_id, jpeg, snapshot_box = event.snapshot if event.snapshot is not None else (None, None, None)
        if snapshot_id == event.published_snapshot:
            jpeg = None
        event.published_snapshot = snapshot_id
        message: EventMessage = {
            "type": kind,
            "id": event.id,
            "camera": self.camera,
            "label": "person",
            "track_id": event.track.track_id,
            "start_time": event.start_time,
            "end_time": end_time,
            "score": event.score,
            "top_score": event.top_score,
            "box": event.box,
            "current_zones": event.zones,
            "entered_zones": tuple(event.entered),
            "snapshot_frame_id": snapshot_id,
            "snapshot_box": snapshot_box,
        }
        changes.events.append(EventUpdate(message, jpeg))
        event.sent_at = now
        event.changed = False

    # -- counts and occupancy ----------------------------------------------------------

    def _occupancy(self, now: float, boxes: Sequence[np.ndarray], changes: SceneChanges) -> None:
        turned = self.occupancy.observe(bool(boxes), now)
        if turned is not None:
            changes.occupancy = turned
        feet = [foot_point(box) for box in boxes]
        for zone in self.zones:
            turned = self.zone_occupancy[zone.name].observe(any(zone.contains(p) for p in feet), now)
            if turned is not None:
                changes.zone_occupancy[zone.name] = turned

    def _counts(self, changes: SceneChanges) -> None:
        going_on = [event for event in self._events.values() if event.started]
        if len(going_on) != self.count:
            self.count = changes.count = len(going_on)
        for zone in self.zones:
            inside = sum(zone.name in event.zones for event in going_on)
            if inside != self.zone_counts[zone.name]:
                self.zone_counts[zone.name] = changes.zone_counts[zone.name] = inside
