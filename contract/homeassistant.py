"""Home Assistant MQTT discovery: the entities each camera appears as, with no integration to install.

Home Assistant reads retained configuration messages under its discovery
prefix, ``<prefix>/<component>/<node_id>/<object_id>/config``, and creates
one device per camera with these entities:

* ``binary_sensor`` person occupancy (``device_class: occupancy``) and
  ``sensor`` person count (``state_class: measurement``), for the camera and
  for each of its zones;
* ``camera``: the snapshot of the latest person event;
* ``binary_sensor`` motion (``device_class: motion``), where motion gating is on;
* diagnostic sensors: inference frames per second and dropped frames, read
  from the retained stats message with a ``value_template``.

Every entity is available while the camera's retained ``status`` says
``online``: the daemon's will sets it ``offline``, so Home Assistant shows
the entities unavailable whenever the daemon is gone. ``node_id`` names the
daemon instance (``node_for``), so that a daemon can find and remove the
entities it announced earlier (a camera or zone since removed) without
touching another daemon's.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from .scene import OFF, ON
from .topics import Topics

DEFAULT_PREFIX = "homeassistant"
COMPONENTS = ("binary_sensor", "sensor", "camera")
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


def safe_id(text: str) -> str:
    """``text`` as Home Assistant accepts it in a node or object id (letters, digits, ``_`` and ``-``)."""
    return _UNSAFE.sub("_", text)


def node_for(host: str, camera: str | None = None) -> str:
    """The default node id of a daemon: ``detectord_<host>_<camera>`` for a single-camera daemon (one
    ``detector@NAME`` instance per camera on a host), ``detectord_<host>`` for one with ``[[cameras]]``."""
    return "detectord_" + safe_id(host) + ("" if camera is None else "_" + safe_id(camera))


def status_topic(prefix: str) -> str:
    """Where Home Assistant says ``online`` when it (re)starts: configurations are sent again then."""
    return f"{prefix}/status"


def config_filter(prefix: str, node: str) -> str:
    """Every configuration topic of one node's entities."""
    return f"{prefix}/+/{node}/+/config"


def _entity(
    topics: Topics,
    camera: str,
    device: dict[str, Any],
    origin: dict[str, str],
    key: str,
    name: str,
    **settings: Any,
) -> dict[str, Any]:
    return {
        "name": name,
        "unique_id": f"detectord_{safe_id(topics.prefix)}_{safe_id(camera)}_{key}",
        "availability": [
            {
                "topic": topics.topic(camera, "status"),
                "payload_available": "online",
                "payload_not_available": "offline",
            }
        ],
        "device": device,
        "origin": origin,
        **settings,
    }


def discovery_messages(
    *,
    prefix: str,
    node: str,
    topics: Topics,
    camera: str,
    zones: Sequence[str],
    model: str,
    sw_version: str,
    inference_stages: Sequence[str],
    motion: bool = False,
) -> dict[str, dict[str, Any]]:
    """Topic → configuration of every entity of ``camera``; ``inference_stages`` name the stats' inference
    stages whose rates add up to the camera's inference rate; ``motion``: the camera's motion is computed (a
    motion sensor)."""
    device = {
        "identifiers": [f"detectord_{safe_id(topics.prefix)}_{safe_id(camera)}"],
        "name": camera,
        "manufacturer": "detectord",
        "model": model,
        "sw_version": sw_version,
    }
    origin = {"name": "detectord", "sw_version": sw_version}
    stats = topics.topic(camera, "stats")
    fps = " + ".join(f"value_json.stages[{stage!r}].fps" for stage in inference_stages)

    def entity(component: str, key: str, name: str, **settings: Any) -> tuple[str, str, dict[str, Any]]:
        return component, key, _entity(topics, camera, device, origin, key, name, **settings)

    occupancy = {"component": "binary_sensor", "device_class": "occupancy", "payload_on": ON, "payload_off": OFF}
    count = {"component": "sensor", "state_class": "measurement", "icon": "mdi:account-group"}
    diagnostic = {"component": "sensor", "state_topic": stats, "entity_category": "diagnostic"}
    entities = [
        entity(
            key="person_occupancy", name="Person occupancy", state_topic=topics.topic(camera, "occupancy"), **occupancy
        ),
        entity(key="person_count", name="Person count", state_topic=topics.topic(camera, "person"), **count),
        entity("camera", "person_snapshot", "Person", topic=topics.topic(camera, "snapshot")),
        entity(
            key="inference_fps",
            name="Inference rate",
            value_template=f"{{{{ ({fps}) | round(2) }}}}",
            unit_of_measurement="fps",
            state_class="measurement",
            icon="mdi:speedometer",
            **diagnostic,
        ),
        entity(
            key="dropped_frames",
            name="Dropped frames",
            value_template="{{ value_json.drops.values() | sum }}",
            state_class="total_increasing",
            icon="mdi:image-off",
            **diagnostic,
        ),
    ]
    if motion:
        entities.append(
            entity("binary_sensor", "motion", "Motion", state_topic=topics.topic(camera, "motion"),
                   device_class="motion", payload_on=ON, payload_off=OFF)
        )  # fmt: skip
    for zone in zones:
        key = f"zone_{safe_id(zone)}"
        entities += [
            entity(key=f"{key}_occupancy", name=f"{zone} occupancy",
                   state_topic=topics.topic(camera, "zone_occupancy", zone), **occupancy),
            entity(key=f"{key}_person_count", name=f"{zone} person count",
                   state_topic=topics.topic(camera, "zone_person", zone), **count),
        ]  # fmt: skip
    return {
        f"{prefix}/{component}/{node}/{safe_id(camera)}_{safe_id(key)}/config": payload
        for component, key, payload in entities
    }
