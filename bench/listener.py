"""What the benchmarks hear from a broker: a gmqtt subscriber on a thread and event loop of its own."""

from __future__ import annotations

import asyncio
import os
import threading
from typing import Any

import gmqtt


class Listener:
    """Subscribes to ``topic`` on the broker at 127.0.0.1:``port`` and hands every message to ``heard``."""

    topic = "detector/#"
    qos = 1

    def __init__(self, port: int) -> None:
        self.port = port
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        threading.Thread(target=self._run, daemon=True).start()
        if not self._ready.wait(10):
            raise SystemExit("cannot subscribe to the benchmark's broker")

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        client = gmqtt.Client(f"{type(self).__name__.lower()}-bench-{os.getpid()}-{self.port}")
        client.on_message = self._on_message
        client.on_connect = lambda c, *_: c.subscribe(self.topic, qos=self.qos)
        client.on_subscribe = lambda *_: self._ready.set()
        self._loop.run_until_complete(client.connect("127.0.0.1", self.port))
        self._loop.run_forever()

    def _on_message(self, client: Any, topic: str, payload: bytes, qos: int, properties: Any) -> int:
        self.heard(topic, payload)
        return 0

    def heard(self, topic: str, payload: bytes) -> None:
        raise NotImplementedError
