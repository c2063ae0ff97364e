"""The events outbox: what a consumer must still hear after the broker was away, within a stated bound."""

from __future__ import annotations

from detectord.contract.scene import EventMessage
from detectord.daemon.outbox import EventOutbox
from detectord.events import EventUpdate


def _update(event: str, kind: str, snapshot: int | None = None, jpeg: bytes | None = None) -> EventUpdate:
    message: EventMessage = {
        "type": kind, "id": event, "camera": "cam", "label": "person", "track_id": 1, "start_time": 1.0,
        "end_time": 2.0 if kind == "end" else None, "score": 0.9, "top_score": 0.9, "box": (0, 0, 1, 1),
        "current_zones": (), "entered_zones": (), "snapshot_frame_id": snapshot, "snapshot_box": None,
    }  # fmt: skip
    return EventUpdate(message, jpeg)


def _kinds(updates: list[EventUpdate]) -> list[tuple[str, str]]:
    return [(u.message["id"], u.message["type"]) for u in updates]


def test_every_event_keeps_its_new_its_newest_update_and_its_end_in_order() -> None:
    outbox = EventOutbox(max_events=10)
    for update in (_update("a", "new"), _update("b", "update"), _update("a", "update"), _update("a", "update"),
                   _update("b", "end"), _update("a", "end")):  # fmt: skip
        outbox.put(update)
    assert _kinds(outbox.take()) == [("a", "new"), ("a", "update"), ("a", "end"), ("b", "update"), ("b", "end")]
    assert len(outbox) == 0 and outbox.take() == []


def test_a_replaced_update_hands_on_the_snapshot_it_was_to_send_first() -> None:
    outbox = EventOutbox(max_events=10)
    outbox.put(_update("a", "update", snapshot=7, jpeg=b"jpeg-7"))
    outbox.put(_update("a", "update", snapshot=7))
    outbox.put(_update("b", "update", snapshot=3, jpeg=b"jpeg-3"))
    outbox.put(_update("b", "update", snapshot=9, jpeg=b"jpeg-9"))
    (a, b) = outbox.take()
    assert (a.message["snapshot_frame_id"], a.snapshot) == (7, b"jpeg-7"), "the snapshot the message names"
    assert (b.message["snapshot_frame_id"], b.snapshot) == (9, b"jpeg-9"), "a newer snapshot replaces the older"


def test_past_its_bound_it_drops_whole_events_no_consumer_has_heard_of_first_and_counts_them() -> None:
    outbox = EventOutbox(max_events=2)
    outbox.put(_update("old", "update"))  # began before the broker went away: its new was delivered
    outbox.put(_update("x", "new"))
    outbox.put(_update("y", "new"))
    assert _kinds(outbox.take()) == [("old", "update"), ("y", "new")] and outbox.dropped == 1
    outbox.put(_update("p", "end"))
    outbox.put(_update("q", "end"))
    outbox.put(_update("r", "end"))
    assert _kinds(outbox.take()) == [("q", "end"), ("r", "end")] and outbox.dropped == 2, "else the oldest"
