"""The ``detectord`` command line: parse, validate once, run, and turn errors into one line."""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import NoReturn

from detectord.detection import (
    MODELS,
    PROFILES,
    SCHEMES,
    CalibrationError,
    MainPersonConfig,
    PrecisionError,
    WeightsError,
)

from .config import AnalyzeConfig, CalibrateConfig, ConfigError, DaemonConfig, FrameConfig, ModelConfig
from .logs import configure_logging
from .process import StageError
from .settings import build, read_toml, set_dotted

log = logging.getLogger("detectord")

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class _Parser(argparse.ArgumentParser):
    """argparse that reports a bad option in one line, like every other error."""

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"detectord: error: {message} (see {self.prog} --help)\n")
        sys.exit(EXIT_USAGE)


def _frame_size(text: str) -> FrameConfig:
    try:
        width, height = (int(v) for v in text.lower().split("x"))
        return FrameConfig(width=width, height=height)
    except (ValueError, ConfigError) as exc:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT such as 427x240 ({exc})") from None


def _add_model_options(parser: argparse.ArgumentParser, runtime: bool = True, defaults: bool = True) -> None:
    """Options naming a model; ``runtime`` adds how it runs (device, precision, thresholds).

    Without ``defaults`` every option defaults to None: the live daemon's flags
    override its config file only when given.
    """

    def default(value: object) -> object:
        return value if defaults else None

    group = parser.add_argument_group("model")
    group.add_argument(
        "--model", default=default(ModelConfig.name), choices=sorted(MODELS), help="torchvision detector"
    )
    group.add_argument(
        "--weights",
        default=default(ModelConfig.weights),
        help="'default' (torchvision's pretrained, downloaded once), 'random' (untrained: tests and timing "
        "only) or a state_dict file",
    )
    group.add_argument(
        "--profile", default=default(ModelConfig.profile), choices=sorted(PROFILES), help="inference profile"
    )
    if not runtime:
        return
    group.add_argument("--device", default=default(ModelConfig.device), help="auto, cpu, cuda or cuda:N")
    group.add_argument(
        "--precision",
        default=default(ModelConfig.precision),
        metavar="SCHEME",
        help=f"{', '.join(SCHEMES)}; append +channels_last to any",
    )
    group.add_argument("--calibration", type=Path, metavar="FILE", help="int8-static: from detectord calibrate")
    group.add_argument(
        "--score-threshold", type=float, default=None, help="report detections from this score (profile's default)"
    )
    group.add_argument(
        "--main-threshold",
        type=float,
        default=default(MainPersonConfig.score_threshold),
        help="minimum score of the main person",
    )


LIVE_OVERRIDES = {
    "source": "source.uri",
    "loop": "source.loop",
    "camera": "camera",
    "mqtt_host": "mqtt.host",
    "mqtt_port": "mqtt.port",
    "mqtt_username": "mqtt.username",
    "mqtt_password": "mqtt.password",
    "mqtt_tls": "mqtt.tls",
    "topic_prefix": "mqtt.topic_prefix",
    "model": "model.name",
    "weights": "model.weights",
    "profile": "model.profile",
    "device": "model.device",
    "precision": "model.precision",
    "calibration": "model.calibration",
    "score_threshold": "model.score_threshold",
    "main_threshold": "main_person.score_threshold",
}
"""Live flags and the config keys they override."""


def _add_live_options(parser: argparse.ArgumentParser) -> None:
    live = parser.add_argument_group("live daemon (when no command is given)")
    live.add_argument("--source", help="/dev/video0, a camera index, a video file, or an rtsp:// or http:// URL")
    live.add_argument("--config", type=Path, help="TOML configuration (flags override it)")
    live.add_argument("--check-config", action="store_true", help="validate the configuration, print it, exit")
    live.add_argument("--camera", help="camera name: topics, shared memory and systemd instance")
    live.add_argument("--loop", action="store_const", const=True, help="video files: start again at the end")
    live.add_argument("--frame-size", type=_frame_size, metavar="WxH", help="published frame size (427x240)")
    mqtt = parser.add_argument_group("MQTT")
    mqtt.add_argument("--mqtt-host")
    mqtt.add_argument("--mqtt-port", type=int)
    mqtt.add_argument("--mqtt-username")
    mqtt.add_argument("--mqtt-password", help="prefer the environment: DETECTORD_MQTT_PASSWORD")
    mqtt.add_argument("--mqtt-tls", action="store_const", const=True, help="connect with TLS")
    mqtt.add_argument("--topic-prefix", help="topic prefix (detector)")
    _add_model_options(parser, defaults=False)


