"""Checking what arrives over MQTT before anything else touches it.

Every payload comes from the network: it is parsed with size limits and
checked field by field against the contract in DESIGN.md, and anything that
does not fit raises ``Malformed`` with the reason (logged and skipped by the
caller, never fatal).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any

MAX_JSON_BYTES = 256 * 1024
MAX_JPEG_BYTES = 8 * 1024 * 1024
MAX_DETECTIONS = 1000
CAMERA_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
KINDS = ("detections", "frame", "status", "stats")


class Malformed(ValueError):
    """A message that breaks the contract; the text says how."""


@dataclass(frozen=True)
class Topic:
    camera: str
    kind: str


def parse_topic(topic: str, prefix: str) -> Topic:
    head, _, rest = topic.partition("/")
    parts = rest.split("/") if head == prefix else []
    if len(parts) != 2 or parts[1] not in KINDS or not CAMERA_RE.match(parts[0]):
        raise Malformed(f"unexpected topic {topic!r}")
    return Topic(parts[0], parts[1])


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise Malformed(f"{what} is not a finite number")
    return float(value)


def _box(value: Any, what: str) -> list[float]:
    if not isinstance(value, list) or len(value) != 4:
        raise Malformed(f"{what} is not [x1, y1, x2, y2]")
    return [_number(v, what) for v in value]


def _json(payload: bytes, what: str) -> Any:
    if len(payload) > MAX_JSON_BYTES:
        raise Malformed(f"{what} of {len(payload)} bytes is over the {MAX_JSON_BYTES}-byte limit")
    try:
        return json.loads(payload)
    except (ValueError, UnicodeDecodeError) as exc:
        raise Malformed(f"{what} is not JSON ({exc})") from None


def detections(payload: bytes) -> dict[str, Any]:
    """A detections message, re-built from checked fields only (nothing else is passed on)."""
    data = _json(payload, "detections")
    if not isinstance(data, dict):
        raise Malformed("detections is not a JSON object")
    frame_id = data.get("frame_id")
    if isinstance(frame_id, bool) or not isinstance(frame_id, int) or frame_id < 0:
        raise Malformed("frame_id is not a non-negative integer")
    size = data.get("size")
    if not (isinstance(size, list) and len(size) == 2 and all(isinstance(v, int) and v > 0 for v in size)):
        raise Malformed("size is not [width, height]")
    ts = data.get("ts")
    if not isinstance(ts, dict):
        raise Malformed("ts is not an object")
    items = data.get("detections")
    if not isinstance(items, list) or len(items) > MAX_DETECTIONS:
        raise Malformed("detections is not a list (of at most 1000)")
    checked = []
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("label"), str):
            raise Malformed("a detection has no label")
        checked.append(
            {
                "label": item["label"][:64],
                "class_id": int(_number(item.get("class_id"), "class_id")),
                "score": _number(item.get("score"), "score"),
                "box": _box(item.get("box"), "box"),
            }
        )
    main = data.get("main_person")
    if main is not None:
        if not isinstance(main, dict):
            raise Malformed("main_person is neither null nor an object")
        main = {
            "box": _box(main.get("box"), "main_person.box"),
            "score": _number(main.get("score"), "main_person.score"),
            "track_id": int(_number(main.get("track_id"), "main_person.track_id")),
        }
    model = data.get("model") if isinstance(data.get("model"), dict) else {}
    return {
        "frame_id": frame_id,
        "size": size,
        "ts": {
            k: _number(v, f"ts.{k}")
            for k, v in ts.items()
            if k in ("capture", "inference_start", "inference_end", "publish")
        },
        "model": {k: str(v)[:64] for k, v in model.items() if k in ("name", "precision", "device")},
        "detections": checked,
        "main_person": main,
    }


def frame(payload: bytes, properties: dict[str, Any]) -> tuple[int, bytes]:
    """(frame_id, JPEG bytes) of a frame message."""
    if len(payload) > MAX_JPEG_BYTES:
        raise Malformed(f"frame of {len(payload)} bytes is over the {MAX_JPEG_BYTES}-byte limit")
    if not payload.startswith(b"\xff\xd8"):
        raise Malformed("frame is not a JPEG")
    for key, value in properties.get("user_property", ()):
        if key == "frame_id" and value.isdigit():
            return int(value), payload
    raise Malformed("frame has no frame_id user property")


def status(payload: bytes) -> str:
    text = payload.decode("utf-8", errors="replace").strip()
    if text not in ("online", "offline"):
        raise Malformed(f"status {text[:32]!r} is neither online nor offline")
    return text


def stats(payload: bytes) -> dict[str, Any]:
    data = _json(payload, "stats")
    if not isinstance(data, dict):
        raise Malformed("stats is not a JSON object")
    return data
