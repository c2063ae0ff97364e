"""The live daemon's configuration (``detectord``, ``detectord demo``): cameras, broker, gating, pictures."""

from __future__ import annotations

import socket
from dataclasses import dataclass, field

from detectord.contract import BrokerConfig, check_name
from detectord.contract.homeassistant import DEFAULT_PREFIX as HA_PREFIX
from detectord.contract.homeassistant import node_for, safe_id
from detectord.detection import MainPersonConfig
from detectord.detection.motion import MotionConfig
from detectord.events import EventsConfig, Zone, ZoneConfig, resolve_zones

from .common import ConfigError, FrameConfig, ModelConfig, parse_size


@dataclass(frozen=True)
class SourceConfig:
    uri: str = ""
    """A V4L2 device (/dev/video0), a camera index (0), a video file, or an rtsp:// or http(s):// URL."""
    loop: bool = False
    """Video files: start again at the end instead of stopping."""
    reconnect_min_s: float = 1.0
    """First wait before reopening a source that failed; doubles per failure."""
    reconnect_max_s: float = 30.0
    """Longest wait between reopening attempts."""
    stall_timeout_s: float = 10.0
    """A source that delivers no frame for this long is reopened."""

    def __post_init__(self) -> None:
        if not 0 < self.reconnect_min_s <= self.reconnect_max_s:
            raise ConfigError("source.reconnect_min_s must be positive and at most source.reconnect_max_s")
        if self.stall_timeout_s <= 0:
            raise ConfigError(f"source.stall_timeout_s must be positive, got {self.stall_timeout_s}")


@dataclass(frozen=True)
class MqttConfig(BrokerConfig):
    """The broker (``detectord.contract.BrokerConfig``), and how this daemon publishes to it."""

    jpeg_quality: int = 80
    """JPEG quality (1-100) of the published frames."""
    stats_interval_s: float = 5.0
    """How often the retained stats message is published."""
    homeassistant: bool = True
    """Announce every camera to Home Assistant (MQTT discovery)."""
    homeassistant_prefix: str = HA_PREFIX
    """Home Assistant's discovery prefix (its MQTT integration's setting)."""
    outbox_events: int = 500
    """Events kept, with their messages and snapshots, while the broker is away (about 30 KB each); past that,
    the oldest are dropped whole and counted (stats ``drops.events``)."""
    homeassistant_node: str = ""
    """Names this daemon's entities in discovery topics; empty: ``detectord_<host>_<camera>`` for a single
    camera, ``detectord_<host>`` with ``[[cameras]]``."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.homeassistant_prefix or any(c in self.homeassistant_prefix for c in "#+"):
            raise ConfigError("mqtt.homeassistant_prefix must be a topic without wildcards")
        if self.homeassistant_node and safe_id(self.homeassistant_node) != self.homeassistant_node:
            raise ConfigError("mqtt.homeassistant_node may hold letters, digits, '_' and '-' only")
        if not 1 <= self.jpeg_quality <= 100:
            raise ConfigError(f"mqtt.jpeg_quality must be between 1 and 100, got {self.jpeg_quality}")
        if self.stats_interval_s <= 0:
            raise ConfigError(f"mqtt.stats_interval_s must be positive, got {self.stats_interval_s}")
        if not 1 <= self.outbox_events <= 100_000:
            raise ConfigError(f"mqtt.outbox_events must be between 1 and 100000, got {self.outbox_events}")

    def node(self, camera: str | None) -> str:
        """The discovery node id of the daemon whose single camera is ``camera`` (None: ``[[cameras]]``)."""
        return self.homeassistant_node or node_for(socket.gethostname(), camera)

    @property
    def legacy_node(self) -> str:
        """The node every daemon of a host shared before node ids named the instance: its own cameras'
        entities are taken from there when it starts."""
        return node_for(socket.gethostname())


def _check_camera_name(name: str) -> None:
    try:
        check_name(name, "camera")
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


@dataclass(frozen=True)
class CameraConfig:
    """One camera of a daemon (``[[cameras]]``); its ``frame`` and ``main_person`` override the daemon's."""

    name: str
    """In topics, shared-memory segment names and the viewer; unique across every host on one broker."""
    enabled: bool = True
    """A disabled camera starts nothing."""
    source: SourceConfig = field(default_factory=SourceConfig)
    frame: FrameConfig | None = None
    main_person: MainPersonConfig | None = None
    motion: MotionConfig | None = None
    """This camera's ``[cameras.motion]``, over the daemon's ``[motion]`` (its mask is the camera's own)."""
    zones: tuple[ZoneConfig, ...] = ()
    """Named areas of this camera's picture (``[[cameras.zones]]``)."""

    def __post_init__(self) -> None:
        _check_camera_name(self.name)
        if not self.source.uri:
            raise ConfigError("source.uri is not set")


