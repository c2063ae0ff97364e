"""Events, counts, occupancy and snapshots from scripted detections: every rule with known answers."""

from __future__ import annotations

from dataclasses import replace

import cv2
import numpy as np
import pytest

from detectord.detection import PERSON, Detections
from detectord.detection.registry import HOG_MARGINS, PROBABILITIES
from detectord.detection.types import Scores
from detectord.events import EventsConfig, OccupancyConfig, Scene, SceneChanges, SnapshotConfig, ZoneConfig
from detectord.events.zones import resolve_zones

SIZE = (427, 240)
FPS = 10.0
DOOR = ZoneConfig("door", ((0.5, 0.0), (1.0, 0.0), (1.0, 1.0), (0.5, 1.0)), normalized=True)


def frame(seed: int) -> np.ndarray:
    """A frame whose pixels say which frame it is."""
    pixels = np.random.default_rng(seed).integers(0, 255, (SIZE[1], SIZE[0], 3), dtype=np.uint8)
    return cv2.GaussianBlur(pixels, (9, 9), 0)


def people(*boxes: tuple[float, float, float, float], score: float = 0.9) -> Detections:
    if not boxes:
        return Detections.empty()
    return Detections(
        np.array(boxes, np.float32), np.full(len(boxes), score, np.float32), np.full(len(boxes), PERSON, np.int32)
    )


def play(scene: Scene, script: list[Detections], start: int = 0) -> list[SceneChanges]:
    """Feeds the script at FPS frames per second; frame ``i`` is taken at ``i / FPS`` seconds."""
    return [scene.observe(i, i / FPS, dets, frame(i)) for i, dets in enumerate(script, start)]


def events_of(changes: list[SceneChanges]) -> list:
    return [update for change in changes for update in change.events]


def walker(x: float) -> tuple[float, float, float, float]:
    return (x, 60.0, x + 50.0, 200.0)


def scene(**settings) -> Scene:
    config = EventsConfig(**{"end_after_s": 1.0, "update_interval_s": 0.0, **settings})
    return Scene("cam", SIZE, resolve_zones([DOOR], SIZE), config, scores=PROBABILITIES)


def test_a_person_crossing_into_a_zone_makes_new_then_update_with_the_zone_then_end_under_one_id() -> None:
    s = scene()
    script = [people(walker(20 + 10 * i)) for i in range(30)] + [people()] * 15
    updates = events_of(play(s, script))
    assert updates[0].message["type"] == "new" and updates[-1].message["type"] == "end"
    assert {u.message["id"] for u in updates} == {updates[0].message["id"]}
    assert updates[0].message["entered_zones"] == ()
    entering = next(u for u in updates if u.message["entered_zones"])
    assert (
        entering.message["type"] == "update"
        and entering.message["current_zones"] == ("door",)
        and entering.message["entered_zones"] == ("door",)
    )
    assert updates[-1].message["end_time"] == pytest.approx(29 / FPS)
    assert updates[-1].message["start_time"] == pytest.approx(0.0)


def test_new_waits_for_min_frames_and_a_one_frame_flicker_makes_no_event() -> None:
    s = scene(min_frames=3)
    script = [people(), people(walker(100)), people(), people(), people(walker(300))] + [people()] * 20
    changes = play(s, script)
    assert events_of(changes) == []
    assert all(change.count is None for change in changes)
    s = scene(min_frames=3)
    updates = events_of(play(s, [people(walker(100))] * 3))
    assert [u.message["type"] for u in updates] == ["new"]


def test_the_frames_an_event_needs_are_the_detector_familys_unless_configured() -> None:
    def first_event_at(scores: Scores, config: EventsConfig) -> int:
        s = Scene("cam", SIZE, (), config, scores=scores)
        return next(i for i, change in enumerate(play(s, [people(walker(100))] * 8)) if change.events)

    config = EventsConfig(end_after_s=1.0, update_interval_s=0.0)
    assert first_event_at(PROBABILITIES, config) == 2, "Faster R-CNN: the third frame"
    assert first_event_at(HOG_MARGINS, config) == 4, "hog-people: the fifth"
    assert first_event_at(HOG_MARGINS, replace(config, min_frames=2)) == 1, "a configured value wins"


def test_two_people_at_once_are_two_events_with_two_ids_and_a_count_of_two() -> None:
    s = scene()
    script = [people(walker(20), walker(300)) for _ in range(10)] + [people()] * 15
    changes = play(s, script)
    updates = events_of(changes)
    news = [u for u in updates if u.message["type"] == "new"]
    ends = [u for u in updates if u.message["type"] == "end"]
    assert (
        len(news) == 2
        and len({u.message["id"] for u in news}) == 2
        and {u.message["id"] for u in ends} == {u.message["id"] for u in news}
    )
    assert [c.count for c in changes if c.count is not None] == [2, 0]
    zone_counts = [c.zone_counts["door"] for c in changes if "door" in c.zone_counts]
    assert zone_counts == [1, 0]


