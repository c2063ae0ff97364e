"""A subscriber that records what arrives, beside the real Mosquitto the tests start.

Nothing here contacts an address outside 127.0.0.0/8.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import gmqtt

from detectord.daemon.cli.mosquitto import Mosquitto

__all__ = ["Mosquitto", "Received", "Subscriber"]


@dataclass
class Received:
    topic: str
    payload: bytes
    retain: bool
    properties: dict[str, Any]
    at: float


@dataclass
class Subscriber:
    """Subscribes to ``topic`` on its own thread and event loop, keeping every message."""

    port: int
    topic: str = "#"
    messages: list[Received] = field(default_factory=list)
    tls: ssl.SSLContext | bool = False
    credentials: tuple[str, str] | None = None

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("subscriber did not connect")

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._client = gmqtt.Client(f"test-{id(self)}")
        self._client.on_message = self._on_message
        self._client.on_connect = lambda client, *_: client.subscribe(self.topic, qos=1)
        self._client.on_subscribe = lambda *_: self._ready.set()
        if self.credentials is not None:
            self._client.set_auth_credentials(*self.credentials)
        self._loop.run_until_complete(self._client.connect("127.0.0.1", self.port, ssl=self.tls))
        self._loop.run_forever()

    def _on_message(self, client: gmqtt.Client, topic: str, payload: bytes, qos: int, properties: dict) -> int:
        with self._lock:
            self.messages.append(Received(topic, payload, bool(properties.get("retain")), properties, time.time()))
        return 0

    def on(self, suffix: str) -> list[Received]:
        with self._lock:
            return [m for m in self.messages if m.topic.endswith(suffix)]

    def wait_for(self, condition: Callable[[], bool], timeout: float = 60.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition():
                return True
            time.sleep(0.05)
        return False

    def publish(self, topic: str, payload: bytes | str, retain: bool = False, **properties: Any) -> None:
        """Publish from the test, on the subscriber's own connection."""

        def send() -> None:
            self._client.publish(topic, payload, qos=1, retain=retain, **properties)

        self._loop.call_soon_threadsafe(send)

    def close(self) -> None:
        async def stop() -> None:
            with contextlib.suppress(ssl.SSLError):  # a TLS close while the broker is still sending
                await self._client.disconnect()

        asyncio.run_coroutine_threadsafe(stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
