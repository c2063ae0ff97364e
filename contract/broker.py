"""How either side reaches the broker: one typed configuration and one connect-with-backoff helper."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import ssl
import time
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .topics import DEFAULT_PREFIX, Topics, check_prefix

log = logging.getLogger(__name__)
logging.getLogger("gmqtt").setLevel(logging.CRITICAL)
"""gmqtt's own lines repeat what we say ourselves, several to an event and some with tracebacks: one line of
ours (``why_not``) says what went wrong instead."""

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 1883
CONNECT_BACKOFF_MIN_S = 1.0
CONNECT_BACKOFF_MAX_S = 30.0
RECONNECT_DELAY_S = 2
CONNECT_TIMEOUT_S = 10.0
"""A broker that accepted the connection but has not answered MQTT's CONNECT by then is not going to."""
NOT_AUTHORISED = frozenset({4, 5, 134, 135})
"""CONNACK codes (MQTT 3.1.1, 5) for bad credentials and a user the broker's ACL refuses."""
PERMANENT = NOT_AUTHORISED | {1, 2, 129, 130, 132, 133, 138, 140, 144, 149, 153, 154, 155, 156, 157}
"""Refusals that retrying at once cannot fix (gmqtt gives up on these): retried at the longest backoff."""
PASSWORD_ENV = "DETECTORD_MQTT_PASSWORD"
"""Where every program looks for the MQTT password when no file or flag gives one."""


def password_from_environment(given: str | None, environ: Mapping[str, str] | None = None) -> str | None:
    """``given``, or else the password in ``DETECTORD_MQTT_PASSWORD`` (None when neither has one)."""
    if given is not None:
        return given
    return (os.environ if environ is None else environ).get(PASSWORD_ENV) or None


@dataclass(frozen=True)
class BrokerConfig:
    """The broker and the topic prefix, as the daemon's ``[mqtt]`` table and the viewer's flags set them."""

    host: str = DEFAULT_HOST
    """Broker host name or address."""
    port: int = DEFAULT_PORT
    """Broker port (8883 is usual with tls)."""
    username: str | None = None
    """User name; requires a password."""
    password: str | None = None
    """Password of that user."""
    tls: bool = False
    """Connect with TLS, verifying the broker's certificate (against the system's CAs, or ``tls_ca``)."""
    tls_ca: Path | None = None
    """A PEM file of the CA certificates to trust instead of the system's (a private CA)."""
    tls_cert: Path | None = None
    """A PEM client certificate, for a broker that asks for one (``require_certificate``)."""
    tls_key: Path | None = None
    """The client certificate's private key (PEM), unless ``tls_cert`` holds it too."""
    topic_prefix: str = DEFAULT_PREFIX
    """Topics are <prefix>/<camera>/detections, /frame, /status, /stats."""
    client_id: str | None = None
    """MQTT client id; each program has its own default."""
    keepalive_s: int = 30
    """MQTT keep-alive; a dead connection is noticed within about 1.5 times this."""

    def __post_init__(self) -> None:
        if not self.host:
            raise ValueError("mqtt.host is empty")
        if not 1 <= self.port <= 65535:
            raise ValueError(f"mqtt.port must be between 1 and 65535, got {self.port}")
        if (self.username is None) != (self.password is None):
            raise ValueError("mqtt.username and mqtt.password go together: set both or neither")
        try:
            check_prefix(self.topic_prefix)
        except ValueError as exc:
            raise ValueError(f"mqtt.{exc}") from None
        if self.keepalive_s < 5:
            raise ValueError(f"mqtt.keepalive_s must be at least 5, got {self.keepalive_s}")
        self._check_tls_files()

    def _check_tls_files(self) -> None:
        """The TLS files exist and load, so that a bad one is a configuration error, not a failed connection."""
        given = {key: path for key, path in self._tls_files().items() if path is not None}
        if given and not self.tls:
            raise ValueError(f"mqtt.{next(iter(given))} is set but mqtt.tls is off: set tls = true (--mqtt-tls)")
        if self.tls_key is not None and self.tls_cert is None:
            raise ValueError("mqtt.tls_key needs mqtt.tls_cert, the certificate it is the key of")
        for key, path in given.items():
            if not path.is_file():
                raise ValueError(f"mqtt.{key}: no such file {str(path)!r}")
        if given:
            tls_context(self)

    def _tls_files(self) -> dict[str, Path | None]:
        return {"tls_ca": self.tls_ca, "tls_cert": self.tls_cert, "tls_key": self.tls_key}

    @property
    def topics(self) -> Topics:
        return Topics(self.topic_prefix)

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


