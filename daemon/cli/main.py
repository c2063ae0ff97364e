"""``detectord``: parse, build the configuration through one path, run, and turn errors into one line.

Every command's configuration comes from ``loading.build``: a dict made from
the TOML file (the live daemon's ``--config``), with the flags that were
given set on top under the key they name (the ``*_KEYS`` tables), converted
into the command's dataclass, which validates it.
"""

from __future__ import annotations

import argparse
import logging
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any, NoReturn, TypeVar

from detectord.contract import password_from_environment
from detectord.daemon.config import (
    BOTH_FORMS,
    AnalyzeConfig,
    ArchiveConfig,
    CalibrateConfig,
    ConfigError,
    DaemonConfig,
    DemoConfig,
    MqttConfig,
    TuneConfig,
)
from detectord.daemon.logs import configure_logging
from detectord.daemon.pipeline.stage import StageError
from detectord.detection import CalibrationError, PrecisionError, WeightsError
from detectord.ipc import RingError

from .loading import build, merge_overrides, read_tomls, set_dotted
from .parser import EXIT_USAGE, get_args_parser

log = logging.getLogger("detectord")

EXIT_ERROR = 1
EXIT_PARTIAL = 3
"""analyze: the video ended early (truncated or corrupt); every line decoded was written."""
EXIT_INTERRUPTED = 130

T = TypeVar("T")

MODEL_KEYS = {
    "model": "model.name",
    "weights": "model.weights",
    "profile": "model.profile",
    "device": "model.device",
    "precision": "model.precision",
    "calibration": "model.calibration",
    "force_precision": "model.force_precision",
    "score_threshold": "model.score_threshold",
    "main_threshold": "main_person.score_threshold",
    "threads": "model.threads",
}
"""Model flags and the configuration keys they set, for every command that runs a model."""

LIVE_KEYS = {
    "source": "source.uri",
    "loop": "source.loop",
    "camera": "camera",
    "mqtt_host": "mqtt.host",
    "mqtt_port": "mqtt.port",
    "mqtt_username": "mqtt.username",
    "mqtt_password": "mqtt.password",
    "mqtt_tls": "mqtt.tls",
    "mqtt_tls_ca": "mqtt.tls_ca",
    "mqtt_tls_cert": "mqtt.tls_cert",
    "mqtt_tls_key": "mqtt.tls_key",
    "topic_prefix": "mqtt.topic_prefix",
    **MODEL_KEYS,
}
MQTT_KEYS = {option: key.removeprefix("mqtt.") for option, key in LIVE_KEYS.items() if key.startswith("mqtt.")}
"""The broker flags, as keys of the ``[mqtt]`` table (``homeassistant-remove`` reads that table alone)."""
ANALYZE_KEYS = {
    "video": "video",
    "out": "out",
    "annotated": "annotated",
    "batch": "batch",
    "max_frames": "max_frames",
    "skip_still": "skip_still",
    **MODEL_KEYS,
}
ARCHIVE_KEYS = {
    "inputs": "inputs_file",
    "out_dir": "out_dir",
    "annotated_videos": "annotated",
    "force": "force",
    "jobs": "jobs",
    "ray": "ray",
    "chunk_frames": "chunk_frames",
    "ray_node_ip": "ray_node_ip",
    **{option: key for option, key in ANALYZE_KEYS.items() if option not in ("video", "out", "annotated")},
}
CALIBRATE_KEYS = {
    "video": "video",
    "out": "out",
    "frames": "frames",
    "model": "model.name",
    "weights": "model.weights",
    "profile": "model.profile",
}
TUNE_KEYS = {
    "video": "video",
    "out": "out",
    "frames": "frames",
    "schemes": "schemes",
    "model": "model.name",
    "weights": "model.weights",
    "profile": "model.profile",
    "device": "model.device",
}
DEMO_KEYS = {"mqtt_host": "daemon.mqtt.host", "mqtt_port": "daemon.mqtt.port", "port": "web_port"} | {
    option: f"daemon.{key}" for option, key in MODEL_KEYS.items()
}


def configure(
    cls: type[T],
    args: argparse.Namespace,
    keys: dict[str, str],
    data: dict[str, Any] | None = None,
    prefix: str = "",
    where: str = "",
) -> T:
    """``cls`` from ``data`` (a parsed TOML file, or nothing) with the flags in ``keys`` that were given set on top.

    ``where`` names the table ``cls`` is in the configuration file (``mqtt``), for messages.
    """
    data = {} if data is None else data
    for option, key in keys.items():
        value = getattr(args, option, None)
        if value is not None:
            set_dotted(data, key, str(value) if isinstance(value, Path) else value)
    size = getattr(args, "frame_size", None)
    if size is not None:
        set_dotted(data, f"{prefix}frame.width", size[0])
        set_dotted(data, f"{prefix}frame.height", size[1])
    return build(cls, data, where)


