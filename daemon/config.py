"""Configuration as data: typed, frozen, validated once at the edge with messages naming the key.

What a value may be is decided where the value is used (``detectord.detection``
for the model, ``detectord.contract`` for the broker); these dataclasses only
add the key's name to the message. ``cli.loading`` fills them from TOML and
flags.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from pathlib import Path

from detectord.contract import BrokerConfig, check_name
from detectord.contract.homeassistant import DEFAULT_PREFIX as HA_PREFIX
from detectord.contract.homeassistant import node_for, safe_id
from detectord.detection import (
    PROFILES,
    DetectorOptions,
    MainPersonConfig,
    ModelOptionError,
    Precision,
    PrecisionError,
    check_options,
    family,
    resolve_device_name,
)
from detectord.detection.motion import MotionConfig
from detectord.events import EventsConfig, Zone, ZoneConfig, resolve_zones


class ConfigError(ValueError):
    """A configuration value is invalid; the message names the key."""


DEFAULT_FRAME_SIZE = (427, 240)
"""(width, height): the product's frame size, what the main-person job needs and no more."""


@dataclass(frozen=True)
class FrameConfig:
    width: int = DEFAULT_FRAME_SIZE[0]
    """Width of the frames every stage works on (and of published frames), pixels."""
    height: int = DEFAULT_FRAME_SIZE[1]
    """Height of those frames, pixels."""

    def __post_init__(self) -> None:
        for key, value in (("frame.width", self.width), ("frame.height", self.height)):
            if not 16 <= value <= 8192:
                raise ConfigError(f"{key} must be between 16 and 8192 pixels, got {value}")

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.height, self.width, 3

    @property
    def size(self) -> tuple[int, int]:
        return self.width, self.height


@dataclass(frozen=True)
class ModelConfig(DetectorOptions):
    """``[model]``: the detector and how it runs (its settings are ``detection.DetectorOptions``')."""

    def __post_init__(self) -> None:
        try:
            check_options(self)
        except ModelOptionError as exc:
            raise ConfigError(f"model.{exc.option}: {exc}") from None

    def check_runnable(self) -> None:
        """Refuse, before any process starts, what this machine cannot run (no CUDA, fp16 on a CPU).

        Whether CUDA is there is only asked when the answer matters (``auto``
        with a scheme that runs anywhere needs no answer).
        """
        precision = Precision.parse(self.precision)
        if self.device == "auto" and precision.device_types == {"cpu", "cuda"}:
            return
        try:
            device = resolve_device_name(self.device)
            precision.check_device(device.split(":")[0])
        except ValueError as exc:
            raise ConfigError(f"model: {exc}") from None

    @property
    def max_detections(self) -> int:
        return PROFILES[self.profile].detections_per_image


@dataclass(frozen=True)
class CalibrateConfig:
    """``detectord calibrate``: int8-static quantisation ranges from real frames of a video."""

    video: Path
    out: Path
    frames: int = 64
    """Frames to calibrate on, spread evenly over the video."""
    frame: FrameConfig = field(default_factory=FrameConfig)
    model: ModelConfig = field(default_factory=ModelConfig)

    def __post_init__(self) -> None:
        if not 1 <= self.frames <= 10000:
            raise ConfigError(f"frames must be between 1 and 10000, got {self.frames}")
        if not self.out.parent.is_dir():
            raise ConfigError(f"out: directory {str(self.out.parent)!r} does not exist")


