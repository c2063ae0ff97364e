"""Reading the viewer's WebSocket from Python: each frame as its JSON header and its JPEG.

The viewer sends a frame as two messages, the header (``type: frame``) then
the JPEG as a binary message; this pairs them again. The benchmark and the
tests read the viewer with it, as a browser would.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

from tornado.httpclient import HTTPRequest
from tornado.websocket import websocket_connect


async def frames(request: str | HTTPRequest, seconds: float) -> AsyncIterator[tuple[dict[str, Any], bytes]]:
    """(header, JPEG) of every frame that arrives within ``seconds``, until the server closes."""
    connection = await websocket_connect(request)
    pending: dict[str, Any] | None = None
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            try:
                message = await asyncio.wait_for(connection.read_message(), max(0.01, deadline - time.monotonic()))
            except TimeoutError:
                break
            if message is None:
                break
            if isinstance(message, str):
                data = json.loads(message)
                pending = data if data.get("type") == "frame" else pending
            elif pending is not None:
                yield pending, message
                pending = None
    finally:
        connection.close()