def test_a_person_lost_for_less_than_the_gap_continues_the_same_event() -> None:
    s = scene(end_after_s=1.0)
    script = [people(walker(100))] * 5 + [people()] * 8 + [people(walker(104))] * 5 + [people()] * 15
    updates = events_of(play(s, script))
    assert [u.message["type"] for u in updates if u.message["type"] != "update"] == ["new", "end"]
    assert len({u.message["id"] for u in updates}) == 1
    s = scene(end_after_s=0.5)
    updates = events_of(play(s, script))
    assert [u.message["type"] for u in updates if u.message["type"] != "update"] == ["new", "end", "new", "end"]
    assert len({u.message["id"] for u in updates}) == 2


def test_updates_are_rate_limited() -> None:
    s = scene(update_interval_s=1.0)
    rising = [people(walker(20 + 10 * i), score=0.5 + 0.01 * i) for i in range(30)]
    updates = events_of(play(s, rising))
    times = [u for u in updates if u.message["type"] == "update"]
    assert 1 <= len(times) <= 3


def test_occupancy_turns_on_after_m_of_k_frames_and_off_after_t_seconds_without_anyone() -> None:
    s = scene(occupancy=OccupancyConfig(min_frames=2, window=3, off_after_s=1.0))
    script = [people(walker(100)), people(), people(), people(walker(100)), people(), people(walker(100))]
    script += [people()] * 12
    changes = play(s, script)
    turned = [(i, c.occupancy) for i, c in enumerate(changes) if c.occupancy is not None]
    assert turned == [(5, True), (15, False)]
    assert s.tick(100.0).occupancy is None


def test_occupancy_turns_off_with_time_alone_when_no_frame_comes() -> None:
    s = scene(occupancy=OccupancyConfig(min_frames=1, window=1, off_after_s=2.0))
    assert play(s, [people(walker(100))])[0].occupancy is True
    assert s.tick(1.0).occupancy is None
    ended = s.tick(2.5)
    assert ended.occupancy is False


def test_the_snapshot_is_the_best_frame_with_the_person_inside_and_decodes_to_that_frame() -> None:
    s = scene(snapshot=SnapshotConfig(draw_box=False, jpeg_quality=95))
    scores = [0.6, 0.95, 0.7, 0.8]
    boxes = [walker(100), (0.0, 60.0, 50.0, 200.0), walker(120), walker(140)]
    script = [people(box, score=score) for box, score in zip(boxes, scores, strict=True)] + [people()] * 15
    updates = events_of(play(s, script))
    end = updates[-1]
    assert end.message["type"] == "end" and end.message["snapshot_frame_id"] == 3, (
        "the 0.95 box touches the border: not the best"
    )
    named = [u.snapshot for u in updates if u.snapshot is not None and u.message["snapshot_frame_id"] == 3]
    assert len(named) == 1
    decoded = cv2.imdecode(np.frombuffer(named[0], np.uint8), cv2.IMREAD_COLOR)
    assert decoded.shape == frame(3).shape
    assert np.abs(decoded.astype(int) - frame(3)).mean() < 3
    assert np.abs(decoded.astype(int) - frame(2)).mean() > 8


def test_a_cropped_snapshot_holds_the_person_and_a_margin() -> None:
    s = scene(snapshot=SnapshotConfig(crop=True, crop_margin=0.5), min_frames=1)
    update = events_of(play(s, [people(walker(100))]))[0]
    assert update.snapshot is not None
    decoded = cv2.imdecode(np.frombuffer(update.snapshot, np.uint8), cv2.IMREAD_COLOR)
    assert decoded.shape[:2] == (240, 50 + 2 * 25), "70 pixels above and below, clipped to the frame"


def test_close_ends_every_event_going_on_and_turns_occupancy_off() -> None:
    """A clean stop left ``person`` at 0 but the retained ``occupancy`` ON, with nobody left to turn it off."""
    s = scene()
    changes = play(s, [people(walker(20), walker(300))] * 4)
    assert any(c.occupancy for c in changes) and any(c.zone_occupancy.get("door") for c in changes)
    closing = s.close()
    assert [u.message["type"] for u in closing.events] == ["end", "end"] and closing.count == 0
    assert closing.occupancy is False and closing.zone_occupancy == {"door": False}
    assert s.close().occupancy is None, "once"


def test_zones_take_pixels_or_fractions_and_refuse_points_outside_the_frame() -> None:
    pixels = ZoneConfig("left", ((0, 0), (213, 0), (213, 240), (0, 240)))
    (zone,) = resolve_zones([pixels], SIZE)
    assert zone.contains((100.0, 239.0)) and not zone.contains((300.0, 100.0))
    (door,) = resolve_zones([DOOR], SIZE)
    assert door.points()[1] == [427.0, 0.0]
    with pytest.raises(ValueError, match="outside the 427x240 frame"):
        resolve_zones([ZoneConfig("far", ((0, 0), (500, 0), (0, 100)))], SIZE)
    with pytest.raises(ValueError, match="at least 3 points"):
        ZoneConfig("line", ((0, 0), (1, 1)))
    with pytest.raises(ValueError, match="zone 'a b'"):
        ZoneConfig("a b", ((0, 0), (1, 0), (1, 1)))
