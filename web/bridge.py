"""The MQTT side of the viewer: a gmqtt client on Tornado's loop, feeding the hub.

It subscribes to every camera's topics under the prefix, again in
``on_connect`` after every reconnection (a clean session forgets
subscriptions), checks each message (``messages``) and hands it to the hub.
A malformed message is logged, rate-limited, and skipped.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from dataclasses import dataclass
from typing import Any

import gmqtt

from . import messages
from .hub import Hub

log = logging.getLogger(__name__)
logging.getLogger("gmqtt").setLevel(logging.WARNING)


@dataclass(frozen=True)
class BrokerConfig:
    host: str = "127.0.0.1"
    port: int = 1883
    username: str | None = None
    password: str | None = None
    tls: bool = False
    topic_prefix: str = "detector"


class Bridge:
    def __init__(self, hub: Hub, config: BrokerConfig, client_id: str = "detector-web") -> None:
        self.hub = hub
        self.config = config
        self.connected = False
        self._last_complaint = 0.0
        self.client = gmqtt.Client(f"{client_id}-{int(time.time() * 1000) % 100000}")
        self.client.set_config({"reconnect_retries": -1, "reconnect_delay": 2})
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        if config.username is not None:
            self.client.set_auth_credentials(config.username, config.password)

    def _on_connect(self, client: gmqtt.Client, flags: int, rc: int, properties: Any) -> None:
        self.connected = True
        prefix = self.config.topic_prefix
        for kind in messages.KINDS:
            client.subscribe(f"{prefix}/+/{kind}", qos=1 if kind == "status" else 0)
        log.info("connected to %s:%d, subscribed to %s/+/#", self.config.host, self.config.port, prefix)

    def _on_disconnect(self, client: gmqtt.Client, packet: Any, exc: Exception | None = None) -> None:
        self.connected = False

    def _on_message(self, client: gmqtt.Client, topic: str, payload: bytes, qos: int, properties: Any) -> int:
        try:
            where = messages.parse_topic(topic, self.config.topic_prefix)
            if where.kind == "detections":
                self.hub.on_detections(where.camera, messages.detections(payload))
            elif where.kind == "frame":
                frame_id, jpeg = messages.frame(payload, properties or {})
                self.hub.on_frame(where.camera, frame_id, jpeg)
            elif where.kind == "status":
                self.hub.on_status(where.camera, messages.status(payload))
            else:
                self.hub.on_stats(where.camera, messages.stats(payload))
        except messages.Malformed as exc:
            self.hub.malformed += 1
            if time.monotonic() - self._last_complaint > 10:
                self._last_complaint = time.monotonic()
                log.warning("skipped a malformed message on %s: %s (%d so far)", topic[:128], exc, self.hub.malformed)
        return 0

    async def run(self) -> None:
        """Connect, retrying with backoff until the first success; gmqtt reconnects afterwards."""
        delay = 1.0
        tls = ssl.create_default_context() if self.config.tls else False
        while True:
            try:
                await self.client.connect(self.config.host, self.config.port, ssl=tls, keepalive=30)
                return
            except Exception as exc:  # refused, unreachable, bad credentials: all retried
                log.warning("cannot reach the broker at %s:%d (%s); retrying in %.0f s",
                            self.config.host, self.config.port, exc or type(exc).__name__, delay)  # fmt: skip
                await asyncio.sleep(delay)
                delay = min(2 * delay, 30.0)

    async def close(self) -> None:
        if self.connected:
            await self.client.disconnect()
