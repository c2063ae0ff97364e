"""Home Assistant discovery on the wire: announcing a camera's entities and removing stale ones.

The messages themselves come from ``homeassistant.py``; this is their wire
side, used by the publisher and by ``detectord homeassistant-remove``.
Removal finds what this daemon announced earlier by subscribing to its
node's configuration topics, which the broker answers with the retained
configurations at once, and empties the ones no longer wanted (an empty
retained payload is Home Assistant's signal to delete the entity).
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import time
from collections.abc import Collection, Iterable
from typing import Any

from .homeassistant import config_filter

log = logging.getLogger(__name__)

QUIET_S = 0.5
"""Retained messages arrive right after the subscription; this long without one, all have come."""
LONGEST_S = 5.0


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
    topic_filter = config_filter(prefix, node)
    head, tail = topic_filter.split("+/", 1)[0], "/config"
    found: dict[str, str | None] = {}
    last = time.monotonic()
    previous = client.on_message
    """gmqtt hands the handler back bound to the client (a partial): called without it, restored unbound."""

    def collect(client: Any, topic: str, payload: bytes, qos: int, properties: Any) -> int:
        nonlocal last
        if topic.startswith(head) and topic.endswith(tail) and f"/{node}/" in topic:
            last = time.monotonic()
            if payload:
                found[topic] = camera_of(payload)
            return 0
        return int(previous(topic, payload, qos, properties) or 0)

    client.on_message = collect
    client.subscribe(topic_filter, qos=1)
    started = time.monotonic()
    try:
        while time.monotonic() - max(last, started) < QUIET_S and time.monotonic() - started < LONGEST_S:
            await asyncio.sleep(0.05)
    finally:
        client.unsubscribe(topic_filter)
        client.on_message = previous.func if isinstance(previous, functools.partial) else lambda *_: 0
    return found


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
