"""The supervisor's messages to a downstream stage, on a pipe of their own: ``(kind, value)`` pairs.

Kinds: ``model`` (what inference loaded, relayed once it is announced and
again to a restarted reader) and ``stats`` (the supervisor's part of the
stats message, live only). Only the newest value of each kind matters.
"""

from __future__ import annotations

import contextlib
from multiprocessing.connection import Connection
from threading import Event
from typing import Any

MODEL = "model"
STATS = "stats"


def send(conn: Connection, kind: str, value: Any) -> None:
    """Best effort: a reader that is gone (being restarted) gets the news again when it comes back."""
    with contextlib.suppress(BrokenPipeError, ConnectionResetError, OSError):
        conn.send((kind, value))


class Inbox:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self.latest: dict[str, Any] = {}

    def poll(self, timeout: float = 0.0) -> dict[str, Any]:
        """Take every waiting message (waiting up to ``timeout`` for the first); the newest per kind."""
        try:
            while self._conn.poll(timeout):
                kind, value = self._conn.recv()
                self.latest[kind] = value
                timeout = 0.0
        except (EOFError, OSError):
            pass
        return self.latest

    def wait_for(self, kind: str, stop: Event, step_s: float = 0.1) -> Any | None:
        """The newest ``kind`` message, waiting for one; None if ``stop`` is set first."""
        while kind not in self.latest and not stop.is_set():
            self.poll(step_s)
        return self.latest.get(kind)
