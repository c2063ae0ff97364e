"""The viewer's HTTP side: the page, the WebSocket, /healthz and /api/cameras, on Tornado.

Handlers get their dependencies through ``initialize``; there is no global
state. With a token configured, the WebSocket and the API require it (as
``?token=`` or ``Authorization: Bearer``); the page itself holds no data.
The WebSocket accepts only pages served from this host (or from origins
listed with --allow-origin).
"""

from __future__ import annotations

import hmac
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from tornado import web, websocket

from .hub import Client, Hub

log = logging.getLogger(__name__)

STATIC = Path(__file__).resolve().parent / "static"


@dataclass(frozen=True)
class Access:
    token: str | None = None
    allowed_origins: frozenset[str] = field(default_factory=frozenset)

    def token_ok(self, handler: web.RequestHandler) -> bool:
        if self.token is None:
            return True
        given = handler.get_query_argument("token", default="")
        header = handler.request.headers.get("Authorization", "")
        if header.startswith("Bearer "):
            given = header[len("Bearer ") :]
        return hmac.compare_digest(given.encode(), self.token.encode())


class _JsonHandler(web.RequestHandler):
    def initialize(self, hub: Hub, access: Access, bridge_connected: Any) -> None:
        self.hub = hub
        self.access = access
        self.bridge_connected = bridge_connected

    def set_default_headers(self) -> None:
        self.set_header("Cache-Control", "no-store")
        self.set_header("X-Content-Type-Options", "nosniff")

    def write_json(self, data: dict[str, Any]) -> None:
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(data))


class HealthHandler(_JsonHandler):
    def get(self) -> None:
        self.write_json({"ok": True, "mqtt_connected": bool(self.bridge_connected()), "clients": len(self.hub.clients)})


class CamerasHandler(_JsonHandler):
    def get(self) -> None:
        if not self.access.token_ok(self):
            raise web.HTTPError(401)
        self.write_json({"cameras": self.hub.describe(), "malformed": self.hub.malformed})


class PageHandler(web.RequestHandler):
    def set_default_headers(self) -> None:
        self.set_header(
            "Content-Security-Policy",
            "default-src 'self'; img-src 'self' blob:; connect-src 'self'; style-src 'self'; script-src 'self'",
        )
        self.set_header("X-Content-Type-Options", "nosniff")
        self.set_header("Referrer-Policy", "no-referrer")

    def get(self) -> None:
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.finish((STATIC / "index.html").read_bytes())


class ViewerSocket(websocket.WebSocketHandler):
    def initialize(self, hub: Hub, access: Access) -> None:
        self.hub = hub
        self.access = access
        self.client: Client | None = None

    def check_origin(self, origin: str) -> bool:
        if origin in self.access.allowed_origins:
            return True
        return urlparse(origin).netloc.lower() == self.request.host.lower()

    def prepare(self) -> None:
        if not self.access.token_ok(self):
            raise web.HTTPError(401)

    def open(self) -> None:
        self.client = self.hub.add(self._send)

    async def _send(self, payload: str | bytes, binary: bool) -> None:
        await self.write_message(payload, binary=binary)

    def on_message(self, message: str | bytes) -> None:
        """The page sends nothing; anything it does is ignored."""

    def on_close(self) -> None:
        if self.client is not None:
            self.hub.remove(self.client)
            self.client = None


class StaticHandler(web.StaticFileHandler):
    """The page's files. A path no file can have (a NUL byte) is a bad request, not a server error."""

    @classmethod
    def get_absolute_path(cls, root: str, path: str) -> str:
        if "\x00" in path:
            raise web.HTTPError(400)
        return str(super().get_absolute_path(root, path))


def make_app(hub: Hub, access: Access, bridge_connected: Any) -> web.Application:
    deps = {"hub": hub, "access": access, "bridge_connected": bridge_connected}
    return web.Application(
        [
            (r"/", PageHandler),
            (r"/ws", ViewerSocket, {"hub": hub, "access": access}),
            (r"/healthz", HealthHandler, deps),
            (r"/api/cameras", CamerasHandler, deps),
            (r"/static/(.*)", StaticHandler, {"path": str(STATIC)}),
        ],
        websocket_max_message_size=4096,
    )
