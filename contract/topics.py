"""Topics: ``<prefix>/<camera>/<kind>``, and how each kind is published (QoS, retained)."""

from __future__ import annotations

from dataclasses import dataclass

from .names import is_valid_name
from .payloads import Malformed


@dataclass(frozen=True)
class TopicKind:
    name: str
    qos: int
    retain: bool


KINDS: dict[str, TopicKind] = {
    kind.name: kind
    for kind in (
        TopicKind("detections", qos=0, retain=False),
        TopicKind("frame", qos=0, retain=False),
        TopicKind("status", qos=1, retain=True),
        TopicKind("stats", qos=0, retain=True),
    )
}
"""Every kind of message per camera. A later kind (events, counts) is one more line here."""

DEFAULT_PREFIX = "detector"


def check_prefix(prefix: str) -> str:
    if not prefix or any(c in prefix for c in "#+") or prefix.endswith("/") or prefix.startswith("/"):
        raise ValueError(f"topic_prefix {prefix!r}: no wildcards, no leading or trailing '/'")
    return prefix


@dataclass(frozen=True)
class Topic:
    camera: str
    kind: TopicKind


@dataclass(frozen=True)
class Topics:
    """The topics under one prefix."""

    prefix: str = DEFAULT_PREFIX

    def __post_init__(self) -> None:
        check_prefix(self.prefix)

    def topic(self, camera: str, kind: str) -> str:
        return f"{self.prefix}/{camera}/{KINDS[kind].name}"

    def subscriptions(self) -> list[tuple[str, int]]:
        """(filter, QoS) pairs that receive every camera's messages of every kind."""
        return [(f"{self.prefix}/+/{kind.name}", kind.qos) for kind in KINDS.values()]

    def parse(self, topic: str) -> Topic:
        """The camera and kind of a received topic; Malformed for anything else."""
        head = self.prefix + "/"
        parts = topic[len(head) :].split("/") if topic.startswith(head) else []
        if len(parts) != 2 or parts[1] not in KINDS or not is_valid_name(parts[0]):
            raise Malformed(f"unexpected topic {topic[:128]!r}")
        return Topic(parts[0], KINDS[parts[1]])