@dataclass(frozen=True)
class InferenceConfig:
    batch: int = 4
    """Most frames one model call takes: at most one per camera, the newest of each."""
    workers: int = 1
    """Inference processes (each with its own copy of the model) sharing the cameras' frames."""

    def __post_init__(self) -> None:
        for key, value, most in (("batch", self.batch, 64), ("workers", self.workers, 8)):
            if not 1 <= value <= most:
                raise ConfigError(f"inference.{key} must be between 1 and {most}, got {value}")


FRAME_SIZES = ("detect", "native")


@dataclass(frozen=True)
class PublishConfig:
    """``[publish]``: the pictures the daemon publishes, beside the small frame the model sees.

    The capture stage keeps each camera's full frame (``native``) in a second
    ring; event snapshots, their crops and Home Assistant's camera are
    rendered from it, and the live frames may be.
    """

    native: bool = True
    """Keep the camera's full-resolution frame for snapshots (and ``frame_size``); false: everything is the
    detection frame (no second ring, no extra memory)."""
    native_max: str = "1920x1080"
    """Largest full frame kept, ``WxH``: a bigger camera picture is scaled down to fit (the ring is sized for
    it: 6.2 MB a slot at 1920x1080)."""
    frame_size: str = "detect"
    """Live frames (the viewer): ``detect`` (the model's frame), ``native`` (the full frame), or ``WxH`` (the
    full frame scaled to fit in it)."""

    def __post_init__(self) -> None:
        parse_size(self.native_max, "publish.native_max")
        if self.frame_size not in FRAME_SIZES:
            parse_size(self.frame_size, "publish.frame_size")
        if self.frame_size != "detect" and not self.native:
            raise ConfigError(
                f"publish.frame_size = {self.frame_size!r} needs the full frame: set publish.native = true "
                'or frame_size = "detect"'
            )

    @property
    def native_size(self) -> tuple[int, int] | None:
        """(width, height) of the largest full frame kept; None when none is."""
        return parse_size(self.native_max, "publish.native_max") if self.native else None

    @property
    def frame_box(self) -> tuple[int, int] | None:
        """The size live frames are fitted into; None for the detection frame, (0, 0) for the full frame."""
        if self.frame_size == "detect":
            return None
        if self.frame_size == "native":
            return 0, 0
        return parse_size(self.frame_size, "publish.frame_size")


@dataclass(frozen=True)
class DetectConfig:
    """``[detect]``: when the model runs on a camera whose motion gating is on (``[motion]``)."""

    stationary_interval_s: float = 2.0
    """While the last model run on a camera found a person, run it again at least this often, moving or not:
    a person standing still stays followed, and their event goes on (keep it below ``events.end_after_s``)."""
    idle_interval_s: float = 10.0
    """Run the model at least this often on a camera where nothing moves (keep-alive: state heals)."""
    idle_fps: float = 1.0
    """Frames published per second of a camera the model is idle on (marked: the model did not run on them),
    so that the viewer stays live."""
    regions: bool = True
    """Look at the parts of a gated frame that moved (and the people there) rather than at the whole frame,
    where the detector can (``detection/regions.py``); keep-alive looks are always whole."""

    def __post_init__(self) -> None:
        for key, value, low, high in (
            ("stationary_interval_s", self.stationary_interval_s, 0.1, 3600.0),
            ("idle_interval_s", self.idle_interval_s, 0.1, 3600.0),
            ("idle_fps", self.idle_fps, 0.1, 30.0),
        ):
            if not low <= value <= high:
                raise ConfigError(f"detect.{key} must be between {low:g} and {high:g}, got {value}")


BOTH_FORMS = (
    "both forms of camera configuration: use [[cameras]] tables (several cameras) or camera and [source] "
    "(one camera, also --camera and --source), not both"
)


