"""The contract's event, count, occupancy, zone and discovery messages: built, read back, refused when wrong."""

from __future__ import annotations

import json

import pytest

from detectord.contract import Malformed, Topics
from detectord.contract.homeassistant import discovery_messages, node_for
from detectord.contract.scene import (
    build_event,
    build_zones,
    count_payload,
    occupancy_payload,
    parse_count,
    parse_event,
    parse_occupancy,
    parse_zones,
)

EVENT = {
    "type": "update",
    "id": "1764388800.123456-a1b2c3",
    "camera": "front",
    "label": "person",
    "track_id": 4,
    "start_time": 1764388800.123456,
    "end_time": None,
    "score": 0.91234,
    "top_score": 0.95,
    "box": (10.0, 20.0, 60.0, 180.0),
    "current_zones": ("door",),
    "entered_zones": ("door",),
    "snapshot_frame_id": 17,
    "snapshot_box": (12.0, 20.0, 60.0, 178.0),
}


def test_an_event_reads_back_as_it_was_built() -> None:
    parsed = parse_event(json.dumps(build_event(**EVENT)).encode())  # type: ignore[arg-type]
    assert parsed["id"] == EVENT["id"] and parsed["current_zones"] == ["door"] and parsed["snapshot_frame_id"] == 17
    assert parsed["end_time"] is None and parsed["box"] == [10.0, 20.0, 60.0, 180.0]
    assert parsed["snapshot_box"] == [12.0, 20.0, 60.0, 178.0]


def test_an_event_from_a_publisher_that_predates_snapshot_box_reads_as_none() -> None:
    older = {key: value for key, value in build_event(**EVENT).items() if key != "snapshot_box"}  # type: ignore[arg-type]
    assert parse_event(json.dumps(older).encode())["snapshot_box"] is None


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"type": "begin"}, "event type"),
        ({"type": "end"}, "end_time"),
        ({"end_time": 5.0}, "end_time"),
        ({"current_zones": ["a b"]}, "zone names"),
        ({"box": [1, 2]}, "box"),
        ({"v": 2}, "version"),
        ({"type": "end", "end_time": 1764388700.0}, "end_time is before start_time"),
    ],
)
def test_a_broken_event_is_refused_with_the_reason(change: dict, reason: str) -> None:
    message = {**build_event(**EVENT), **change}  # type: ignore[arg-type]
    with pytest.raises(Malformed, match=reason):
        parse_event(json.dumps(message).encode())


def test_counts_and_occupancy_are_plain_text() -> None:
    assert parse_count(count_payload(3).encode()) == 3
    assert parse_occupancy(occupancy_payload(True).encode()) is True
    assert occupancy_payload(False) == "OFF"
    for bad in (b"-1", b"three", b""):
        with pytest.raises(Malformed):
            parse_count(bad)
    with pytest.raises(Malformed):
        parse_occupancy(b"on")


def test_zones_read_back_and_refuse_a_bad_polygon() -> None:
    message = build_zones("front", (427, 240), {"door": [[0, 0], [10, 0], [10, 10]]})
    assert parse_zones(json.dumps(message).encode())["zones"]["door"][2] == [10.0, 10.0]
    message["zones"] = {"door": [[0, 0], [10, 0]]}
    with pytest.raises(Malformed, match="not a polygon"):
        parse_zones(json.dumps(message).encode())


def test_scene_topics_parse_with_their_zone() -> None:
    topics = Topics("home/detector")
    assert topics.topic("front", "zone_person", "door") == "home/detector/front/zones/door/person"
    assert topics.topic("front", "snapshot") == "home/detector/front/person/snapshot"
    where = topics.parse("home/detector/front/zones/door/occupancy")
    assert (where.camera, where.kind.name, where.zone) == ("front", "zone_occupancy", "door")
    assert topics.parse("home/detector/front/person").kind.name == "person"
    assert topics.parse("home/detector/front/person/snapshot").kind.name == "snapshot"
    assert ("home/detector/+/zones/+/person", 1) in topics.subscriptions()
    for foreign in ("home/detector/front/zones/a b/person", "home/detector/front/zones//person"):
        with pytest.raises(Malformed):
            topics.parse(foreign)
    with pytest.raises(ValueError, match="needs"):
        topics.topic("front", "zone_person")


def test_every_discovery_entity_has_what_home_assistant_requires() -> None:
    topics = Topics()
    messages = discovery_messages(
        prefix="homeassistant",
        node=node_for("my.host"),
        topics=topics,
        camera="front.door",
        zones=["porch"],
        model="hog-people",
        sw_version="0.2.0",
        inference_stages=["inference-0", "inference-1"],
    )
    assert len(messages) == 7
    unique_ids = set()
    for topic, config in messages.items():
        component = topic.split("/")[1]
        assert topic.startswith("homeassistant/") and topic.endswith("/config") and "/detectord_my_host/" in topic
        assert "." not in topic.split("/")[3]
        assert config["availability"] == [
            {"topic": "detector/front.door/status", "payload_available": "online", "payload_not_available": "offline"}
        ]
        assert config["device"]["identifiers"] == ["detectord_detector_front_door"]
        assert {"name", "manufacturer", "model", "sw_version"} <= set(config["device"])
        unique_ids.add(config["unique_id"])
        assert ("topic" if component == "camera" else "state_topic") in config
    assert len(unique_ids) == len(messages)
    fps = next(c for t, c in messages.items() if t.endswith("_inference_fps/config"))
    assert "value_json.stages['inference-0'].fps + value_json.stages['inference-1'].fps" in fps["value_template"]
    assert fps["entity_category"] == "diagnostic"
