"""Event messages kept while the broker is away, and delivered in order once it is back.

An event is three kinds of message (``new``, ``update``, ``end``); a consumer
that misses ``new`` sees a person appear from nowhere, one that misses
``end`` keeps a person who never leaves. While a camera's connection is
down its event messages wait here instead of being lost: per event, in
order, its ``new``, only its newest ``update`` (each replaces the last: it
says everything an earlier one said) and its ``end``, with the snapshot the
newest message names, which goes out just before that message.

The outbox holds at most ``max_events`` events. Past that, an event is
dropped whole, and counted: first the oldest whose ``new`` is still waiting
here (a person no consumer has heard of: nothing is left half-told), else
the oldest.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import replace

from detectord.events import EventUpdate


class EventOutbox:
    def __init__(self, max_events: int) -> None:
        self.max_events = max_events
        self.dropped = 0
        """Events dropped whole because the outbox was full."""
        self._events: OrderedDict[str, list[EventUpdate]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._events)

    def put(self, update: EventUpdate) -> None:
        messages = self._events.setdefault(update.message["id"], [])
        if update.message["type"] == "update" and messages and messages[-1].message["type"] == "update":
            replaced = messages.pop()
            update = _with_snapshot_of(update, replaced)
        messages.append(update)
        while len(self._events) > self.max_events:
            self._drop_one()

    def take(self) -> list[EventUpdate]:
        """Every waiting message, event by event in the order the events began waiting; the outbox is empty."""
        out = [update for messages in self._events.values() for update in messages]
        self._events.clear()
        return out

    def _drop_one(self) -> None:
        unheard = next((key for key, messages in self._events.items() if messages[0].message["type"] == "new"), None)
        self._events.pop(unheard if unheard is not None else next(iter(self._events)))
        self.dropped += 1


def _with_snapshot_of(update: EventUpdate, earlier: EventUpdate) -> EventUpdate:
    """``update``, carrying the snapshot ``earlier`` was to send first when both name that snapshot: the
    snapshot went out with no message yet, and ``update`` takes ``earlier``'s place."""
    named = update.message["snapshot_frame_id"] == earlier.message["snapshot_frame_id"]
    if update.snapshot is None and earlier.snapshot is not None and named:
        return replace(update, snapshot=earlier.snapshot)
    return update
