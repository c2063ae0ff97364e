"""One camera's MQTT session: its connection, its will, and knowing when another client took it over.

Each camera of a daemon has its own connection, whose will is ``offline`` on
the camera's retained ``status`` topic: the camera turns ``offline`` when its
daemon dies, however it dies. The rest of the program publishes by kind
(``send``) and hears about (re)connections (``on_connected``) without
knowing gmqtt's session, will or reconnection logic.

A broker that is down at start is retried with backoff
(``connect_with_backoff``); after the first connection gmqtt reconnects by
itself. Two clients with one client id (the same camera name on two daemons)
take the session from each other on every reconnection: the link notices
(MQTT 5 reason code 0x8E, or connections the broker keeps closing right
after accepting them), says so once and stops for good.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import gmqtt
from gmqtt.storage import PersistentStorage

from .broker import BrokerConfig, cancel_reconnection, connect_with_backoff, make_client
from .payloads import OFFLINE, ONLINE
from .topics import KINDS

log = logging.getLogger(__name__)

SESSION_TAKEN_OVER = 0x8E
"""MQTT 5 DISCONNECT reason code: another client connected with this client id."""
SHORT_LIVED_S = 10.0
TAKEN_OVER_AFTER = 3
"""Connections in a row that the broker closed within ``SHORT_LIVED_S`` of accepting them: two clients with
one client id take the session from each other on every reconnect (a broker that does not send reason
code 0x8E, like Mosquitto 2.0.11, only closes the socket)."""

BACKLOG = 10_000
"""Most publications waiting for a packet id (beyond it, the oldest are dropped: a broker that does not
acknowledge anything for that long is not there)."""
MessageHandler = Callable[[str, bytes], None]
Publication = tuple[str, str | bytes, str | None, dict[str, Any]]
"""(kind, payload, zone, MQTT properties): one of a camera's publications, as ``CameraLink.send`` takes it."""


class _InFlight(PersistentStorage):  # type: ignore[misc]
    """gmqtt's store of QoS 1 publications the broker has not acknowledged yet, knowing what each one was.

    When the broker comes back without this client's session (it was
    restarted), gmqtt drops what was in flight (``clear``); here it is kept
    (``lost``), so that the link publishes it again.
    """

    def __init__(self, acknowledged: Callable[[], None]) -> None:
        """``acknowledged`` is called when the broker acknowledges a publication (a packet id is free again)."""
        super().__init__()
        self.next: Publication | None = None
        """What the next ``push_message`` stores (set just before gmqtt's publish)."""
        self._what: dict[int, Publication] = {}
        self.lost: list[Publication] = []
        self._acknowledged = acknowledged

    def push_message(self, mid: int, raw_package: bytes) -> None:
        super().push_message(mid, raw_package)
        if self.next is not None:
            self._what[mid] = self.next
            self.next = None

    def remove_message_by_mid(self, mid: int) -> None:
        super().remove_message_by_mid(mid)
        self._what.pop(mid, None)
        self._acknowledged()

    def clear(self) -> None:
        self.lost += [self._what[mid] for mid, _ in self.get_all() if mid in self._what]
        self._what.clear()
        super().clear()


