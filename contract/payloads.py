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
from typing import Any, TypedDict

VERSION = 1
ONLINE = "online"
OFFLINE = "offline"

MAX_JSON_BYTES = 256 * 1024
MAX_JPEG_BYTES = 8 * 1024 * 1024
MAX_DETECTIONS = 1000
MAX_TEXT = 256
MAX_DEPTH = 32
"""Deepest nesting of arrays and objects a JSON payload may have (the contract's go 4 deep): deeper ones are
refused before parsing, whose recursion they would exhaust."""
_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"')
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
TIMESTAMPS = ("capture", "inference_start", "inference_end", "publish")
MODEL_KEYS = ("name", "precision", "device")
PERCENTILES = ("p50_ms", "p90_ms", "p99_ms")


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


class DetectionsMessage(TypedDict):
    """A ``detections`` message as ``parse_detections`` returns it: every field checked."""

    camera: str
    frame_id: int
    size: list[int]
    ts: dict[str, float]
    model: dict[str, str]
    detections: list[DetectionJson]
    main_person: MainPersonJson | None


class ProcessUsage(TypedDict):
    pid: int | None
    cpu_percent: float | None
    rss_mb: float | None
    uss_mb: float | None


class StageStats(ProcessUsage):
    fps: float
    frames: int
    restarts: int
    status: str


class MqttStats(TypedDict):
    connected: bool
    connections: int
    sent: int


class StatsMessage(TypedDict):
    """A ``stats`` message as ``parse_stats`` returns it: every field checked."""

    camera: str
    host: str
    ts: float
    uptime_s: float
    source: dict[str, str]
    stages: dict[str, StageStats]
    drops: dict[str, int]
    latency: dict[str, dict[str, float] | None]
    mqtt: MqttStats
    supervisor: ProcessUsage
    device: dict[str, Any]


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
) -> dict[str, Any]:
    """``<prefix>/<camera>/detections``: one processed frame. ``size`` is (width, height).

    ``main_person`` is (index into ``detections``, track id), or None.
    """
    return {
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


def build_stats(
    *,
    camera: str,
    host: str,
    ts: float,
    uptime_s: float,
    source_status: str,
    stages: Mapping[str, Mapping[str, Any]],
    drops: Mapping[str, int],
    latency: Mapping[str, Mapping[str, float] | None],
    mqtt: Mapping[str, Any],
    supervisor: Mapping[str, Any],
    device: Mapping[str, Any],
) -> dict[str, Any]:
    """``<prefix>/<camera>/stats`` (retained): rates, drops, latencies, the connection, and the device.

    ``host`` is the machine the camera's daemon runs on: camera names are
    unique across every host publishing to one broker. ``device``: the CPU
    (``cpu``, ``cpu_flags``), and the model's ``name``, ``precision``,
    ``device`` and ``reason`` (why that precision) once inference has loaded it.
    """
    return {
        "v": VERSION,
        "camera": camera,
        "host": host,
        "ts": ts,
        "uptime_s": round(uptime_s, 1),
        "source": {"status": source_status},
        "stages": {name: dict(stage) for name, stage in stages.items()},
        "drops": dict(drops),
        "latency": {name: dict(p) if p is not None else None for name, p in latency.items()},
        "mqtt": dict(mqtt),
        "supervisor": dict(supervisor),
        "device": dict(device),
    }


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
    }


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


def _process(what: str, value: Any) -> ProcessUsage:
    """pid and resources of one process (a stage, or the supervisor)."""
    process = _object(value, what)
    pid = process.get("pid")
    return {
        "pid": None if pid is None else _integer(pid, f"{what}.pid", 1),
        "cpu_percent": _optional_number(process.get("cpu_percent"), f"{what}.cpu_percent"),
        "rss_mb": _optional_number(process.get("rss_mb"), f"{what}.rss_mb"),
        "uss_mb": _optional_number(process.get("uss_mb"), f"{what}.uss_mb"),
    }


def _stage(name: str, value: Any) -> StageStats:
    what = f"stages.{name}"
    stage = _object(value, what)
    usage = _process(what, stage)
    return {
        "fps": _number(stage.get("fps"), f"{what}.fps"),
        "frames": _integer(stage.get("frames"), f"{what}.frames"),
        "restarts": _integer(stage.get("restarts"), f"{what}.restarts"),
        "status": _text(stage.get("status", ""), f"{what}.status"),
        "pid": usage["pid"],
        "cpu_percent": usage["cpu_percent"],
        "rss_mb": usage["rss_mb"],
        "uss_mb": usage["uss_mb"],
    }


def _percentiles(name: str, value: Any) -> dict[str, float] | None:
    if value is None:
        return None
    p = _object(value, f"latency.{name}")
    return {key: _number(p.get(key), f"latency.{name}.{key}") for key in PERCENTILES}


def parse_stats(payload: bytes) -> StatsMessage:
    """A stats message, every field checked: a page renders what this returns as it is."""
    data = _json_object(payload, "stats")
    stages = _object(data.get("stages"), "stages")
    drops = _object(data.get("drops"), "drops")
    latency = _object(data.get("latency"), "latency")
    source = _object(data.get("source"), "source")
    mqtt = _object(data.get("mqtt"), "mqtt")
    return {
        "camera": _text(data.get("camera"), "camera"),
        "host": _text(data.get("host"), "host"),
        "ts": _number(data.get("ts"), "ts"),
        "uptime_s": _number(data.get("uptime_s"), "uptime_s"),
        "source": {"status": _text(source.get("status", ""), "source.status")},
        "stages": {_text(name, "stage name"): _stage(name, value) for name, value in stages.items()},
        "drops": {_text(name, "drop name"): _integer(value, f"drops.{name}") for name, value in drops.items()},
        "latency": {_text(name, "latency name"): _percentiles(name, value) for name, value in latency.items()},
        "mqtt": {
            "connected": bool(mqtt.get("connected")),
            "connections": _integer(mqtt.get("connections"), "mqtt.connections"),
            "sent": _integer(mqtt.get("sent"), "mqtt.sent"),
        },
        "supervisor": _process("supervisor", data.get("supervisor")),
        "device": _device(data.get("device", {})),
    }


DEVICE_TEXTS = ("cpu", "name", "precision", "device", "reason")


def _device(value: Any) -> dict[str, Any]:
    device = _object(value, "device")
    flags = device.get("cpu_flags", [])
    if not isinstance(flags, list) or len(flags) > 32:
        raise Malformed("device.cpu_flags is not a list of flags")
    return {
        **{key: _text(device[key], f"device.{key}") for key in DEVICE_TEXTS if device.get(key) is not None},
        "cpu_flags": [_text(flag, "device.cpu_flags")[:32] for flag in flags],
    }