@dataclass(frozen=True)
class TuneConfig:
    """``detectord tune``: every precision scheme on the user's own footage; the fastest faithful one."""

    video: Path
    out: Path = Path("tune.toml")
    """The ``[model]`` settings to include after the daemon's own configuration."""
    frames: int = 16
    """Frames measured, spread over the video."""
    calibration_frames: int = 32
    """Frames int8-static is calibrated on (CPU)."""
    schemes: str = ""
    """Comma-separated schemes to measure (fp32, the reference, always is); empty: every one this device runs."""
    frame: FrameConfig = field(default_factory=FrameConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    main_person: MainPersonConfig = field(default_factory=MainPersonConfig)

    def __post_init__(self) -> None:
        for scheme in self.scheme_list:
            try:
                if Precision.parse(scheme).auto:
                    raise ConfigError("schemes: auto is what tune decides; name schemes")
            except PrecisionError as exc:
                raise ConfigError(f"schemes: {exc}") from None
        if not 2 <= self.frames <= 1000:
            raise ConfigError(f"frames must be between 2 and 1000, got {self.frames}")
        if not 1 <= self.calibration_frames <= 10000:
            raise ConfigError(f"calibration_frames must be between 1 and 10000, got {self.calibration_frames}")
        if not self.out.parent.is_dir():
            raise ConfigError(f"out: directory {str(self.out.parent)!r} does not exist")
        if self.out.suffix != ".toml":
            raise ConfigError(f"out: write a .toml file, not {self.out.name!r}")
        if not family(self.model.name).precisions:
            raise ConfigError(f"model.name: {self.model.name} runs in one precision only; there is nothing to tune")

    @property
    def scheme_list(self) -> list[str]:
        return [scheme.strip() for scheme in self.schemes.split(",") if scheme.strip()]


@dataclass(frozen=True)
class AnalysisSettings:
    """How every frame of a video is analysed; ``AnalyzeConfig`` (one video) and ``ArchiveConfig`` (many) add
    where."""

    batch: int = 4
    """Frames per inference call."""
    max_frames: int | None = None
    """Analyse only the first this many frames (None: all)."""
    skip_still: bool = False
    """Where nothing moved since the last frame the model ran on, reuse its detections (marked) instead of
    running the model: every frame is still written once."""
    frame: FrameConfig = field(default_factory=FrameConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    main_person: MainPersonConfig = field(default_factory=MainPersonConfig)

    def __post_init__(self) -> None:
        if not 1 <= self.batch <= 64:
            raise ConfigError(f"batch must be between 1 and 64, got {self.batch}")
        if self.max_frames is not None and self.max_frames < 1:
            raise ConfigError(f"max_frames must be at least 1, got {self.max_frames}")


@dataclass(frozen=True, kw_only=True)
class AnalyzeConfig(AnalysisSettings):
    """``detectord analyze VIDEO --out JSONL``: one video, every frame, JSONL and an annotated video."""

    video: Path
    out: Path
    annotated: Path | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        for key, path in (("out", self.out), ("annotated", self.annotated)):
            if path is not None and not path.parent.is_dir():
                raise ConfigError(f"{key}: directory {str(path.parent)!r} does not exist")
        if self.annotated is not None and self.annotated.suffix.lower() != ".mp4":
            raise ConfigError(f"annotated: write an .mp4 file, not {self.annotated.name!r}")


@dataclass(frozen=True, kw_only=True)
class ArchiveConfig(AnalysisSettings):
    """``detectord analyze INPUT… --out-dir DIR``: many videos, each analysed as ``AnalyzeConfig`` would, with a
    manifest that makes a second run skip what is done (``daemon/archive``)."""

    inputs: tuple[str, ...] = ()
    """Videos, directories (every video below) and globs."""
    inputs_file: Path | None = None
    """More inputs, one per line (``--inputs LIST``)."""
    out_dir: Path
    annotated: bool = False
    """Also write each video's annotated MP4 beside its JSONL."""
    force: bool = False
    """Analyse again the videos the manifest says are done."""
    jobs: int = 0
    """Videos analysed at once on this machine; 0: from its cores (``archive.local.plan``)."""
    ray: str = ""
    """Run on the Ray cluster at this address (``auto``: ``RAY_ADDRESS``, or the cluster started on this
    machine); empty: on this machine."""
    chunk_frames: int | None = None
    """With ``ray``: cut videos longer than this many frames into equal chunks no longer (0: a task per video;
    None: from the job's frames and the cluster's CPUs, ``archive.cluster.chunk_size``)."""
    ray_node_ip: str = ""
    """With ``ray``: this machine's address in the cluster, where Ray cannot guess it (several interfaces)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.inputs and self.inputs_file is None:
            raise ConfigError("no input: name videos, directories or globs, or --inputs LIST")
        if self.out_dir.exists() and not self.out_dir.is_dir():
            raise ConfigError(f"out_dir: {str(self.out_dir)!r} is not a directory")
        if not 0 <= self.jobs <= 256:
            raise ConfigError(f"jobs must be between 0 (from the cores) and 256, got {self.jobs}")
        if self.chunk_frames is not None and self.chunk_frames < 0:
            raise ConfigError(f"chunk_frames must be 0 (a task per video) or more, got {self.chunk_frames}")
        if (self.chunk_frames is not None or self.ray_node_ip) and not self.ray:
            raise ConfigError("--chunk-frames and --ray-node-ip are for a Ray cluster: add --ray ADDRESS")


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


def parse_size(text: str, key: str) -> tuple[int, int]:
    """``"1280x720"`` (or with the multiplication sign) -> (1280, 720); ConfigError naming ``key`` otherwise."""
    width, sep, height = text.lower().replace("\u00d7", "x").partition("x")
    if not (sep and width.strip().isdigit() and height.strip().isdigit()):
        raise ConfigError(f'{key} must be WIDTHxHEIGHT (e.g. "1280x720"), got {text!r}')
    size = int(width), int(height)
    if not all(16 <= v <= 8192 for v in size):
        raise ConfigError(f"{key}: width and height must be between 16 and 8192 pixels, got {text!r}")
    return size


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
