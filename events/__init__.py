"""What happened in front of a camera: people followed into events, occupancy, counts, zones, snapshots.

Knows nothing of processes or MQTT: detections of processed frames in (with
the frame's pixels, for snapshots), scene changes out, which the publish
stage turns into messages of ``detectord.contract``. NumPy and OpenCV only,
no torch: it runs in the publisher.
"""

from .config import EventsConfig, OccupancyConfig, SnapshotConfig, TrackingConfig, ZoneConfig
from .occupancy import Occupancy
from .scene import EventUpdate, Scene, SceneChanges
from .zones import Zone, resolve_zones

__all__ = [
    "EventUpdate",
    "EventsConfig",
    "Occupancy",
    "OccupancyConfig",
    "Scene",
    "SceneChanges",
    "SnapshotConfig",
    "TrackingConfig",
    "Zone",
    "ZoneConfig",
    "resolve_zones",
]
