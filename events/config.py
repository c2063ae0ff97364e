"""The settings of events, occupancy, snapshots and zones; each checks its own values."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from detectord.contract.names import check_name
from detectord.detection.geometry import polygon_problem


@dataclass(frozen=True)
class OccupancyConfig:
    """Occupancy ``ON`` once a person was seen in ``min_frames`` of the last ``window`` processed frames,
    ``OFF`` after ``off_after_s`` seconds without one: a single false box does not turn a light on, and a
    person the detector misses for a moment does not turn it off."""

    min_frames: int = 2
    window: int = 3
    off_after_s: float = 5.0

    def __post_init__(self) -> None:
        if not 1 <= self.window <= 100:
            raise ValueError(f"occupancy.window must be between 1 and 100 frames, got {self.window}")
        if not 1 <= self.min_frames <= self.window:
            raise ValueError(
                f"occupancy.min_frames must be between 1 and window ({self.window}), got {self.min_frames}"
            )
        if not 0 <= self.off_after_s <= 3600:
            raise ValueError(f"occupancy.off_after_s must be between 0 and 3600 seconds, got {self.off_after_s}")


@dataclass(frozen=True)
class SnapshotConfig:
    """The picture of an event: its best frame (highest score with the person wholly inside the frame)."""

    draw_box: bool = True
    """Draw the person's box on the snapshot."""
    crop: bool = False
    """Publish only the person and a margin around them instead of the whole frame."""
    crop_margin: float = 0.25
    """Margin of a crop around the box, as a fraction of the box's size."""
    jpeg_quality: int = 90

    def __post_init__(self) -> None:
        if not 0 <= self.crop_margin <= 4:
            raise ValueError(f"snapshot.crop_margin must be between 0 and 4, got {self.crop_margin}")
        if not 1 <= self.jpeg_quality <= 100:
            raise ValueError(f"snapshot.jpeg_quality must be between 1 and 100, got {self.jpeg_quality}")


@dataclass(frozen=True)
class TrackingConfig:
    """How people are followed from frame to frame (``detection.tracking.Tracker``); each part can be turned
    off, all three off being the plain greedy IoU tracker of earlier versions."""

    motion: bool = True
    """Predict where each person has moved (a Kalman filter) before matching."""
    second_pass: bool = True
    """Let a detection too weak to count keep a tracked person's identity (ByteTrack)."""
    groups: bool = True
    """Keep everyone a group box covers, without moving anyone onto it."""


@dataclass(frozen=True)
class EventsConfig:
    """Events per tracked person (``<prefix>/<camera>/events``) and the counts and occupancy built on them."""

    enabled: bool = True
    score_threshold: float | None = None
    """A detected person at least this confident counts; None: the detector family's (``Scores.events``:
    Faster R-CNN 0.5, hog-people 0.5, a margin of 0.69)."""
    min_frames: int | None = None
    """Processed frames a person must be seen in before its event starts: flickers make none. None: the
    detector family's (``Scores.event_frames``: Faster R-CNN 3, hog-people 5)."""
    end_after_s: float = 5.0
    """Seconds a person may go unseen before their event ends; seen again sooner, the same event goes on."""
    update_interval_s: float = 1.0
    """Shortest time between two ``update`` messages of one event (a better snapshot, other zones)."""
    match_iou: float = 0.2
    """Overlap linking a person to where a tracked person was last seen."""
    occupancy: OccupancyConfig = field(default_factory=OccupancyConfig)
    snapshot: SnapshotConfig = field(default_factory=SnapshotConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)

    def __post_init__(self) -> None:
        if self.score_threshold is not None and not 0.0 <= self.score_threshold <= 1.0:
            raise ValueError(f"events.score_threshold must be in [0, 1], got {self.score_threshold}")
        if self.min_frames is not None and not 1 <= self.min_frames <= 1000:
            raise ValueError(f"events.min_frames must be between 1 and 1000, got {self.min_frames}")
        for key, value in (("end_after_s", self.end_after_s), ("update_interval_s", self.update_interval_s)):
            if not 0 <= value <= 3600:
                raise ValueError(f"events.{key} must be between 0 and 3600 seconds, got {value}")
        if not 0.0 < self.match_iou <= 1.0:
            raise ValueError(f"events.match_iou must be in (0, 1], got {self.match_iou}")


@dataclass(frozen=True)
class ZoneConfig:
    """A named area of one camera's picture; a person is in it when the bottom centre of their box is."""

    name: str
    points: tuple[tuple[float, ...], ...]
    """The polygon's corners, [x, y] each, in pixels of the analysed frame, or 0..1 if ``normalized``."""
    normalized: bool = False

    def __post_init__(self) -> None:
        check_name(self.name, "zone")
        if len(self.points) < 3:
            raise ValueError(f"zone {self.name!r}: a polygon needs at least 3 points, got {len(self.points)}")
        for point in self.points:
            if len(point) != 2 or not all(math.isfinite(v) for v in point):
                raise ValueError(f"zone {self.name!r}: every point is [x, y], got {list(point)}")
            if self.normalized and not all(0.0 <= v <= 1.0 for v in point):
                raise ValueError(f"zone {self.name!r}: normalized points lie in 0..1, got {list(point)}")
        problem = polygon_problem(self.points)
        if problem:
            raise ValueError(f"zone {self.name!r}: the polygon {[list(p) for p in self.points]} {problem}")