def get_args_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="detectord",
        description="Real-time video object detection daemon. Without a command: the live daemon "
        "(detectord --source /dev/video0).",
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="-v: progress messages, -vv: debugging")
    _add_live_options(parser)
    commands = parser.add_subparsers(dest="command", parser_class=_Parser)
    analyze = commands.add_parser(
        "analyze",
        help="every frame of a video: main person per frame, JSONL and an annotated video",
        description="Analyse every frame of VIDEO exactly once, in order: detections and the main person per "
        "frame as JSON lines, boxes in pixels of the resized frame, and optionally an annotated MP4.",
    )
    analyze.add_argument("video", type=Path, metavar="VIDEO")
    analyze.add_argument("--out", type=Path, required=True, metavar="JSONL", help="one JSON line per frame")
    analyze.add_argument("--annotated", type=Path, metavar="MP4", help="also write the annotated video")
    analyze.add_argument("--batch", type=int, default=AnalyzeConfig.batch, help="frames per inference call")
    analyze.add_argument("--max-frames", type=int, metavar="N", help="analyse only the first N frames")
    analyze.add_argument(
        "--frame-size", type=_frame_size, default=FrameConfig(), metavar="WxH", help="analysis size (427x240)"
    )
    analyze.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None, help="progress bar")
    _add_model_options(analyze)
    calibrate = commands.add_parser(
        "calibrate",
        help="int8-static quantisation ranges from real frames of a video",
        description="Run frames spread over VIDEO through the model with observers on its backbone and save "
        "the int8-static artifact that --precision int8-static --calibration FILE loads. Calibrate with the "
        "model, weights, profile and frame size you will run with, on footage like what you will analyse.",
    )
    calibrate.add_argument("video", type=Path, metavar="VIDEO")
    calibrate.add_argument("--out", type=Path, required=True, metavar="FILE", help="the artifact to write")
    calibrate.add_argument("--frames", type=int, default=CalibrateConfig.frames, help="frames to calibrate on")
    calibrate.add_argument(
        "--frame-size", type=_frame_size, default=FrameConfig(), metavar="WxH", help="analysis size (427x240)"
    )
    _add_model_options(calibrate, runtime=False)
    demo = commands.add_parser(
        "demo",
        help="broker, daemon and viewer at once: detectord demo --source VIDEO|/dev/video0|URL",
        description="Start (or use) a Mosquitto broker, the daemon on SOURCE and the viewer, print the URL to "
        "open, and stop everything on Ctrl-C. A video file is played in a loop.",
    )
    demo.add_argument("--source", help="a video file, /dev/videoN, a camera index or a URL (default: /dev/video0)")
    demo.add_argument("--port", type=int, default=8080, help="the viewer's port")
    demo.add_argument("--mqtt-host", default="127.0.0.1", help="use this broker if it answers")
    demo.add_argument("--mqtt-port", type=int, default=1883)
    _add_model_options(demo, defaults=False)
    install = commands.add_parser(
        "install-systemd",
        help="install the systemd units, the service user and /etc/detector/detector.toml",
        description="Install detector.service and detector@.service (pointing at this detectord), create the "
        "system user 'detector' (group video), copy the example configuration to /etc/detector/detector.toml "
        "unless it exists, and enable mosquitto and detector. Then: systemctl start detector.",
    )
    install.add_argument("--root", type=Path, default=Path("/"), help="install into this staging root instead")
    install.add_argument("--executable", type=Path, help="the detectord the units run (default: this one)")
    install.add_argument("--allow-home", action="store_true", help="detectord lives under /home: ProtectHome=read-only")
    install.add_argument("--no-enable", dest="enable", action="store_false", help="do not enable the units")
    return parser


def _model_config(args: argparse.Namespace) -> ModelConfig:
    if args.command == "calibrate":
        return ModelConfig(name=args.model, weights=args.weights, device="cpu", profile=args.profile)
    return ModelConfig(
        name=args.model,
        weights=args.weights,
        device=args.device,
        profile=args.profile,
        score_threshold=args.score_threshold,
        precision=args.precision,
        calibration=args.calibration,
    )


