"""How either side reaches the broker: one typed configuration and one connect-with-backoff helper."""

from __future__ import annotations

import asyncio
import logging
import os
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .topics import DEFAULT_PREFIX, Topics, check_prefix

log = logging.getLogger(__name__)
logging.getLogger("gmqtt").setLevel(logging.ERROR)  # its INFO and WARNING lines repeat what we say ourselves

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 1883
CONNECT_BACKOFF_MIN_S = 1.0
CONNECT_BACKOFF_MAX_S = 30.0
RECONNECT_DELAY_S = 2
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
    """Connect with TLS (the system's CA certificates)."""
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

    @property
    def topics(self) -> Topics:
        return Topics(self.topic_prefix)

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


def make_client(config: BrokerConfig, client_id: str, will: Any = None) -> Any:
    """A gmqtt client called ``client_id`` that reconnects by itself forever once it has connected.

    The caller chooses the id (``config.client_id`` or a default of its own): one process may hold
    several connections, each of which needs its own. ``will`` is a ``gmqtt.Message``. gmqtt is
    imported here, not with the package: the event logic uses the contract's vocabulary without it.
    """
    import gmqtt

    client = gmqtt.Client(client_id, will_message=will)
    client.set_config({"reconnect_retries": -1, "reconnect_delay": RECONNECT_DELAY_S})
    if config.username is not None:
        client.set_auth_credentials(config.username, config.password)
    return client


def tls_context(config: BrokerConfig) -> ssl.SSLContext | bool:
    """What gmqtt's ``connect(ssl=…)`` takes: a context verifying the broker when ``tls`` is on, else False."""
    return ssl.create_default_context() if config.tls else False


async def connect_once(client: Any, config: BrokerConfig, timeout_s: float) -> None:
    """One attempt, for a command that does one thing and leaves; raises what went wrong."""
    await asyncio.wait_for(
        client.connect(config.host, config.port, ssl=tls_context(config), keepalive=config.keepalive_s), timeout_s
    )


async def connect_with_backoff(client: Any, config: BrokerConfig, stopping: Callable[[], bool] = lambda: False) -> bool:
    """Connect, retrying with exponential backoff until it succeeds (True) or ``stopping()`` (False).

    A broker that is down at start is not an error: both the daemon and the
    viewer keep working and connect when it comes; gmqtt reconnects by
    itself after the first success.
    """
    delay = CONNECT_BACKOFF_MIN_S
    tls = tls_context(config)
    while not stopping():
        try:
            await client.connect(config.host, config.port, ssl=tls, keepalive=config.keepalive_s)
            return True
        except Exception as exc:  # refused, unreachable, bad credentials: all retried
            log.warning(
                "cannot reach the broker at %s (%s); retrying in %.0f s",
                config.address,
                exc or type(exc).__name__,
                delay,
            )
            await asyncio.sleep(delay)
            delay = min(2 * delay, CONNECT_BACKOFF_MAX_S)
    return False
