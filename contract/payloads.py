"""Every payload of the contract: one builder for the producer, one validator for consumers.

Builders return plain dicts ready for ``json.dumps``; validators take the raw
bytes from the network, enforce size limits, check every field they pass on
and rebuild the message from checked fields only, raising ``Malformed`` with
the reason otherwise. JSON payloads carry ``"v"``: a consumer refuses a
version it does not speak instead of misreading it.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NotRequired, TypedDict

VERSION = 1
ONLINE = "online"
OFFLINE = "offline"

MAX_JSON_BYTES = 256 * 1024
MAX_JPEG_BYTES = 8 * 1024 * 1024
MAX_DETECTIONS = 1000
MAX_MOTION = 64
REASONS = ("motion", "tracking", "keepalive", "ungated", "idle")
MAX_TEXT = 256
MAX_DEPTH = 32
"""Deepest nesting of arrays and objects a JSON payload may have (the contract's go 4 deep): deeper ones are
refused before parsing, whose recursion they would exhaust."""
_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"')
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
TIMESTAMPS = ("capture", "inference_start", "inference_end", "publish")
MODEL_KEYS = ("name", "precision", "device")


class Malformed(ValueError):
    """A message that breaks the contract; the text says how."""


class DetectionJson(TypedDict):
    label: str
    class_id: int
    score: float
    box: list[float]
    """x1, y1, x2, y2 in pixels of the published frame."""


class MainPersonJson(TypedDict):
    index: int | None
    """Which of ``detections`` is the main person. A v1 publisher written before ``index`` existed
    leaves it out: the reader finds the detection with the main person's box, or says None."""
    box: list[float]
    score: float
    track_id: int


class InferenceJson(TypedDict):
    ran: bool
    """Whether the model ran on this frame; when not, ``detections`` are those of the last frame it ran on."""
    reason: str
    """``motion``, ``tracking`` (a person was there: re-checked), ``keepalive``, ``ungated`` (motion gating is
    off), or ``idle`` (the model did not run: nothing moved)."""
    regions: NotRequired[list[list[float]]]
    """Where in the frame the model looked (boxes) when it looked at parts of it only; elsewhere the last look's
    detections stand. Absent: it looked at the whole frame (or did not run)."""


class DetectionsMessage(TypedDict):
    """A ``detections`` message as ``parse_detections`` returns it: every field checked."""

    camera: str
    frame_id: int
    size: list[int]
    ts: dict[str, float]
    model: dict[str, str]
    detections: list[DetectionJson]
    main_person: MainPersonJson | None
    inference: InferenceJson | None
    """Added to v1 compatibly (as ``motion``): None from a publisher that predates motion gating."""
    motion: list[list[float]] | None
    """Where the picture moved (boxes); None where motion is not computed."""


@dataclass(frozen=True)
class Detection:
    label: str
    class_id: int
    score: float
    box: tuple[float, float, float, float]
    """x1, y1, x2, y2 in pixels of the published frame."""


def _box_json(box: Sequence[float]) -> list[float]:
    return [round(float(v), 2) for v in box]


def detection_json(detection: Detection) -> DetectionJson:
    return {
        "label": detection.label,
        "class_id": detection.class_id,
        "score": round(float(detection.score), 4),
        "box": _box_json(detection.box),
    }


def main_person_json(detections: Sequence[Detection], main: tuple[int, int] | None) -> MainPersonJson | None:
    """The main person as the payload names it: its place in ``detections``, its box and score again, its track."""
    if main is None:
        return None
    index, track_id = main
    chosen = detections[index]
    return {"index": index, "box": _box_json(chosen.box), "score": round(chosen.score, 4), "track_id": track_id}


# -- builders -----------------------------------------------------------------------


def build_detections(
    *,
    camera: str,
    frame_id: int,
    size: tuple[int, int],
    ts: Mapping[str, float],
    model: Mapping[str, str],
    detections: Sequence[Detection],
    main_person: tuple[int, int] | None,
    inference: InferenceJson | None = None,
    motion: Sequence[Sequence[float]] | None = None,
) -> dict[str, Any]:
    """``<prefix>/<camera>/detections``: one frame. ``size`` is (width, height).

    ``main_person`` is (index into ``detections``, track id), or None. ``inference`` says whether the model
    ran on the frame and why; ``motion`` where the picture moved (None: not computed).
    """
    optional: dict[str, Any] = {}
    if inference is not None:
        optional["inference"] = {"ran": bool(inference["ran"]), "reason": str(inference["reason"])}
        if "regions" in inference:
            optional["inference"]["regions"] = [_box_json(box) for box in inference["regions"]]
    if motion is not None:
        optional["motion"] = [_box_json(box) for box in motion]
    return optional | {
        "v": VERSION,
        "camera": camera,
        "frame_id": frame_id,
        "size": list(size),
        "ts": {key: ts[key] for key in TIMESTAMPS},
        "model": {key: str(model[key]) for key in MODEL_KEYS},
        "detections": [detection_json(d) for d in detections],
        "main_person": main_person_json(detections, main_person),
    }


def frame_properties(frame_id: int) -> dict[str, Any]:
    """MQTT 5 properties of ``<prefix>/<camera>/frame``: what pairs the JPEG with its detections."""
    return {"content_type": "image/jpeg", "user_property": [("frame_id", str(frame_id))]}


# -- validators -----------------------------------------------------------------------


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise Malformed(f"{what} is not a finite number")
    return float(value)


def _integer(value: Any, what: str, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise Malformed(f"{what} is not an integer of at least {minimum}")
    return value


def _optional_number(value: Any, what: str) -> float | None:
    return None if value is None else _number(value, what)


def _text(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise Malformed(f"{what} is not a string")
    return value[:MAX_TEXT]


def _object(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise Malformed(f"{what} is not a JSON object")
    return value


def _box(value: Any, what: str) -> list[float]:
    if not isinstance(value, list) or len(value) != 4:
        raise Malformed(f"{what} is not [x1, y1, x2, y2]")
    return [_number(v, what) for v in value]


def _nesting(payload: bytes) -> int:
    """How deep the arrays and objects of a JSON text nest (brackets inside strings do not count)."""
    if payload.count(b"[") + payload.count(b"{") <= MAX_DEPTH:
        return 0
    brackets = _JSON_STRING.sub(b"", payload).translate(None, _NOT_BRACKETS)
    depth = deepest = 0
    for byte in brackets:
        depth += 1 if byte in b"[{" else -1
        deepest = max(deepest, depth)
    return deepest


def _json_object(payload: bytes, what: str) -> dict[str, Any]:
    if len(payload) > MAX_JSON_BYTES:
        raise Malformed(f"{what} of {len(payload)} bytes is over the {MAX_JSON_BYTES}-byte limit")
    if _nesting(payload) > MAX_DEPTH:
        raise Malformed(f"{what} nests deeper than {MAX_DEPTH} levels")
    try:
        data = json.loads(payload)
    except (ValueError, UnicodeDecodeError) as exc:
        raise Malformed(f"{what} is not JSON ({exc})") from None
    data = _object(data, what)
    if data.get("v") != VERSION:
        raise Malformed(f"{what} has payload version {str(data.get('v'))[:16]}; this reader speaks {VERSION}")
    return data


def _size(value: Any) -> list[int]:
    """A frame size, ``[width, height]`` in pixels."""
    if not (isinstance(value, list) and len(value) == 2 and all(_integer(v, "size", 1) for v in value)):
        raise Malformed("size is not [width, height]")
    return value


def parse_detections(payload: bytes) -> DetectionsMessage:
    """A detections message, rebuilt from checked fields only (nothing else is passed on)."""
    data = _json_object(payload, "detections")
    size = _size(data.get("size"))
    ts = _object(data.get("ts"), "ts")
    items = data.get("detections")
    if not isinstance(items, list) or len(items) > MAX_DETECTIONS:
        raise Malformed(f"detections is not a list (of at most {MAX_DETECTIONS})")
    checked: list[DetectionJson] = []
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("label"), str):
            raise Malformed("a detection has no label")
        checked.append(
            {
                "label": item["label"][:64],
                "class_id": _integer(item.get("class_id"), "class_id"),
                "score": _number(item.get("score"), "score"),
                "box": _box(item.get("box"), "box"),
            }
        )
    main = data.get("main_person")
    model = data.get("model")
    if not isinstance(model, dict):
        model = {}
    return {
        "camera": _text(data.get("camera"), "camera"),
        "frame_id": _integer(data.get("frame_id"), "frame_id"),
        "size": size,
        "ts": {k: _number(v, f"ts.{k}") for k, v in ts.items() if k in TIMESTAMPS},
        "model": {k: str(v)[:64] for k, v in model.items() if k in MODEL_KEYS},
        "detections": checked,
        "main_person": None if main is None else _main_person(main, checked),
        "inference": _inference(data.get("inference")),
        "motion": _motion(data.get("motion")),
    }


def _inference(value: Any) -> InferenceJson | None:
    if value is None:
        return None
    inference = _object(value, "inference")
    if not isinstance(inference.get("ran"), bool) or inference.get("reason") not in REASONS:
        raise Malformed(f"inference is not {{ran: true|false, reason: {'|'.join(REASONS)}}}")
    checked: InferenceJson = {"ran": inference["ran"], "reason": inference["reason"]}
    regions = inference.get("regions")
    if regions is not None:
        if not isinstance(regions, list) or len(regions) > MAX_MOTION:
            raise Malformed(f"inference.regions is not a list of boxes (at most {MAX_MOTION})")
        checked["regions"] = [_box(box, "inference.regions") for box in regions]
    return checked


def _motion(value: Any) -> list[list[float]] | None:
    if value is None:
        return None
    if not isinstance(value, list) or len(value) > MAX_MOTION:
        raise Malformed(f"motion is not a list of boxes (at most {MAX_MOTION})")
    return [_box(box, "motion") for box in value]


def _main_person(value: Any, detections: list[DetectionJson]) -> MainPersonJson:
    """``main_person``; without ``index`` (v1 as first published) it is the detection with the same box."""
    main = _object(value, "main_person")
    box = _box(main.get("box"), "main_person.box")
    index = main.get("index")
    if "index" not in main:
        index = next((i for i, detection in enumerate(detections) if detection["box"] == box), None)
    elif isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(detections):
        raise Malformed("main_person.index does not point into detections")
    return {
        "index": index,
        "box": box,
        "score": _number(main.get("score"), "main_person.score"),
        "track_id": _integer(main.get("track_id"), "main_person.track_id", minimum=-1),
    }


def parse_frame(payload: bytes, properties: Mapping[str, Any]) -> tuple[int, bytes]:
    """(frame_id, JPEG bytes) of a frame message."""
    if len(payload) > MAX_JPEG_BYTES:
        raise Malformed(f"frame of {len(payload)} bytes is over the {MAX_JPEG_BYTES}-byte limit")
    if not payload.startswith(b"\xff\xd8"):
        raise Malformed("frame is not a JPEG")
    for key, value in properties.get("user_property", ()):
        if key == "frame_id" and isinstance(value, str) and value.isdigit():
            return int(value), payload
    raise Malformed("frame has no frame_id user property")


def parse_status(payload: bytes) -> str:
    text = payload.decode("utf-8", errors="replace").strip()
    if text not in (ONLINE, OFFLINE):
        raise Malformed(f"status {text[:32]!r} is neither {ONLINE} nor {OFFLINE}")
    return text
