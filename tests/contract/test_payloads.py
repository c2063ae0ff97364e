"""The contract both sides import: every builder's output passes its validator, and bad input is refused."""

from __future__ import annotations

import json
from typing import Any

import pytest

from detectord.contract import (
    BrokerConfig,
    Detection,
    Malformed,
    Topics,
    build_detections,
    build_stats,
    check_name,
    frame_properties,
    parse_detections,
    parse_frame,
    parse_stats,
    parse_status,
)

BOX = (10.0, 20.0, 110.0, 220.0)


def _builder_args() -> dict[str, Any]:
    return {
        "camera": "front",
        "frame_id": 7,
        "size": (427, 240),
        "ts": {"capture": 1.0, "inference_start": 1.1, "inference_end": 1.2, "publish": 1.3},
        "model": {"name": "m", "precision": "fp32", "device": "cpu", "weights": "not published"},
        "detections": [Detection("car", 3, 0.5, (1, 2, 3, 4)), Detection("person", 1, 0.987654, BOX)],
        "main_person": (1, 4),
    }


def _detections(**overrides: Any) -> dict[str, Any]:
    message = build_detections(**_builder_args())
    message.update(overrides)
    return message


def _stats(**overrides: Any) -> dict[str, Any]:
    stage = {"fps": 2.5, "frames": 9, "pid": 42, "restarts": 0, "status": "", "cpu_percent": None, "rss_mb": 1.0}
    message = build_stats(
        camera="front",
        host="cellar",
        ts=5.0,
        uptime_s=3.21,
        source_status="streaming",
        stages={"inference": stage},
        drops={"capture": 1, "mqtt_unsent": 0},
        latency={"end_to_end": {"p50_ms": 1.0, "p90_ms": 2.0, "p99_ms": 3.0}, "inference": None},
        mqtt={"connected": True, "connections": 1, "sent": 9},
        supervisor={"pid": 41, "cpu_percent": 0.5, "rss_mb": 40.0, "uss_mb": 20.0},
        device={"cpu": "Some CPU", "cpu_flags": ["avx2"], "precision": "bf16", "reason": "auto: …"},
    )
    message.update(overrides)
    return message


def test_a_built_detections_message_passes_its_validator_and_names_the_main_person() -> None:
    parsed = parse_detections(json.dumps(_detections()).encode())
    assert parsed["camera"] == "front" and parsed["frame_id"] == 7 and parsed["size"] == [427, 240]
    assert parsed["model"] == {"name": "m", "precision": "fp32", "device": "cpu"}
    main = parsed["main_person"]
    assert main["index"] == 1 and parsed["detections"][main["index"]]["box"] == main["box"] == list(BOX)
    assert main["score"] == 0.9877, "scores are rounded to 4 places on the wire"


def test_another_payload_version_is_refused() -> None:
    with pytest.raises(Malformed, match="payload version 2"):
        parse_detections(json.dumps(_detections(v=2)).encode())
    with pytest.raises(Malformed, match="payload version"):
        parse_stats(json.dumps({k: v for k, v in _stats().items() if k != "v"}).encode())


@pytest.mark.parametrize(
    "change",
    [
        {"frame_id": "one"},
        {"size": [427]},
        {"detections": "none"},
        {"main_person": {"index": 5, "box": list(BOX), "score": 0.9, "track_id": 1}},
        {"main_person": {"index": None, "box": list(BOX), "score": 0.9, "track_id": 1}},
        {"main_person": {"box": [1, 2, 3], "score": 0.9, "track_id": 1}},
        {"ts": {"capture": float("nan")}},
        {"inference": {"ran": True, "reason": "motion", "regions": "all"}},
        {"inference": {"ran": True, "reason": "motion", "regions": [[1, 2, 3]]}},
    ],
)
def test_a_detections_message_that_breaks_the_contract_is_malformed(change: dict[str, Any]) -> None:
    with pytest.raises(Malformed):
        parse_detections(json.dumps(_detections(**change)).encode())