@dataclass(frozen=True)
class DaemonConfig:
    """``detectord``: live sources through capture -> inference -> publish, to MQTT.

    One camera (``camera`` and ``[source]``, or ``--camera`` and ``--source``)
    or several (``[[cameras]]``), never both.
    """

    camera: str = "default"
    """The single camera's name: in topics, shared-memory segment names and the systemd instance."""
    source: SourceConfig = field(default_factory=SourceConfig)
    cameras: tuple[CameraConfig, ...] = ()
    """Several cameras, one model: each with its name, source and optional frame and main_person."""
    frame: FrameConfig = field(default_factory=FrameConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    main_person: MainPersonConfig = field(default_factory=MainPersonConfig)
    inference: InferenceConfig = field(default_factory=InferenceConfig)
    mqtt: MqttConfig = field(default_factory=MqttConfig)
    events: EventsConfig = field(default_factory=EventsConfig)
    motion: MotionConfig = field(default_factory=MotionConfig)
    """Motion gating: the model runs where something moves (``[detect]`` says when else)."""
    detect: DetectConfig = field(default_factory=DetectConfig)
    publish: PublishConfig = field(default_factory=PublishConfig)
    """Full-resolution pictures: snapshots, Home Assistant's camera, the live frames' size."""
    zones: tuple[ZoneConfig, ...] = ()
    """The single camera's zones (``[[zones]]``); with ``[[cameras]]`` each camera has its own."""

    def __post_init__(self) -> None:
        _check_camera_name(self.camera)
        if self.cameras:
            if self.source.uri:
                raise ConfigError(BOTH_FORMS)
            if self.zones:
                raise ConfigError("zones: with [[cameras]], each camera has its own zones ([[cameras.zones]])")
            if self.motion.mask:
                raise ConfigError("motion.mask: with [[cameras]], each camera has its own mask ([cameras.motion])")
            seen: set[str] = set()
            for camera in self.cameras:
                if camera.name in seen:
                    raise ConfigError(f"cameras.{camera.name}: two cameras are called {camera.name!r}")
                seen.add(camera.name)
            if not self.live_cameras:
                raise ConfigError("cameras: every camera is disabled; nothing to run")
        elif not self.source.uri:
            raise ConfigError("source.uri is not set: pass --source (a device, camera index, file or URL)")
        for camera in self.live_cameras:
            where = f"cameras.{camera.name}." if self.cameras else ""
            try:
                self.zones_of(camera)
            except ValueError as exc:
                raise ConfigError(f"{where}zones: {exc}") from None
            try:
                self.motion_of(camera).mask_in(self.frame_of(camera).size)
            except ValueError as exc:
                raise ConfigError(f"{where}{exc}") from None
        gated = any(self.motion_of(camera).enabled for camera in self.live_cameras)
        if gated and self.detect.stationary_interval_s >= self.events.end_after_s:
            raise ConfigError(
                f"detect.stationary_interval_s ({self.detect.stationary_interval_s:g}) must be below "
                f"events.end_after_s ({self.events.end_after_s:g}) with motion gating on: a person standing still "
                "is looked at that often, and their event would end between looks"
            )

    @property
    def live_cameras(self) -> tuple[CameraConfig, ...]:
        """The cameras to run: the enabled ``[[cameras]]``, or the single camera as one of them."""
        if not self.cameras:
            return (CameraConfig(self.camera, source=self.source, zones=self.zones, motion=self.motion),)
        return tuple(camera for camera in self.cameras if camera.enabled)

    @property
    def node(self) -> str:
        """This daemon's Home Assistant node id (``MqttConfig.node``)."""
        return self.mqtt.node(None if self.cameras else self.camera)

    def frame_of(self, camera: CameraConfig) -> FrameConfig:
        return camera.frame or self.frame

    def main_person_of(self, camera: CameraConfig) -> MainPersonConfig:
        return camera.main_person or self.main_person

    def motion_of(self, camera: CameraConfig) -> MotionConfig:
        return camera.motion or self.motion

    def zones_of(self, camera: CameraConfig) -> tuple[Zone, ...]:
        """The camera's zones in pixels of its frames."""
        return resolve_zones(camera.zones, self.frame_of(camera).size)


@dataclass(frozen=True)
class DemoConfig:
    """``detectord demo``: a broker (the configured one if it answers, else a private one), the daemon, the viewer."""

    daemon: DaemonConfig
    """The daemon as it would run on its own; its broker is replaced by a private one if that one is down."""
    web_host: str = "127.0.0.1"
    web_port: int = 8080

    def __post_init__(self) -> None:
        if not 1 <= self.web_port <= 65535:
            raise ConfigError(f"web_port must be between 1 and 65535, got {self.web_port}")