def make_client(config: BrokerConfig, client_id: str, will: Any = None, storage: Any = None) -> Any:
    """A gmqtt client called ``client_id`` that reconnects by itself forever once it has connected.

    The caller chooses the id (``config.client_id`` or a default of its own): one process may hold
    several connections, each of which needs its own. ``will`` is a ``gmqtt.Message``; ``storage``
    gmqtt's store of unacknowledged QoS 1 publications (``link.py`` keeps what it would drop). gmqtt is
    imported here, not with the package: the event logic uses the contract's vocabulary without it.
    """
    import gmqtt

    client = gmqtt.Client(client_id, will_message=will, persistent_storage=storage)
    client.set_config({"reconnect_retries": -1, "reconnect_delay": RECONNECT_DELAY_S})
    if config.username is not None:
        client.set_auth_credentials(config.username, config.password)
    return client


def tls_context(config: BrokerConfig) -> ssl.SSLContext | bool:
    """What gmqtt's ``connect(ssl=…)`` takes: a context verifying the broker when ``tls`` is on, else False.

    The broker's certificate is checked against ``tls_ca`` when given (a private CA), else the system's CAs;
    ``tls_cert`` (with ``tls_key``) is presented to a broker that asks for a client certificate. A file that
    does not load is a ValueError naming its key.
    """
    if not config.tls:
        return False
    try:
        context = ssl.create_default_context(cafile=None if config.tls_ca is None else str(config.tls_ca))
    except (OSError, ssl.SSLError) as exc:
        raise ValueError(f"mqtt.tls_ca: {config.tls_ca} holds no CA certificate in PEM ({exc})") from None
    if config.tls_cert is not None:
        try:
            context.load_cert_chain(config.tls_cert, config.tls_key)
        except (OSError, ssl.SSLError) as exc:
            raise ValueError(
                f"mqtt.tls_cert: cannot use {config.tls_cert} as a client certificate with its key ({exc})"
            ) from None
    return context


async def connect_once(client: Any, config: BrokerConfig) -> None:
    """One attempt, for a command that does one thing and leaves; ValueError saying why it failed."""
    try:
        await asyncio.wait_for(
            client.connect(config.host, config.port, ssl=tls_context(config), keepalive=config.keepalive_s),
            CONNECT_TIMEOUT_S,
        )
    except Exception as exc:  # refused, unreachable, bad credentials, not MQTT
        await _abandon(client)
        raise ValueError(f"cannot connect to the broker at {config.address}: {why_not(exc, config)[0]}") from None


def why_not(exc: BaseException, config: BrokerConfig) -> tuple[str, bool]:
    """What a failed connection attempt means, in one line, and whether retrying soon can help."""
    code = getattr(exc, "_code", None)
    if isinstance(code, int):
        text = str(getattr(exc, "message", "")).removeprefix("Connection Refused: ")
        if code in NOT_AUTHORISED:
            return f"refused: not authorised ({text}; check mqtt.username and mqtt.password)", True
        return f"refused: {text} (code {code})", code in PERMANENT
    if isinstance(exc, ssl.SSLCertVerificationError):
        fix = "is mqtt.tls_ca the CA that signed it?" if config.tls_ca else "give its CA with mqtt.tls_ca"
        return f"cannot verify the broker's certificate ({exc.verify_message}); {fix}", True
    if isinstance(exc, ssl.SSLError):
        return f"TLS failed ({exc.reason or exc}): does this port speak TLS?", True
    if isinstance(exc, asyncio.TimeoutError | TimeoutError):
        hint = "" if config.tls else ": a TLS port? (set mqtt.tls)"
        return f"no MQTT answer within {CONNECT_TIMEOUT_S:.0f} s{hint}", not config.tls
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused (is the broker running, on this port?)", False
    if isinstance(exc, OSError):
        return exc.strerror or str(exc) or type(exc).__name__, False
    return str(exc) or type(exc).__name__, False