def live_config(args: argparse.Namespace, environ: dict[str, str] | None = None) -> DaemonConfig:
    """The daemon's configuration: the TOML file, then the flags given, then validated as a whole."""
    paths: list[Path] = args.config or []
    data = read_tomls(paths, _warn_if_others_can_read)
    if "cameras" in data and ("camera" in data or "source" in data):
        raise ConfigError(f"{', '.join(map(str, paths))}: {BOTH_FORMS}")
    merge_overrides(data, "cameras", ("frame", "main_person", "motion"))
    _password_from_environment(data, args, environ)
    return configure(DaemonConfig, args, LIVE_KEYS, data)


def _password_from_environment(data: dict[str, Any], args: argparse.Namespace, environ: dict[str, str] | None) -> None:
    """Neither the file nor a flag gives the password: the environment may (``DETECTORD_MQTT_PASSWORD``)."""
    mqtt = data.get("mqtt", {})
    if args.mqtt_password is not None or (isinstance(mqtt, dict) and "password" in mqtt):
        return
    password = password_from_environment(None, environ)
    if password is not None:
        set_dotted(data, "mqtt.password", password)


def _warn_if_others_can_read(path: Path, data: dict[str, Any]) -> None:
    """A password in a file every user may read is a password every user knows (ssh refuses such keys)."""
    mqtt = data.get("mqtt")
    if not (isinstance(mqtt, dict) and "password" in mqtt):
        return
    mode = path.stat().st_mode
    if mode & (stat.S_IROTH | stat.S_IWOTH):
        log.warning(
            "%s holds the MQTT password and every user can read it (mode %s); chmod 640 %s (or 600), or move the "
            "password to the environment (DETECTORD_MQTT_PASSWORD)",
            path,
            stat.filemode(mode),
            path,
        )


def _run_analyze(args: argparse.Namespace, log_level: int) -> int:
    from detectord.daemon.analyze import AnalysisFailed, analyze
    from detectord.daemon.output_files import OutputError

    if args.out_dir is not None:
        if args.out is not None or args.annotated is not None:
            raise ConfigError("--out and --annotated name one video's files; with --out-dir, use --annotated-videos")
        return _run_archive(args, log_level)
    if args.inputs is not None or len(args.video) != 1 or args.out is None:
        raise ConfigError(
            "analyze: one VIDEO with --out JSONL, or any number of inputs (videos, directories, globs, --inputs "
            "LIST) with --out-dir DIR"
        )
    for option in ("force", "jobs", "annotated_videos", "ray", "chunk_frames", "ray_node_ip"):
        if getattr(args, option) is not None:
            raise ConfigError(f"--{option.replace('_', '-')} needs --out-dir DIR (many videos)")
    args.video = Path(args.video[0])
    config = configure(AnalyzeConfig, args, ANALYZE_KEYS)
    try:
        summary = analyze(config, log_level=log_level, progress=args.progress)
    except (AnalysisFailed, OutputError) as exc:
        log.error("%s", exc)
        return EXIT_ERROR
    sys.stdout.write(summary.line() + "\n")
    if summary.interrupted:
        return EXIT_INTERRUPTED
    if summary.partial and not args.allow_partial:
        log.error(
            "%s ended after %d of the %d frames it announces (truncated or corrupt?); the %d lines are in %s; "
            "exit status %d (--allow-partial: 0)",
            config.video,
            summary.frames,
            summary.expected_frames,
            summary.frames,
            config.out,
            EXIT_PARTIAL,
        )
        return EXIT_PARTIAL
    return 0


def _run_archive(args: argparse.Namespace, log_level: int) -> int:
    from detectord.daemon.archive.local import run_archive

    config = configure(ArchiveConfig, args, ARCHIVE_KEYS, {"inputs": list(args.video)})
    if config.ray:
        from detectord.daemon.archive.cluster import run_on_ray

        summary = run_on_ray(config, config.ray, config.chunk_frames, config.ray_node_ip or None, args.progress)
    else:
        summary = run_archive(config, log_level=log_level, progress=args.progress)
    sys.stdout.write(summary.line() + "\n")
    if summary.interrupted:
        return EXIT_INTERRUPTED
    if summary.failed or summary.problems:
        return EXIT_ERROR
    if summary.partial and not args.allow_partial:
        return EXIT_PARTIAL
    return 0


def _run_calibrate(args: argparse.Namespace) -> int:
    from detectord.daemon.stages.sources import probe_video, sample_video
    from detectord.detection.registry import calibrate
    from detectord.detection.torchvision.quantization import save_calibration

    config = configure(CalibrateConfig, args, CALIBRATE_KEYS)
    video = probe_video(config.video)
    frames = sample_video(video, config.frames, config.frame.size)
    model = config.model
    artifact = calibrate(model, frames, config.frame.size, str(video.path))
    save_calibration(artifact, config.out)
    sys.stdout.write(
        f"calibrated {model.name} ({artifact['weights']}, profile {model.profile}) on {len(frames)} frames of "
        f"{video.path}; wrote {config.out} ({config.out.stat().st_size / 1e6:.1f} MB)\n"
    )
    return 0


