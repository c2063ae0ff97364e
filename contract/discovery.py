"""Home Assistant discovery on the wire: announcing a camera's entities and removing stale ones.

The messages themselves come from ``homeassistant.py``; this is their wire
side, used by the publisher and by ``detectord homeassistant-remove``.
Removal finds what this daemon announced earlier by subscribing to its
node's configuration topics, which the broker answers with the retained
configurations at once, and empties the ones no longer wanted (an empty
retained payload is Home Assistant's signal to delete the entity).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Collection, Iterable
from typing import Any

from .broker import retained
from .homeassistant import config_filter

log = logging.getLogger(__name__)


def announce(client: Any, messages: dict[str, dict[str, Any]]) -> None:
    for topic, payload in messages.items():
        client.publish(topic, json.dumps(payload), qos=1, retain=True)


def camera_of(payload: bytes) -> str | None:
    """The camera a configuration is about: the one whose ``<prefix>/<camera>/status`` makes it available."""
    try:
        availability = json.loads(payload)["availability"][0]["topic"]
    except (ValueError, KeyError, IndexError, TypeError):
        return None
    parts = availability.split("/") if isinstance(availability, str) else []
    return parts[-2] if len(parts) >= 3 and parts[-1] == "status" else None


async def announced(client: Any, prefix: str, node: str) -> dict[str, str | None]:
    """The configuration topics of ``node`` that the broker holds (retained, not empty), each with its camera."""
    found = await retained(client, config_filter(prefix, node))
    return {topic: camera_of(payload) for topic, payload in found.items()}


async def remove(
    client: Any, prefix: str, node: str, keep: Iterable[str] = (), cameras: Collection[str] | None = None
) -> list[str]:
    """Empty every retained configuration of ``node`` outside ``keep``, and with ``cameras`` only those of
    these cameras (a node other daemons may share); returns the topics emptied."""
    kept = set(keep)
    stale = [
        topic
        for topic, camera in (await announced(client, prefix, node)).items()
        if topic not in kept and (cameras is None or camera in cameras)
    ]
    for topic in stale:
        client.publish(topic, b"", qos=1, retain=True)
    if stale:
        log.info("Home Assistant: removed %d entities of node %s no longer configured", len(stale), node)
    return stale
