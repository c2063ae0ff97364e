"""What the viewer knows and who it tells: cameras, frame pairing, and the browsers' outboxes.

Everything here runs on the one asyncio loop Tornado and gmqtt share, so no
locks are needed. A browser that reads slowly never holds anything up: each
client has an outbox keyed by (kind, camera), where a newer message replaces
an older one of the same key, and a single task per client sends whatever
is newest, one write at a time. The MQTT side only ever fills outboxes.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from detectord.contract import DetectionsMessage, StatsMessage
from detectord.contract.scene import EventMessage

log = logging.getLogger(__name__)

PAIRING_WINDOW = 16
"""Unpaired detections or frames kept per camera while their other half is on its way."""
RECENT_EVENTS = 20
"""Events kept per camera (newest state of each) for browsers that connect later."""
SNAPSHOTS = 8
"""Snapshots kept per camera until an event names them."""

Send = Callable[[str | bytes, bool], Awaitable[None]]
"""Write one WebSocket message (text or binary); resolves when it is flushed to the socket."""


@dataclass
class Camera:
    name: str
    status: str = "unknown"
    stats: StatsMessage | None = None
    frames: int = 0
    last_frame_at: float | None = None
    _detections: OrderedDict[int, DetectionsMessage] = field(default_factory=OrderedDict)
    _jpegs: OrderedDict[int, bytes] = field(default_factory=OrderedDict)
    unpaired: int = 0
    scene: dict[str, Any] = field(default_factory=lambda: {"occupancy": None, "count": None, "zones": None})
    """Occupancy, count, the zones (polygons) and each zone's count and occupancy, as last published."""
    events: OrderedDict[str, tuple[EventMessage, bytes | None]] = field(default_factory=OrderedDict)
    """Event id -> (its newest message, its snapshot), oldest first."""
    _snapshots: OrderedDict[int, bytes] = field(default_factory=OrderedDict)
    events_started: int = 0
    """``new`` events heard since the viewer started (``/metrics``)."""

    def pair(
        self, frame_id: int, detections: DetectionsMessage | None, jpeg: bytes | None
    ) -> tuple[DetectionsMessage, bytes] | None:
        """Add one half of a frame; returns both halves once they are together."""
        if detections is not None:
            jpeg = self._jpegs.pop(frame_id, None)
            if jpeg is None:
                self._keep(self._detections, frame_id, detections)
                return None
        else:
            detections = self._detections.pop(frame_id, None)
            if detections is None:
                assert jpeg is not None
                self._keep(self._jpegs, frame_id, jpeg)
                return None
        assert jpeg is not None and detections is not None
        self.frames += 1
        self.last_frame_at = time.time()
        return detections, jpeg

    def _keep(self, store: OrderedDict[int, Any], frame_id: int, value: Any) -> None:
        store[frame_id] = value
        while len(store) > PAIRING_WINDOW:
            store.popitem(last=False)
            self.unpaired += 1

    def summary(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "frames": self.frames,
            "last_frame_at": self.last_frame_at,
            "unpaired": self.unpaired,
            "stats": self.stats,
            "scene": self.scene,
        }

    def keep_snapshot(self, frame_id: int, jpeg: bytes) -> None:
        self._snapshots[frame_id] = jpeg
        while len(self._snapshots) > SNAPSHOTS:
            self._snapshots.popitem(last=False)

    def keep_event(self, event: EventMessage) -> bytes | None:
        """Remember the event's newest message with its snapshot (the one it names, or the one it had)."""
        known = self.events.pop(event["id"], None)
        snapshot = self._snapshots.get(event["snapshot_frame_id"]) if event["snapshot_frame_id"] is not None else None
        if snapshot is None and known is not None:
            snapshot = known[1]
        self.events[event["id"]] = (event, snapshot)
        while len(self.events) > RECENT_EVENTS:
            self.events.popitem(last=False)
        return snapshot


