"""The MQTT side of the viewer: a gmqtt client on Tornado's loop, feeding the hub.

It subscribes to every camera's topics under the prefix (``contract.Topics``),
again in ``on_connect`` after every reconnection (a clean session forgets
subscriptions), checks each message with the contract's validators and hands
it to the hub. A malformed message is logged, rate-limited, and skipped.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from detectord.contract import (
    BrokerConfig,
    Malformed,
    connect_with_backoff,
    make_client,
    parse_detections,
    parse_frame,
    parse_stats,
    parse_status,
)
from detectord.contract.scene import parse_count, parse_event, parse_occupancy, parse_zones

from .hub import Hub

log = logging.getLogger(__name__)


class Bridge:
    def __init__(self, hub: Hub, config: BrokerConfig) -> None:
        self.hub = hub
        self.config = config
        self.topics = config.topics
        self.connected = False
        self._last_complaint = 0.0
        self.client = make_client(config, config.client_id or f"detector-web-{int(time.time() * 1000) % 100000}")
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message

    def _on_connect(self, client: Any, flags: int, rc: int, properties: Any) -> None:
        self.connected = True
        for topic_filter, qos in self.topics.subscriptions():
            client.subscribe(topic_filter, qos=qos)
        log.info("connected to %s, subscribed to %s/+/#", self.config.address, self.topics.prefix)

    def _on_disconnect(self, client: Any, packet: Any, exc: Exception | None = None) -> None:
        self.connected = False

    def _on_message(self, client: Any, topic: str, payload: bytes, qos: int, properties: Any) -> int:
        try:
            where = self.topics.parse(topic)
            kind = where.kind.name
            if kind == "detections":
                detections = parse_detections(payload)
                if detections["camera"] != where.camera:
                    raise Malformed(f"detections of camera {detections['camera']!r} on {where.camera!r}'s topic")
                self.hub.on_detections(where.camera, detections)
            elif kind == "frame":
                frame_id, jpeg = parse_frame(payload, properties or {})
                self.hub.on_frame(where.camera, frame_id, jpeg)
            elif kind == "status":
                self.hub.on_status(where.camera, parse_status(payload))
            elif kind == "stats":
                self.hub.on_stats(where.camera, parse_stats(payload))
            else:
                self._scene(where.camera, kind, where.zone, payload, properties or {})
        except Malformed as exc:
            self.hub.malformed += 1
            if time.monotonic() - self._last_complaint > 10:
                self._last_complaint = time.monotonic()
                log.warning("skipped a malformed message on %s: %s (%d so far)", topic[:128], exc, self.hub.malformed)
        return 0

    def _scene(self, camera: str, kind: str, zone: str | None, payload: bytes, properties: Any) -> None:
        if kind == "events":
            event = parse_event(payload)
            if event["camera"] != camera:
                raise Malformed(f"event of camera {event['camera']!r} on {camera!r}'s topic")
            self.hub.on_event(camera, event)
        elif kind == "snapshot":
            self.hub.on_snapshot(camera, *parse_frame(payload, properties))
        elif kind == "person":
            self.hub.on_scene(camera, count=parse_count(payload))
        elif kind == "occupancy":
            self.hub.on_scene(camera, occupancy=parse_occupancy(payload))
        elif kind == "zones":
            zones = parse_zones(payload)
            self.hub.on_scene(
                camera, zones={"size": zones["size"], "polygons": zones["zones"], "mask": zones["motion_mask"]}
            )
        elif kind == "zone_person" and zone is not None:
            self.hub.on_scene(camera, zone_counts={zone: parse_count(payload)})
        elif kind == "zone_occupancy" and zone is not None:
            self.hub.on_scene(camera, zone_occupancy={zone: parse_occupancy(payload)})

    async def run(self) -> None:
        """Connect, retrying with backoff until the first success; gmqtt reconnects afterwards."""
        await connect_with_backoff(self.client, self.config)

    async def close(self) -> None:
        if self.connected:
            await self.client.disconnect()
