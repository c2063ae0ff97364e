"""Payloads of what happens in front of a camera: events, person counts, occupancy, zones, snapshots.

``events`` is JSON with ``"v"`` like the other JSON payloads. Counts and
occupancy are plain text (``3``, ``ON``/``OFF``) so that Home Assistant and
simple scripts read them as they are. A snapshot is a JPEG with the
``frame_id`` user property, like a frame (``parse_frame`` reads both).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypedDict

from .names import is_valid_name
from .payloads import VERSION, Malformed, _box, _box_json, _integer, _json_object, _number, _object, _size, _text

EVENT_TYPES = ("new", "update", "end")
ON = "ON"
OFF = "OFF"
MAX_ZONES = 64
MAX_POINTS = 256


class EventMessage(TypedDict):
    """One message of one person's event: what ``build_event`` takes and ``parse_event`` returns."""

    type: str
    """``new``, ``update`` or ``end``."""
    id: str
    """The same in every message of one event."""
    camera: str
    label: str
    track_id: int
    start_time: float
    end_time: float | None
    """Set exactly when the event ends; never before ``start_time``."""
    score: float
    top_score: float
    box: Sequence[float]
    current_zones: Sequence[str]
    entered_zones: Sequence[str]
    snapshot_frame_id: int | None
    snapshot_box: Sequence[float] | None
    """Where the person is in that snapshot (pixels of the published frame): a viewer crops its thumbnail
    there. Added to v1 compatibly: a reader that does not know it ignores it, and a message without it reads
    as None."""


class ZonesMessage(TypedDict):
    camera: str
    size: list[int]
    zones: dict[str, list[list[float]]]
    motion_mask: list[list[list[float]]]
    """Added to v1 compatibly: an older publisher's message reads as no mask."""


def build_event(
    *,
    type: str,
    id: str,
    camera: str,
    label: str,
    track_id: int,
    start_time: float,
    end_time: float | None,
    score: float,
    top_score: float,
    box: Sequence[float],
    current_zones: Sequence[str],
    entered_zones: Sequence[str],
    snapshot_frame_id: int | None,
    snapshot_box: Sequence[float] | None = None,
) -> dict[str, Any]:
    """``<prefix>/<camera>/events``: one message of one person's event; ``id`` is the same in all of them."""
    return {
        "v": VERSION,
        "type": type,
        "id": id,
        "camera": camera,
        "label": label,
        "track_id": track_id,
        "start_time": round(start_time, 3),
        "end_time": None if end_time is None else round(end_time, 3),
        "score": round(score, 4),
        "top_score": round(top_score, 4),
        "box": _box_json(box),
        "current_zones": list(current_zones),
        "entered_zones": list(entered_zones),
        "snapshot_frame_id": snapshot_frame_id,
        "snapshot_box": None if snapshot_box is None else _box_json(snapshot_box),
    }


def _zone_list(value: Any, what: str) -> list[str]:
    if not isinstance(value, list) or len(value) > MAX_ZONES or not all(is_valid_name(v) for v in value):
        raise Malformed(f"{what} is not a list of zone names")
    return value


def parse_event(payload: bytes) -> EventMessage:
    data = _json_object(payload, "event")
    if data.get("type") not in EVENT_TYPES:
        raise Malformed(f"event type {str(data.get('type'))[:16]!r} is none of {', '.join(EVENT_TYPES)}")
    end_time = data.get("end_time")
    if (end_time is None) != (data["type"] != "end"):
        raise Malformed("end_time is set exactly when the event ends")
    snapshot = data.get("snapshot_frame_id")
    start_time = _number(data.get("start_time"), "start_time")
    if end_time is not None and _number(end_time, "end_time") < start_time:
        raise Malformed("end_time is before start_time")
    return {
        "type": data["type"],
        "id": _text(data.get("id"), "id")[:64],
        "camera": _text(data.get("camera"), "camera"),
        "label": _text(data.get("label"), "label")[:64],
        "track_id": _integer(data.get("track_id"), "track_id"),
        "start_time": start_time,
        "end_time": None if end_time is None else _number(end_time, "end_time"),
        "score": _number(data.get("score"), "score"),
        "top_score": _number(data.get("top_score"), "top_score"),
        "box": _box(data.get("box"), "box"),
        "current_zones": _zone_list(data.get("current_zones"), "current_zones"),
        "entered_zones": _zone_list(data.get("entered_zones"), "entered_zones"),
        "snapshot_frame_id": None if snapshot is None else _integer(snapshot, "snapshot_frame_id"),
        "snapshot_box": None if data.get("snapshot_box") is None else _box(data["snapshot_box"], "snapshot_box"),
    }


def count_payload(count: int) -> str:
    """``<prefix>/<camera>/person`` and ``…/zones/<zone>/person`` (retained): how many people are there."""
    return str(count)


def parse_count(payload: bytes) -> int:
    text = payload.decode("ascii", errors="replace").strip()
    if not text.isdigit() or len(text) > 6:
        raise Malformed(f"person count {text[:16]!r} is not a number")
    return int(text)


def occupancy_payload(on: bool) -> str:
    """``<prefix>/<camera>/occupancy`` and ``…/zones/<zone>/occupancy`` (retained): ``ON`` or ``OFF``."""
    return ON if on else OFF


def parse_occupancy(payload: bytes) -> bool:
    text = payload.decode("ascii", errors="replace").strip()
    if text not in (ON, OFF):
        raise Malformed(f"occupancy {text[:16]!r} is neither {ON} nor {OFF}")
    return text == ON


def build_zones(
    camera: str,
    size: tuple[int, int],
    zones: Mapping[str, Sequence[Sequence[float]]],
    motion_mask: Sequence[Sequence[Sequence[float]]] = (),
) -> dict[str, Any]:
    """``<prefix>/<camera>/zones`` (retained): the camera's zones, and the polygons where its motion is
    ignored, in pixels of its ``size`` (width, height) frames, so that a viewer can draw them."""
    return {
        "v": VERSION,
        "camera": camera,
        "size": list(size),
        "zones": {name: [[float(x), float(y)] for x, y in points] for name, points in zones.items()},
        "motion_mask": [[[float(x), float(y)] for x, y in polygon] for polygon in motion_mask],
    }


def parse_zones(payload: bytes) -> ZonesMessage:
    data = _json_object(payload, "zones")
    size = _size(data.get("size"))
    zones = _object(data.get("zones"), "zones")
    if len(zones) > MAX_ZONES:
        raise Malformed(f"more than {MAX_ZONES} zones")
    checked = {}
    for name, points in zones.items():
        if not is_valid_name(name):
            raise Malformed("a zone's name breaks the name rule")
        checked[name] = _polygon(points, f"zone {name}")
    mask = data.get("motion_mask", [])
    if not isinstance(mask, list) or len(mask) > MAX_ZONES:
        raise Malformed("motion_mask is not a list of polygons")
    return {
        "camera": _text(data.get("camera"), "camera"),
        "size": size,
        "zones": checked,
        "motion_mask": [_polygon(polygon, "motion_mask") for polygon in mask],
    }


def _polygon(points: Any, what: str) -> list[list[float]]:
    if not isinstance(points, list) or not 3 <= len(points) <= MAX_POINTS:
        raise Malformed(f"{what}: not a polygon")
    return [[_number(v, what) for v in _pair(point, what)] for point in points]


def _pair(point: Any, what: str) -> list[Any]:
    if not isinstance(point, list) or len(point) != 2:
        raise Malformed(f"{what}: a point is not [x, y]")
    return point
