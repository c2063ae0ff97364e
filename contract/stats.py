"""The ``stats`` message: what a camera's pipeline is doing, built by the daemon and checked by readers."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypedDict

from .payloads import VERSION, Malformed, _integer, _json_object, _number, _object, _optional_number, _text

PERCENTILES = ("p50_ms", "p90_ms", "p99_ms")


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


class GatingStats(TypedDict):
    frames: int
    """Newest frames looked at since start."""
    motion_frames: int
    model_frames: int
    """Frames the model ran on."""
    motion_fps: float
    model_share: float | None
    model_s_saved: float
    """Seconds of model time the frames it did not run on would have cost."""
    model_area: float | None
    """The mean share of the picture a model run looked at (1: whole frames; less: regions); None before the
    first run, and from a publisher that predates regions."""


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
    gating: GatingStats | None
    """Added to v1 compatibly: None from a publisher without motion gating, or where it is off."""


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
    gating: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """``<prefix>/<camera>/stats`` (retained): rates, drops, latencies, the connection, and the device.

    ``host`` is the machine the camera's daemon runs on: camera names are
    unique across every host publishing to one broker. ``device``: the CPU
    (``cpu``, ``cpu_flags``), and the model's ``name``, ``precision``,
    ``device`` and ``reason`` (why that precision) once inference has loaded it.
    """
    optional = {} if gating is None else {"gating": dict(gating)}
    return optional | {
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
        "gating": _gating(data.get("gating")),
    }


def _gating(value: Any) -> GatingStats | None:
    if value is None:
        return None
    gating = _object(value, "gating")
    return {
        "frames": _integer(gating.get("frames"), "gating.frames"),
        "motion_frames": _integer(gating.get("motion_frames"), "gating.motion_frames"),
        "model_frames": _integer(gating.get("model_frames"), "gating.model_frames"),
        "motion_fps": _number(gating.get("motion_fps"), "gating.motion_fps"),
        "model_share": _optional_number(gating.get("model_share"), "gating.model_share"),
        "model_s_saved": _number(gating.get("model_s_saved"), "gating.model_s_saved"),
        "model_area": _optional_number(gating.get("model_area"), "gating.model_area"),
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
