"""The MQTT contract between the daemon and everything that listens to it (the viewer, automations).

A leaf package: it imports neither ``detectord.daemon`` nor ``detectord.web``,
so both sides import the same topics, payload builders, validators and broker
settings, and a change to the wire format is made here once. ARCHITECTURE.md
("The MQTT contract") describes the messages.
"""

from .broker import BrokerConfig, connect_once, connect_with_backoff, make_client, password_from_environment
from .names import NAME_RULE, check_name, is_valid_name
from .payloads import (
    OFFLINE,
    ONLINE,
    VERSION,
    Detection,
    DetectionsMessage,
    Malformed,
    build_detections,
    frame_properties,
    parse_detections,
    parse_frame,
    parse_status,
)
from .stats import StatsMessage, build_stats, parse_stats
from .topics import KINDS, TopicKind, Topics

__all__ = [
    "KINDS",
    "NAME_RULE",
    "OFFLINE",
    "ONLINE",
    "VERSION",
    "BrokerConfig",
    "Detection",
    "DetectionsMessage",
    "Malformed",
    "StatsMessage",
    "TopicKind",
    "Topics",
    "build_detections",
    "build_stats",
    "check_name",
    "connect_once",
    "connect_with_backoff",
    "frame_properties",
    "is_valid_name",
    "make_client",
    "parse_detections",
    "parse_frame",
    "parse_stats",
    "parse_status",
    "password_from_environment",
]