def _run_live(args: argparse.Namespace, log_level: int) -> int:
    from detectord.daemon.live import check_runnable, run_daemon

    config = live_config(args)
    if args.check_config:
        check_runnable(config)
        cameras = ", ".join(f"camera {camera.name!r}, source {camera.source.uri!r}" for camera in config.live_cameras)
        sys.stdout.write(
            f"configuration OK: {cameras}, broker {config.mqtt.host}:{config.mqtt.port}, model {config.model.name} "
            f"({config.model.weights}, {config.model.profile}, {config.model.precision})\n"
        )
        return 0
    run_daemon(config, log_level=log_level)
    return 0


def _run_demo(args: argparse.Namespace) -> int:
    from detectord.daemon.stages.sources import LiveSource, SourceError

    from .demo import run_demo

    source = args.source
    if source is None:
        if not Path("/dev/video0").exists():
            log.error(
                "no camera at /dev/video0: pass --source with a video file (detectord demo --source street.mp4), "
                "a camera (/dev/videoN or an index) or a stream URL (rtsp://…)"
            )
            return EXIT_USAGE
        source = "/dev/video0"
    live = LiveSource(source)
    try:
        live.check()
    except SourceError as exc:
        log.error("%s", exc)
        return EXIT_USAGE
    data: dict[str, Any] = {"daemon": {"source": {"uri": source, "loop": live.kind == "file"}}}
    return run_demo(configure(DemoConfig, args, DEMO_KEYS, data, prefix="daemon."))


def _run_install(args: argparse.Namespace) -> int:
    from .install import InstallError, Plan, default_executable, install

    plan = Plan(
        root=args.root.resolve(),
        executable=(args.executable or default_executable()).resolve(),
        allow_home=args.allow_home,
        enable=args.enable,
    )
    try:
        written = install(plan)
    except (InstallError, subprocess.CalledProcessError, OSError) as exc:
        log.error("%s", exc)
        return EXIT_ERROR
    for path in written:
        sys.stdout.write(f"wrote {path}\n")
    if plan.live:
        sys.stdout.write("edit /etc/detector/detector.toml (source.uri), then: systemctl start detector\n")
    return 0


def _run_homeassistant_remove(args: argparse.Namespace) -> int:
    import asyncio

    from .homeassistant import remove_entities

    data = read_tomls(args.config or [])
    mqtt = data.get("mqtt", {})
    if not isinstance(mqtt, dict):
        raise ConfigError(f"mqtt: expected a table of settings, got {mqtt!r}")
    _password_from_environment(data, args, None)
    config = configure(MqttConfig, args, MQTT_KEYS, data.get("mqtt", {}), where="mqtt")
    cameras = _cameras_of(data, args)
    removed = asyncio.run(remove_entities(config, cameras))
    node = config.node(None if cameras is None else cameras[0])
    sys.stdout.write(f"removed {len(removed)} Home Assistant entities of node {node} from {config.address}\n")
    return 0


def _cameras_of(data: dict[str, Any], args: argparse.Namespace) -> list[str] | None:
    """The daemon's cameras as its configuration names them: None for ``[[cameras]]`` (whose node is the
    host's), else the single camera (``--camera``, ``camera``, or ``default``)."""
    if "cameras" in data:
        return None
    camera = args.camera or data.get("camera", "default")
    if not isinstance(camera, str):
        raise ConfigError(f"camera: expected a string, got {camera!r}")
    return [camera]


def main(argv: list[str] | None = None) -> int:
    args = get_args_parser().parse_args(argv)
    live = args.command is None
    chatty = args.command in (None, "demo")
    log_level = (logging.INFO if chatty else logging.WARNING, logging.INFO, logging.DEBUG)[min(args.verbose, 2)]
    configure_logging(log_level)
    try:
        if live:
            return _run_live(args, log_level)
        if args.command == "calibrate":
            return _run_calibrate(args)
        if args.command == "install-systemd":
            return _run_install(args)
        if args.command == "demo":
            return _run_demo(args)
        if args.command == "tune":
            from .tune import run_tune

            return run_tune(configure(TuneConfig, args, TUNE_KEYS))
        if args.command == "homeassistant-remove":
            return _run_homeassistant_remove(args)
        return _run_analyze(args, log_level)
    except ConfigError as exc:
        log.error("%s", exc)
        return EXIT_USAGE
    except (StageError, WeightsError, CalibrationError, PrecisionError, RingError) as exc:
        log.error("%s", exc)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED


def entry_point() -> NoReturn:
    sys.exit(main())
