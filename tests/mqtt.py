"""A subscriber that records what arrives, beside the real Mosquitto the tests start.

Nothing here contacts an address outside 127.0.0.0/8.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import gmqtt

from detectord.daemon.cli.mosquitto import Mosquitto

__all__ = ["Gate", "Mosquitto", "Received", "Subscriber"]


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


class Gate:
    """A TCP relay on a free loopback port in front of the broker, which the test opens and shuts.

    Shut, it drops every connection through it and refuses new ones at once, so a client behind it cannot
    reach a restarted broker before the test has subscribed there.
    """

    def __init__(self, broker_port: int) -> None:
        self.broker_port = broker_port
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._server.getsockname()[1])
        self._open = threading.Event()
        self._open.set()
        self._pairs: list[tuple[socket.socket, socket.socket]] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            if not self._open.is_set():
                client.close()
                continue
            try:
                upstream = socket.create_connection(("127.0.0.1", self.broker_port), timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._pairs.append((client, upstream))
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        for end in (source, sink):
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)

    def shut(self) -> None:
        self._open.clear()
        with self._lock:
            pairs, self._pairs = self._pairs, []
        for client, upstream in pairs:
            for end in (client, upstream):
                with contextlib.suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)

    def open(self) -> None:
        self._open.set()

    def close(self) -> None:
        self.shut()
        self._server.close()
