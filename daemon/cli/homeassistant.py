"""``detectord homeassistant-remove``: take this daemon's entities out of Home Assistant.

Empties every retained discovery configuration of the daemon's node
(``mqtt.homeassistant_node``, by default ``detectord_<host name>``), which
Home Assistant reads as "delete this entity". A daemon that still runs with
discovery on announces its cameras again at its next connection; turn
``mqtt.homeassistant`` off first to keep them away.
"""

from __future__ import annotations

import asyncio
import contextlib
import os

from detectord.contract import connect_once, discovery, make_client
from detectord.daemon.config import ConfigError, MqttConfig


async def remove_entities(mqtt: MqttConfig, cameras: list[str] | None) -> list[str]:
    """Empty the daemon's node: the one of single camera ``cameras[0]``, or of the ``[[cameras]]`` daemon
    (``cameras`` None); also these cameras' entities under the node every daemon of the host shared before.
    The configuration topics emptied; ConfigError (one line) when the broker cannot be reached."""
    node = mqtt.node(None if cameras is None else cameras[0])
    client = make_client(mqtt, f"detectord-remove-{os.getpid()}")
    client.set_config({"reconnect_retries": 0})
    try:
        await connect_once(client, mqtt)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    try:
        removed = await discovery.remove(client, mqtt.homeassistant_prefix, node)
        if cameras is not None and mqtt.legacy_node != node:
            removed += await discovery.remove(client, mqtt.homeassistant_prefix, mqtt.legacy_node, cameras=cameras)
        await asyncio.sleep(0.2)  # the QoS 1 publications on their way out
    finally:
        with contextlib.suppress(Exception):
            await client.disconnect()
    return removed