def cancel_reconnection(client: Any) -> None:
    """Cancel the reconnection gmqtt scheduled for ``client``, which it offers no handle to.

    gmqtt starts a task running ``Client.reconnect`` whenever a connection is
    lost (``stop_reconnect`` still allows one more attempt); it is found by its
    coroutine. Called before connecting again by other means, or to stop for good.
    """
    for task in asyncio.all_tasks():
        coro = task.get_coro()
        frame = getattr(coro, "cr_frame", None)
        name = getattr(coro, "__qualname__", "")
        if frame is not None and name.endswith(".reconnect") and frame.f_locals.get("self") is client:
            task.cancel()


async def _abandon(client: Any) -> None:
    """After a failed first connection: gmqtt must not keep retrying it on its own, every 2 s."""
    cancel_reconnection(client)
    with contextlib.suppress(Exception):
        await client.disconnect()


async def connect_with_backoff(client: Any, config: BrokerConfig, stopping: Callable[[], bool] = lambda: False) -> bool:
    """Connect, retrying with exponential backoff until it succeeds (True) or ``stopping()`` (False).

    A broker that is down at start is not an error: both the daemon and the
    viewer keep working and connect when it comes; gmqtt reconnects by
    itself after the first success. Each failure is one line saying why; a
    refusal that retrying cannot fix (credentials, certificates) is said once
    and retried at the longest backoff.
    """
    delay = CONNECT_BACKOFF_MIN_S
    said = ""
    tls = tls_context(config)
    while not stopping():
        try:
            await asyncio.wait_for(
                client.connect(config.host, config.port, ssl=tls, keepalive=config.keepalive_s), CONNECT_TIMEOUT_S
            )
            return True
        except Exception as exc:  # refused, unreachable, bad credentials, not MQTT: said, and retried
            await _abandon(client)
            reason, permanent = why_not(exc, config)
            if permanent:
                delay = CONNECT_BACKOFF_MAX_S
            if reason != said or not permanent:
                again = f"retrying every {delay:.0f} s" if permanent else f"retrying in {delay:.0f} s"
                log.warning("cannot connect to the broker at %s: %s; %s", config.address, reason, again)
            said = reason
            await asyncio.sleep(delay)
            delay = min(2 * delay, CONNECT_BACKOFF_MAX_S)
    return False


RETAINED_QUIET_S = 0.5
"""Retained messages arrive right after the subscription; this long without one, all have come."""
RETAINED_LONGEST_S = 5.0


def matches(topic_filter: str, topic: str) -> bool:
    """Whether ``topic`` falls under an MQTT ``topic_filter`` (``+``: one level, a final ``#``: the rest)."""
    levels, wanted = topic.split("/"), topic_filter.split("/")
    for i, level in enumerate(wanted):
        if level == "#":
            return True
        if i >= len(levels) or (level != "+" and level != levels[i]):
            return False
    return len(levels) == len(wanted)


_READING: weakref.WeakKeyDictionary[Any, asyncio.Lock] = weakref.WeakKeyDictionary()
"""One reader of retained messages at a time per client: each takes the client's message handler for a while."""


async def retained(client: Any, topic_filter: str) -> dict[str, bytes]:
    """The retained messages the broker holds under ``topic_filter`` (not the empty ones), read by
    subscribing for a moment: the broker sends them at once. Calls on one client wait for each other."""
    async with _READING.setdefault(client, asyncio.Lock()):
        return await _read_retained(client, topic_filter)


async def _read_retained(client: Any, topic_filter: str) -> dict[str, bytes]:
    found: dict[str, bytes] = {}
    last = time.monotonic()
    previous = client.on_message
    """gmqtt hands the handler back bound to the client (a partial): called without it, restored unbound."""

    def collect(client: Any, topic: str, payload: bytes, qos: int, properties: Any) -> int:
        nonlocal last
        if matches(topic_filter, topic):
            last = time.monotonic()
            if payload:
                found[topic] = payload
            return 0
        return int(previous(topic, payload, qos, properties) or 0)

    client.on_message = collect
    client.subscribe(topic_filter, qos=1)
    started = time.monotonic()
    try:
        while (
            time.monotonic() - max(last, started) < RETAINED_QUIET_S and time.monotonic() - started < RETAINED_LONGEST_S
        ):
            await asyncio.sleep(0.05)
    finally:
        client.unsubscribe(topic_filter)
        client.on_message = previous.func if isinstance(previous, functools.partial) else lambda *_: 0
    return found