class Client:
    """One browser: an outbox of the newest message per (kind, camera), sent one write at a time."""

    def __init__(self, send: Send) -> None:
        self._send = send
        self._outbox: OrderedDict[tuple[str, str], list[tuple[str | bytes, bool]]] = OrderedDict()
        self._wakeup = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._run())
        self.sent = 0
        self.replaced = 0

    def offer(self, key: tuple[str, str], messages: list[tuple[str | bytes, bool]]) -> None:
        if key in self._outbox:
            self.replaced += 1
            del self._outbox[key]
        self._outbox[key] = messages
        self._wakeup.set()

    async def _run(self) -> None:
        try:
            while True:
                await self._wakeup.wait()
                self._wakeup.clear()
                while self._outbox:
                    _, messages = self._outbox.popitem(last=False)
                    for payload, binary in messages:
                        await self._send(payload, binary)
                    self.sent += 1
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the connection went away mid-write; on_close removes the client
            log.debug("client write failed: %s", exc)

    def close(self) -> None:
        self._task.cancel()


class Hub:
    def __init__(self) -> None:
        self.cameras: dict[str, Camera] = {}
        self.clients: set[Client] = set()
        self.started = time.time()
        self.malformed = 0

    def camera(self, name: str) -> Camera:
        return self.cameras.setdefault(name, Camera(name))

    def add(self, send: Send) -> Client:
        client = Client(send)
        self.clients.add(client)
        client.offer(("hello", ""), [(json.dumps({"type": "hello", "cameras": self.describe()}), False)])
        for name, camera in self.cameras.items():
            for event, snapshot in camera.events.values():
                client.offer(("event", f"{name}/{event['id']}"), _event_messages(name, event, snapshot))
        return client

    def remove(self, client: Client) -> None:
        client.close()
        self.clients.discard(client)

    def _broadcast(self, key: tuple[str, str], messages: list[tuple[str | bytes, bool]]) -> None:
        for client in self.clients:
            client.offer(key, messages)

    def on_status(self, camera: str, status: str) -> None:
        self.camera(camera).status = status
        self._broadcast(
            ("status", camera), [(json.dumps({"type": "status", "camera": camera, "status": status}), False)]
        )

    def on_stats(self, camera: str, stats: StatsMessage) -> None:
        self.camera(camera).stats = stats
        self._broadcast(("stats", camera), [(json.dumps({"type": "stats", "camera": camera, "stats": stats}), False)])

    def on_scene(self, camera: str, **changed: Any) -> None:
        """A count, an occupancy or the zones changed (``zone_counts={"door": 1}`` for one zone's)."""
        scene = self.camera(camera).scene
        for key, value in changed.items():
            if key in ("zone_counts", "zone_occupancy"):
                scene[key] = {**scene.get(key, {}), **value}
            else:
                scene[key] = value
        self._broadcast(("scene", camera), [(json.dumps({"type": "scene", "camera": camera, "scene": scene}), False)])

    def on_snapshot(self, camera: str, frame_id: int, jpeg: bytes) -> None:
        self.camera(camera).keep_snapshot(frame_id, jpeg)

    def on_event(self, camera: str, event: EventMessage) -> None:
        if event["type"] == "new":
            self.camera(camera).events_started += 1
        snapshot = self.camera(camera).keep_event(event)
        self._broadcast(("event", f"{camera}/{event['id']}"), _event_messages(camera, event, snapshot))

    def on_detections(self, camera: str, detections: DetectionsMessage) -> None:
        self._paired(camera, self.camera(camera).pair(detections["frame_id"], detections, None))

    def on_frame(self, camera: str, frame_id: int, jpeg: bytes) -> None:
        self._paired(camera, self.camera(camera).pair(frame_id, None, jpeg))

    def _paired(self, camera: str, pair: tuple[DetectionsMessage, bytes] | None) -> None:
        if pair is None:
            return
        detections, jpeg = pair
        header = {"type": "frame", "camera": camera, "received": time.time(), **detections}
        self._broadcast(("frame", camera), [(json.dumps(header), False), (jpeg, True)])

    def describe(self) -> dict[str, Any]:
        return {name: camera.summary() for name, camera in sorted(self.cameras.items())}


def _event_messages(camera: str, event: EventMessage, snapshot: bytes | None) -> list[tuple[str | bytes, bool]]:
    """The event's JSON, then its snapshot as the next binary message when it has one."""
    header = {"type": "event", "camera": camera, "event": event, "snapshot": snapshot is not None}
    messages: list[tuple[str | bytes, bool]] = [(json.dumps(header), False)]
    if snapshot is not None:
        messages.append((snapshot, True))
    return messages
