"""The viewer's HTTP side: the page, the WebSocket, /healthz, /api/cameras and /metrics, on Tornado.

Handlers get their dependencies through ``initialize``; there is no global
state. Every request must name this server in its ``Host`` header: one of
the names it is reachable by (the listen address, ``localhost``, the
loopback addresses, this machine's names and addresses when it listens on
all of them, and those given with ``--allow-host``); anything else is
refused with 403, so a page on another site that resolves its own name to
this address (DNS rebinding) reaches nothing. With a token configured, the
WebSocket and the API require it (as ``?token=`` or ``Authorization:
Bearer``); the page itself holds no data. The WebSocket accepts only pages
served from this host (or from origins listed with --allow-origin).
"""

from __future__ import annotations

import hmac
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from tornado import web, websocket
from tornado.log import access_log

from .hub import Client, Hub
from .metrics import registry_for

log = logging.getLogger(__name__)

STATIC = Path(__file__).resolve().parent / "static"
LOGGED_URI = 200
"""Characters of a request's URI the access log keeps: a 10 KB URL is one line, not 10 KB of log."""


def log_request(handler: web.RequestHandler) -> None:
    """Tornado's access log line, with the URI cut to ``LOGGED_URI`` characters."""
    status = handler.get_status()
    level = logging.INFO if status < 400 else logging.WARNING if status < 500 else logging.ERROR
    request = handler.request
    uri = request.uri or ""
    if len(uri) > LOGGED_URI:
        uri = f"{uri[:LOGGED_URI]}… ({len(uri)} characters)"
    access_log.log(
        level, "%d %s %s (%s) %.2fms", status, request.method, uri, request.remote_ip, 1000 * request.request_time()
    )


@dataclass(frozen=True)
class Access:
    token: str | None = None
    metrics_token: str | None = None
    """``/metrics`` requires this one when set (a scraper's own secret), else ``token``."""
    allowed_origins: frozenset[str] = field(default_factory=frozenset)
    allowed_hosts: frozenset[str] = field(default_factory=frozenset)
    """Host names (lower case, no port) requests may name; empty: any (tests of the handlers alone)."""

    def host_ok(self, handler: web.RequestHandler) -> bool:
        return not self.allowed_hosts or host_name(handler.request.host) in self.allowed_hosts

    def token_ok(self, handler: web.RequestHandler, metrics: bool = False) -> bool:
        token = self.metrics_token if metrics and self.metrics_token is not None else self.token
        if token is None:
            return True
        given = handler.get_query_argument("token", default="")
        header = handler.request.headers.get("Authorization", "")
        if header.startswith("Bearer "):
            given = header[len("Bearer ") :]
        return hmac.compare_digest(given.encode(), token.encode())


def host_name(host: str) -> str:
    """The name in a ``Host`` header, without its port: ``[::1]:8080`` → ``::1``, ``Example:80`` → ``example``."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def check_host(handler: web.RequestHandler, access: Access) -> None:
    if not access.host_ok(handler):
        log.warning(
            "refused a request for host %r (not a name of this server; see --allow-host)", handler.request.host[:64]
        )
        raise web.HTTPError(403, reason="Host not allowed")


class _JsonHandler(web.RequestHandler):
    def initialize(self, hub: Hub, access: Access, bridge_connected: Any) -> None:
        self.hub = hub
        self.access = access
        self.bridge_connected = bridge_connected

    def prepare(self) -> None:
        check_host(self, self.access)

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


class MetricsHandler(_JsonHandler):
    """Prometheus' scrape: the token rule of the API (or ``--metrics-token``), as ``Authorization: Bearer``."""

    def initialize(self, hub: Hub, access: Access, bridge_connected: Any) -> None:
        super().initialize(hub, access, bridge_connected)
        self.registry = registry_for(hub)

    def get(self) -> None:
        if not self.access.token_ok(self, metrics=True):
            raise web.HTTPError(401)
        self.set_header("Content-Type", CONTENT_TYPE_LATEST)
        self.finish(generate_latest(self.registry))


class PageHandler(web.RequestHandler):
    def initialize(self, access: Access) -> None:
        self.access = access

    def prepare(self) -> None:
        check_host(self, self.access)

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
        check_host(self, self.access)
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

    def initialize(self, path: str, access: Access) -> None:  # type: ignore[override]
        super().initialize(path)
        self.access = access

    def prepare(self) -> None:
        check_host(self, self.access)

    @classmethod
    def get_absolute_path(cls, root: str, path: str) -> str:
        if "\x00" in path:
            raise web.HTTPError(400)
        return str(super().get_absolute_path(root, path))


def make_app(hub: Hub, access: Access, bridge_connected: Any) -> web.Application:
    deps = {"hub": hub, "access": access, "bridge_connected": bridge_connected}
    return web.Application(
        [
            (r"/", PageHandler, {"access": access}),
            (r"/ws", ViewerSocket, {"hub": hub, "access": access}),
            (r"/healthz", HealthHandler, deps),
            (r"/api/cameras", CamerasHandler, deps),
            (r"/metrics", MetricsHandler, deps),
            (r"/static/(.*)", StaticHandler, {"path": str(STATIC), "access": access}),
        ],
        websocket_max_message_size=4096,
        log_function=log_request,
    )
