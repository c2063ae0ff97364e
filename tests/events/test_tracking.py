"""People followed into events through the scripted difficulties of ``bench/scenes.py``, at 2, 5 and 10
processed frames a second: one event per true person, no identity switch."""

from __future__ import annotations

import numpy as np
import pytest

from bench.events import RATES, TRACKERS, events_of, identity_switches
from bench.scenes import SCENES, Scene, frames
from detectord.detection import Tracker

TODAY = TRACKERS["ByteTrack + Kalman"]


@pytest.mark.parametrize("fps", RATES)
@pytest.mark.parametrize("scene", SCENES, ids=lambda scene: scene.name)
def test_each_person_is_one_event_and_keeps_one_identity(scene: Scene, fps: float) -> None:
    messages = events_of(scene, fps, TODAY)
    started = {m["id"] for m in messages if m["type"] == "new"}
    ended = {m["id"] for m in messages if m["type"] == "end"}
    assert len(started) == scene.people and started == ended, [(m["type"], m["id"][-6:]) for m in messages]
    assert identity_switches(frames(scene, fps), TODAY) == 0


def test_the_scenes_are_hard_for_the_tracker_they_replace() -> None:
    """A check that cannot fail proves nothing: the plain IoU tracker splits people in these scenes."""
    before = TRACKERS["IoU (before)"]
    split = [
        (scene.name, fps)
        for scene in SCENES
        for fps in RATES
        if len({m["id"] for m in events_of(scene, fps, before) if m["type"] == "new"}) > scene.people
    ]
    assert len(split) >= 6, split


def test_a_group_box_keeps_both_people_without_moving_either_onto_it() -> None:
    tracker = Tracker(0.2, lambda track, now: now - track.seen_at <= 2.0)
    left, right = np.array([[100, 50, 136, 150]]), np.array([[140, 50, 176, 150]])
    for t in range(5):
        tracker.update(np.concatenate([left + 4 * t, right + 4 * t]), [0, 1], t / 5)
    a, _ = tracker.tracks
    before = a.box.copy()
    group = np.array([[116, 50, 192, 150]], np.float64)
    shown = tracker.update(group, [0], 1.0)
    assert len(tracker.tracks) == 2 and all(track.seen_at == 1.0 for track in tracker.tracks)
    assert len(shown) <= 1 and np.abs(a.box - before).max() < 10, "predicted on, not dragged onto the group"


def test_a_weak_detection_keeps_an_identity_but_starts_none() -> None:
    tracker = Tracker(0.2, lambda track, now: now - track.seen_at <= 2.0)
    box = np.array([[100, 50, 136, 150]], np.float64)
    (first,) = tracker.update(box, [0], 0.0)
    (again,) = tracker.update(box + 2, [], 0.2, weak=[0])
    assert again is first
    assert tracker.update(box + 300, [], 0.4, weak=[0]) == [], "no track starts from a weak box"