def test_where_the_model_looked_travels_with_the_frame_and_its_absence_means_the_whole_frame() -> None:
    regions = {"ran": True, "reason": "motion", "regions": [[16, 0, 128.0, 96]]}
    message = build_detections(**_builder_args(), inference=regions)  # type: ignore[arg-type]
    assert message["inference"]["regions"] == [[16.0, 0.0, 128.0, 96.0]]
    assert parse_detections(json.dumps(message).encode())["inference"] == regions
    whole = parse_detections(json.dumps(_detections(inference={"ran": True, "reason": "keepalive"})).encode())
    assert whole["inference"] == {"ran": True, "reason": "keepalive"}


def test_a_v1_publisher_written_before_main_person_index_is_understood() -> None:
    """The README's first v1 contract had no ``main_person.index``: its messages are still v1, and the
    reader finds the main person among the detections by its box (found by a client written from it)."""
    early = _detections(main_person={"box": list(BOX), "score": 0.9877, "track_id": 4})
    main = parse_detections(json.dumps(early).encode())["main_person"]
    assert main is not None and main["index"] == 1 and main["box"] == list(BOX)
    unmatched = _detections(main_person={"box": [0.0, 0.0, 5.0, 5.0], "score": 0.9, "track_id": 4})
    main = parse_detections(json.dumps(unmatched).encode())["main_person"]
    assert main is not None and main["index"] is None, "a box no detection has: shown, but pointing nowhere"


def test_a_payload_nested_too_deeply_is_refused_before_it_is_parsed() -> None:
    """100,000 nested arrays exhausted the parser's recursion: a RecursionError traceback in the viewer."""
    deep = b'{"v": 1, "stages": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    with pytest.raises(Malformed, match="nests deeper than"):
        parse_stats(deep)
    with pytest.raises(Malformed, match="nests deeper than"):
        parse_detections(b'{"v": 1, "x": ' + b"{" * 40 + b"}" * 40 + b"}")
    brackets_in_text = _detections(camera="[" * 100)
    assert parse_detections(json.dumps(brackets_in_text).encode())["camera"] == "[" * 100


def test_stats_pass_their_validator_and_anything_else_is_malformed() -> None:
    parsed = parse_stats(json.dumps(_stats()).encode())
    assert parsed["stages"]["inference"]["fps"] == 2.5 and parsed["latency"]["inference"] is None
    assert parsed["uptime_s"] == 3.2
    for bad in ({"stages": "x"}, {"drops": {"capture": 1.5}}, {"latency": [1]}, {"mqtt": None}):
        with pytest.raises(Malformed):
            parse_stats(json.dumps(_stats(**bad)).encode())


def test_frames_pair_by_their_user_property() -> None:
    jpeg = b"\xff\xd8rest"
    assert parse_frame(jpeg, frame_properties(12)) == (12, jpeg)
    with pytest.raises(Malformed, match="frame_id"):
        parse_frame(jpeg, {})
    with pytest.raises(Malformed, match="not a JPEG"):
        parse_frame(b"GIF89a", frame_properties(1))


def test_status_is_online_or_offline() -> None:
    assert parse_status(b"online") == "online" and parse_status(b" offline\n") == "offline"
    with pytest.raises(Malformed):
        parse_status(b"maybe")


def test_topics_round_trip_and_foreign_topics_are_refused() -> None:
    topics = Topics("home/detector")
    assert topics.topic("front", "stats") == "home/detector/front/stats"
    where = topics.parse("home/detector/front/stats")
    assert (where.camera, where.kind.name, where.kind.retain) == ("front", "stats", True)
    for foreign in ("home/detector/../etc/status", "home/detector/front/unknown", "other/front/stats"):
        with pytest.raises(Malformed):
            topics.parse(foreign)
    assert ("home/detector/+/status", 1) in topics.subscriptions()


@pytest.mark.parametrize("name", ["", "has space", "a/b", "-x", "x" * 65, "+", 5])
def test_camera_names_are_checked_by_one_rule(name: object) -> None:
    with pytest.raises(ValueError, match="letters, digits"):
        check_name(name, "camera")


def test_broker_settings_name_the_bad_key() -> None:
    with pytest.raises(ValueError, match=r"mqtt\.port must be between 1 and 65535"):
        BrokerConfig(port=0)
    with pytest.raises(ValueError, match=r"mqtt\.username and mqtt\.password go together"):
        BrokerConfig(username="u")
    with pytest.raises(ValueError, match=r"mqtt\.topic_prefix"):
        BrokerConfig(topic_prefix="a/#")
    assert BrokerConfig().address == "127.0.0.1:1883"