class CameraLink:
    """The MQTT connection of camera ``camera``, publishing under ``config.topics``."""

    def __init__(
        self,
        config: BrokerConfig,
        camera: str,
        client_id: str,
        on_connected: Callable[[], None] = lambda: None,
        on_message: MessageHandler = lambda topic, payload: None,
    ) -> None:
        """``on_connected`` runs after every (re)connection, once ``online`` is sent: the place to send the
        retained states again. ``on_message`` gets what the link's subscriptions receive."""
        self.config = config
        self.camera = camera
        self.client_id = client_id
        self.topics = config.topics
        self.connections = 0
        self.stopping = False
        self.taken_over = False
        self._on_connected = on_connected
        self._on_message = on_message
        self._connected_at = 0.0
        self._up = False
        """Connected (a CONNACK came) since the last loss: only the loss of such a connection is one."""
        self._short_lived = 0
        self._giving_up: asyncio.Future[None] | None = None
        status = self.topics.topic(camera, "status")
        will = gmqtt.Message(status, OFFLINE, qos=KINDS["status"].qos, retain=True)
        self._in_flight = _InFlight(self._acknowledged)
        self._backlog: deque[Callable[[], None]] = deque(maxlen=BACKLOG)
        """Publications and subscriptions waiting for a packet id: the broker lets only so many be in flight
        (its receive maximum, Mosquitto's 20), and gmqtt refuses more (OverflowError) instead of queueing."""
        self.client: Any = make_client(config, client_id, will=will, storage=self._in_flight)
        self.client.on_connect = self._connected
        self.client.on_disconnect = self._disconnected
        self.client.on_message = self._message

    @property
    def connected(self) -> bool:
        return bool(self.client.is_connected) and not self.taken_over

    async def connect(self, stopping: Callable[[], bool]) -> bool:
        """The first connection, retried with backoff until it succeeds (True) or ``stopping()`` (False)."""
        return await connect_with_backoff(self.client, self.config, stopping)

    def send(self, kind: str, payload: str | bytes, zone: str | None = None, **properties: Any) -> None:
        """Publish ``payload`` as this camera's ``kind`` (with its QoS and retain flag from ``KINDS``).

        A QoS 1 publication waits its turn while the broker's window of
        unacknowledged ones is full, and one the broker has not acknowledged
        when the connection drops is published again after reconnecting.
        """
        spec = KINDS[kind]
        topic = self.topics.topic(self.camera, kind, zone)
        tag = (kind, payload, zone, properties) if spec.qos else None
        self._publish(topic, payload, spec.qos, spec.retain, properties, tag)

    def publish(self, topic: str, payload: str | bytes, qos: int, retain: bool) -> None:
        """Publish outside the camera's topics (Home Assistant's discovery configurations)."""
        self._publish(topic, payload, qos, retain, {}, None)

    def subscribe(self, topic: str, qos: int = 1) -> None:
        self._submit(lambda: self.client.subscribe(topic, qos=qos))

    def _publish(
        self,
        topic: str,
        payload: str | bytes,
        qos: int,
        retain: bool,
        properties: dict[str, Any],
        tag: Publication | None,
    ) -> None:
        def go() -> None:
            self._in_flight.next = tag
            try:
                self.client.publish(topic, payload, qos=qos, retain=retain, **properties)
            finally:
                self._in_flight.next = None

        if qos:
            self._submit(go)
        else:
            go()

    def _submit(self, action: Callable[[], None]) -> None:
        """Do ``action`` now, or after what waits before it when no packet id is free."""
        if self._backlog:
            self._backlog.append(action)
            return
        try:
            action()
        except OverflowError:
            self._backlog.append(action)

    def _acknowledged(self) -> None:
        if self._backlog:
            asyncio.get_running_loop().call_soon(self._drain)

    def _drain(self) -> None:
        while self._backlog:
            try:
                self._backlog[0]()
            except OverflowError:
                return
            self._backlog.popleft()

    async def close(self) -> None:
        """Clean stop: say ``offline`` ourselves (a clean disconnect does not fire the will), then leave."""
        self.stopping = True
        if self.connected:
            self.send("status", OFFLINE)
            await asyncio.sleep(0.05)
            await self.client.disconnect()

    # -- gmqtt's callbacks -------------------------------------------------------------

    def _connected(self, client: Any, flags: int, rc: int, properties: Any) -> None:
        self.connections += 1
        self._connected_at = time.monotonic()
        self._up = True
        log.info("camera %s: connected to %s", self.camera, self.config.address)
        self.send("status", ONLINE)
        lost, self._in_flight.lost = self._in_flight.lost, []
        waiting = list(self._backlog)  # never sent: newer than what was in flight when the connection dropped
        self._backlog.clear()
        for kind, payload, zone, extra in lost:
            self.send(kind, payload, zone, **extra)
        self._backlog.extend(waiting)
        self._drain()
        self._on_connected()

    def _message(self, client: Any, topic: str, payload: bytes, qos: int, properties: Any) -> int:
        self._on_message(topic, payload)
        return 0

    def _disconnected(self, client: Any, packet: Any, exc: Exception | None = None) -> None:
        if self.stopping or self.taken_over or not self._up:
            return  # not a connection that was up: a failed attempt (a first one is explained by connect)
        self._up = False
        lived = time.monotonic() - self._connected_at
        self._short_lived = self._short_lived + 1 if self._connected_at and lived < SHORT_LIVED_S else 0
        reason = packet[:1] if isinstance(packet, bytes | bytearray) else b""
        if reason == bytes([SESSION_TAKEN_OVER]) or self._short_lived >= TAKEN_OVER_AFTER:
            self.taken_over = True
            log.error(
                "camera %s: the broker at %s keeps handing this connection's session to another client with "
                "client id %r; is camera %r running in another daemon too? Camera names must be unique across "
                "hosts; not reconnecting",
                self.camera,
                self.config.address,
                self.client_id,
                self.camera,
            )
            self._giving_up = asyncio.ensure_future(self._give_up())
            return
        log.warning("camera %s: lost the broker at %s; reconnecting", self.camera, self.config.address)

    async def _give_up(self) -> None:
        """Stop for good: a reconnection that went ahead would take the session back from the other client,
        which would then give up in turn."""
        cancel_reconnection(self.client)
        with contextlib.suppress(Exception):  # the broker has closed the connection already
            await self.client.disconnect()


def quiet_cancellations(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """An event loop's exception handler: a reconnection a link cancelled (``CameraLink._give_up``) is no
    error; anything else is reported as usual."""
    if isinstance(context.get("exception"), asyncio.CancelledError):
        log.debug("cancelled: %s", context.get("message"))
        return
    loop.default_exception_handler(context)
