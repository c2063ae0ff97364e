"""Topics: ``<prefix>/<camera>/<path>``, and how each kind is published (QoS, retained)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from .names import is_valid_name
from .payloads import Malformed

ZONE = "{zone}"


@dataclass(frozen=True)
class TopicKind:
    name: str
    qos: int
    retain: bool
    path: str = ""
    """Where under the camera, when it is not the kind's name; ``{zone}`` stands for a zone's name."""

    @property
    def where(self) -> str:
        return self.path or self.name

    @property
    def zoned(self) -> bool:
        return ZONE in self.where


KINDS: dict[str, TopicKind] = {
    kind.name: kind
    for kind in (
        TopicKind("detections", qos=0, retain=False),
        TopicKind("frame", qos=0, retain=False),
        TopicKind("status", qos=1, retain=True),
        TopicKind("stats", qos=0, retain=True),
        TopicKind("events", qos=1, retain=False),
        TopicKind("person", qos=1, retain=True),
        TopicKind("occupancy", qos=1, retain=True),
        TopicKind("motion", qos=1, retain=True),
        TopicKind("snapshot", qos=1, retain=True, path="person/snapshot"),
        TopicKind("zones", qos=1, retain=True),
        TopicKind("zone_person", qos=1, retain=True, path=f"zones/{ZONE}/person"),
        TopicKind("zone_occupancy", qos=1, retain=True, path=f"zones/{ZONE}/occupancy"),
    )
}
"""Every kind of message per camera. A later kind is one more line here."""

_PATTERNS = {
    kind.name: re.compile("^" + re.escape(kind.where).replace(re.escape(ZONE), "(?P<zone>[^/]+)") + "$")
    for kind in KINDS.values()
}

DEFAULT_PREFIX = "detector"


def check_prefix(prefix: str) -> str:
    if not prefix or any(c in prefix for c in "#+") or prefix.endswith("/") or prefix.startswith("/"):
        raise ValueError(f"topic_prefix {prefix!r}: no wildcards, no leading or trailing '/'")
    return prefix


@dataclass(frozen=True)
class Topic:
    camera: str
    kind: TopicKind
    zone: str | None = None


@dataclass(frozen=True)
class Topics:
    """The topics under one prefix."""

    prefix: str = DEFAULT_PREFIX

    def __post_init__(self) -> None:
        check_prefix(self.prefix)

    def topic(self, camera: str, kind: str, zone: str | None = None) -> str:
        spec = KINDS[kind]
        if spec.zoned != (zone is not None):
            raise ValueError(f"topic kind {kind!r} {'needs' if spec.zoned else 'takes no'} zone")
        return f"{self.prefix}/{camera}/{spec.where.replace(ZONE, zone or '')}"

    def subscriptions(self) -> list[tuple[str, int]]:
        """(filter, QoS) pairs that receive every camera's messages of every kind."""
        return [(f"{self.prefix}/+/{kind.where.replace(ZONE, '+')}", kind.qos) for kind in KINDS.values()]

    def parse(self, topic: str) -> Topic:
        """The camera, kind and zone of a received topic; Malformed for anything else."""
        head = self.prefix + "/"
        camera, _, rest = topic[len(head) :].partition("/") if topic.startswith(head) else ("", "", "")
        if is_valid_name(camera):
            for name, pattern in _PATTERNS.items():
                match = pattern.match(rest)
                if match is None:
                    continue
                zone = match.groupdict().get("zone")
                if zone is None or is_valid_name(zone):
                    return Topic(camera, KINDS[name], zone)
        raise Malformed(f"unexpected topic {topic[:128]!r}")