def _main_person_config(args: argparse.Namespace) -> MainPersonConfig:
    try:
        return MainPersonConfig(score_threshold=args.main_threshold)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def _run_analyze(args: argparse.Namespace, log_level: int) -> int:
    from .analyze import AnalysisFailed, analyze

    config = AnalyzeConfig(
        video=args.video,
        out=args.out,
        annotated=args.annotated,
        batch=args.batch,
        max_frames=args.max_frames,
        frame=args.frame_size,
        model=_model_config(args),
        main_person=_main_person_config(args),
    )
    try:
        summary = analyze(config, log_level=log_level, progress=args.progress)
    except AnalysisFailed as exc:
        log.error("%s; the lines written so far are in %s", exc, config.out)
        return EXIT_ERROR
    sys.stdout.write(summary.line() + "\n")
    return EXIT_INTERRUPTED if summary.interrupted else 0


def _run_calibrate(args: argparse.Namespace) -> int:
    from detectord.detection import calibrate_detector
    from detectord.detection.quantization import save_calibration

    from .sources import VideoFile, probe_video

    config = CalibrateConfig(
        video=args.video, out=args.out, frames=args.frames, frame=args.frame_size, model=_model_config(args)
    )
    video = probe_video(config.video)
    source = VideoFile(video)
    try:
        frames = source.sample(config.frames, config.frame.size)
    finally:
        source.close()
    model = config.model
    artifact = calibrate_detector(
        frames, model.name, model.weights, model.profile, frame_size=config.frame.size, source=str(video.path)
    )
    save_calibration(artifact, config.out)
    sys.stdout.write(
        f"calibrated {model.name} ({artifact['weights']}, profile {model.profile}) on {len(frames)} frames of "
        f"{video.path}; wrote {config.out} ({config.out.stat().st_size / 1e6:.1f} MB)\n"
    )
    return 0


def live_config(args: argparse.Namespace, environ: dict[str, str] | None = None) -> DaemonConfig:
    """The daemon's configuration: the TOML file, then the flags given, then validated as a whole."""
    data = read_toml(args.config) if args.config else {}
    for option, key in LIVE_OVERRIDES.items():
        value = getattr(args, option, None)
        if value is not None:
            set_dotted(data, key, str(value) if isinstance(value, Path) else value)
    if args.frame_size is not None:
        set_dotted(data, "frame.width", args.frame_size.width)
        set_dotted(data, "frame.height", args.frame_size.height)
    env = os.environ if environ is None else environ
    mqtt = data.get("mqtt", {})
    if "password" not in mqtt and env.get("DETECTORD_MQTT_PASSWORD"):
        set_dotted(data, "mqtt.password", env["DETECTORD_MQTT_PASSWORD"])
    return build(DaemonConfig, data)


def _run_live(args: argparse.Namespace, log_level: int) -> int:
    from .live import run_daemon

    if args.check_config:
        try:
            config = live_config(args)
            config.model.check_runnable()
        except ConfigError as exc:
            log.error("%s", exc)
            return EXIT_ERROR
        sys.stdout.write(
            f"configuration OK: camera {config.camera!r}, source {config.source.uri!r}, "
            f"broker {config.mqtt.host}:{config.mqtt.port}, model {config.model.name} "
            f"({config.model.weights}, {config.model.profile}, {config.model.precision})\n"
        )
        return 0
    run_daemon(live_config(args), log_level=log_level)
    return 0


DEMO_MODEL_FLAGS = ("model", "weights", "profile", "device", "precision", "calibration", "score_threshold",
                    "main_threshold")  # fmt: skip


def _run_demo(args: argparse.Namespace) -> int:
    from .demo import DemoConfig, run_demo
    from .sources import LiveSource, SourceError

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
    flags: list[str] = ["--loop"] if live.kind == "file" else []
    for name in DEMO_MODEL_FLAGS:
        value = getattr(args, name)
        if value is not None:
            flags += [f"--{name.replace('_', '-')}", str(value)]
    return run_demo(DemoConfig(source, tuple(flags), args.mqtt_host, args.mqtt_port, web_port=args.port))


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
        return _run_analyze(args, log_level)
    except ConfigError as exc:
        log.error("%s", exc)
        return EXIT_USAGE
    except (StageError, WeightsError, CalibrationError, PrecisionError) as exc:
        log.error("%s", exc)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED


def entry_point() -> NoReturn:
    sys.exit(main())
