"""The ``detectord`` command line: every option of every command, and nothing else.

Options default to None (or are absent): the defaults live once, in the
configuration dataclasses, and ``main`` turns the options given into
configuration through the same path as a TOML file (``loading``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import NoReturn

from detectord.detection import DETECTORS, PROFILES, SCHEMES

EXIT_USAGE = 2
VERBOSE_HELP = "-v: progress messages, -vv: debugging"

ANALYZE_TEXT = (
    "every frame of a video (or of many): main person per frame, JSONL and an annotated video",
    "Analyse every frame of VIDEO exactly once, in order: detections and the main person per frame as JSON lines, "
    "boxes in pixels of the resized frame, and optionally an annotated MP4. With --out-dir, any number of videos, "
    "directories and globs: one JSONL per video under DIR (names mirrored) and DIR/manifest.jsonl; several videos "
    "at once on this machine's cores; a second run skips what is done.",
)
CALIBRATE_TEXT = (
    "int8-static quantisation ranges from real frames of a video",
    "Run frames spread over VIDEO through the model with observers on its backbone and save the int8-static "
    "artifact that --precision int8-static --calibration FILE loads. Calibrate with the model, weights, profile and "
    "frame size you will run with, on footage like what you will analyse.",
)


class _Parser(argparse.ArgumentParser):
    """argparse that reports a bad option in one line, like every other error."""

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"detectord: error: {message} (see {self.prog} --help)\n")
        sys.exit(EXIT_USAGE)


def frame_size(text: str) -> tuple[int, int]:
    """``WIDTHxHEIGHT`` as (width, height); whether the size is sensible is the configuration's call."""
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError("expected WIDTHxHEIGHT such as 427x240") from None
    return width, height


def add_tls_files(group: argparse._ArgumentGroup) -> None:
    """The TLS files of a broker connection (the viewer's command line has them too)."""
    group.add_argument("--mqtt-tls-ca", type=Path, metavar="PEM", help="trust this CA (a private CA's certificate)")
    group.add_argument("--mqtt-tls-cert", type=Path, metavar="PEM", help="client certificate, if the broker asks")
    group.add_argument("--mqtt-tls-key", type=Path, metavar="PEM", help="its private key")


def _add_model_options(parser: argparse.ArgumentParser, runtime: bool = True) -> None:
    """Options naming a model; ``runtime`` adds how it runs (device, precision, thresholds)."""
    group = parser.add_argument_group("model")
    group.add_argument(
        "--model", choices=sorted(DETECTORS), help="a torchvision detector, or hog-people (OpenCV, no download)"
    )
    group.add_argument(
        "--weights",
        help="'default' (torchvision's pretrained, downloaded once), 'random' (untrained: tests and timing "
        "only) or a state_dict file",
    )
    group.add_argument("--profile", choices=sorted(PROFILES), help="inference profile")
    if not runtime:
        return
    group.add_argument("--device", help="auto, cpu, cuda or cuda:N")
    group.add_argument(
        "--precision",
        metavar="SCHEME",
        help=f"auto (default) or {', '.join(SCHEMES)}; append +channels_last to any, +compiled (ssdlite-people)",
    )
    group.add_argument(
        "--force-precision", action="store_const", const=True, help="run a scheme this device would run slower"
    )
    group.add_argument("--calibration", type=Path, metavar="FILE", help="int8-static: from detectord calibrate")
    group.add_argument(
        "--score-threshold", type=float, default=None, help="report detections from this score (profile's default)"
    )
    group.add_argument("--main-threshold", type=float, help="minimum score of the main person")
    group.add_argument("--threads", type=int, metavar="N", help="CPU threads of the model (default: every core)")


def _add_live_options(parser: argparse.ArgumentParser) -> None:
    live = parser.add_argument_group("live daemon (when no command is given)")
    live.add_argument("--source", help="/dev/video0, a camera index, a video file, or an rtsp:// or http:// URL")
    live.add_argument(
        "--config",
        type=Path,
        action="append",
        help="TOML configuration (flags override it); again: later files "
        "override earlier ones (--config detector.toml --config tune.toml)",
    )
    live.add_argument("--check-config", action="store_true", help="validate the configuration, print it, exit")
    live.add_argument("--camera", help="camera name: topics, shared memory and systemd instance")
    live.add_argument("--loop", action="store_const", const=True, help="video files: start again at the end")
    live.add_argument("--frame-size", type=frame_size, metavar="WxH", help="published frame size (427x240)")
    mqtt = parser.add_argument_group("MQTT")
    mqtt.add_argument("--mqtt-host")
    mqtt.add_argument("--mqtt-port", type=int)
    mqtt.add_argument("--mqtt-username")
    mqtt.add_argument("--mqtt-password", help="prefer the environment: DETECTORD_MQTT_PASSWORD")
    mqtt.add_argument("--mqtt-tls", action="store_const", const=True, help="connect with TLS")
    add_tls_files(mqtt)
    mqtt.add_argument("--topic-prefix", help="topic prefix (detector)")
    _add_model_options(parser)


def _add_video_command(
    commands: argparse._SubParsersAction[_Parser], name: str, text: tuple[str, str], out: tuple[str, str]
) -> argparse.ArgumentParser:
    """A command that reads VIDEO at the analysis size and writes ``--out``; ``text`` is (help, description)."""
    command = commands.add_parser(name, help=text[0], description=text[1])
    command.add_argument("video", type=Path, metavar="VIDEO")
    command.add_argument("--out", type=Path, required=True, metavar=out[0], help=out[1])
    command.add_argument("--frame-size", type=frame_size, metavar="WxH", help="analysis size (427x240)")
    return command


def _add_analyze(commands: argparse._SubParsersAction[_Parser]) -> None:
    analyze = commands.add_parser("analyze", help=ANALYZE_TEXT[0], description=ANALYZE_TEXT[1])
    analyze.add_argument(
        "video", nargs="*", metavar="INPUT", help="a video; with --out-dir, videos, directories and globs"
    )
    analyze.add_argument("--out", type=Path, metavar="JSONL", help="one video: one JSON line per frame")
    analyze.add_argument("--frame-size", type=frame_size, metavar="WxH", help="analysis size (427x240)")
    analyze.add_argument("--annotated", type=Path, metavar="MP4", help="also write the annotated video")
    many = analyze.add_argument_group("many videos")
    many.add_argument(
        "--out-dir", type=Path, metavar="DIR", help="one JSONL per video under DIR, names mirrored, and a manifest"
    )
    many.add_argument("--inputs", type=Path, metavar="LIST", help="more inputs, one path or glob per line")
    many.add_argument("--force", action="store_const", const=True, help="analyse again what the manifest says is done")
    many.add_argument("--jobs", type=int, metavar="N", help="videos at once (default: from the cores)")
    many.add_argument(
        "--annotated-videos", action="store_const", const=True, help="also an annotated MP4 beside each JSONL"
    )
    many.add_argument(
        "--ray", metavar="ADDRESS", help="on the Ray cluster at ADDRESS (auto: RAY_ADDRESS or the one started here)"
    )
    many.add_argument(
        "--chunk-frames",
        type=int,
        metavar="N",
        help="with --ray: cut videos into tasks of at most N frames (0: a task per video; default: from the job's "
        "frames, about 4 tasks per CPU)",
    )
    many.add_argument("--ray-node-ip", metavar="ADDR", help="with --ray: this machine's address in the cluster")
    analyze.add_argument("--batch", type=int, help="frames per inference call (4)")
    analyze.add_argument("--max-frames", type=int, metavar="N", help="analyse only the first N frames")
    analyze.add_argument(
        "--skip-still",
        action="store_const",
        const=True,
        help="where nothing moved since the last frame the model ran on, reuse its detections (lines marked "
        '"reused": true) instead of running the model',
    )
    analyze.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None, help="progress bar")
    analyze.add_argument(
        "--allow-partial", action="store_true", help="a video that ends early exits 0 (default: exit status 3)"
    )
    _add_model_options(analyze)


def _add_calibrate(commands: argparse._SubParsersAction[_Parser]) -> None:
    calibrate = _add_video_command(commands, "calibrate", CALIBRATE_TEXT, ("FILE", "the artifact to write"))
    calibrate.add_argument("--frames", type=int, help="frames to calibrate on (64)")
    _add_model_options(calibrate, runtime=False)


TUNE_TEXT = (
    "measure every precision scheme on your footage and write the fastest faithful one",
    "Run every precision scheme this device supports on frames of VIDEO (your own camera's footage): speed "
    "(p50, best batch) and fidelity to fp32 (COCO mAP of the detections against fp32's, main-person IoU, "
    "feature error). Recommend the fastest scheme with fidelity >= 0.95 (untrained weights: feature error <= 2%) "
    "and write its [model] settings to --out, to use after the daemon's own file: "
    "detectord --config detector.toml --config tune.toml.",
)


def _add_tune(commands: argparse._SubParsersAction[_Parser]) -> None:
    tune = commands.add_parser("tune", help=TUNE_TEXT[0], description=TUNE_TEXT[1])
    tune.add_argument("video", type=Path, metavar="VIDEO")
    tune.add_argument("--out", type=Path, metavar="TOML", help="where the [model] settings go (tune.toml)")
    tune.add_argument("--frames", type=int, metavar="N", help="frames measured, spread over the video (16)")
    tune.add_argument("--frame-size", type=frame_size, metavar="WxH", help="analysis size (427x240)")
    tune.add_argument("--schemes", help="comma-separated schemes to measure (default: every one this device runs)")
    _add_model_options(tune, runtime=False)
    tune.add_argument("--device", help="auto, cpu, cuda or cuda:N")


def _add_demo(commands: argparse._SubParsersAction[_Parser]) -> None:
    demo = commands.add_parser(
        "demo",
        help="broker, daemon and viewer at once: detectord demo --source VIDEO|/dev/video0|URL",
        description="Start (or use) a Mosquitto broker, the daemon on SOURCE and the viewer, print the URL to "
        "open, and stop everything on Ctrl-C. A video file is played in a loop.",
    )
    demo.add_argument("--source", help="a video file, /dev/videoN, a camera index or a URL (default: /dev/video0)")
    demo.add_argument("--port", type=int, default=8080, help="the viewer's port")
    demo.add_argument("--mqtt-host", help="use this broker if it answers (127.0.0.1)")
    demo.add_argument("--mqtt-port", type=int, help="(1883)")
    _add_model_options(demo)


def _add_install(commands: argparse._SubParsersAction[_Parser]) -> None:
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


def _add_homeassistant(commands: argparse._SubParsersAction[_Parser]) -> None:
    commands.add_parser(
        "homeassistant-remove",
        help="remove this daemon's entities from Home Assistant (MQTT discovery)",
        description="Empty the retained Home Assistant discovery configurations this daemon published (its node, "
        "mqtt.homeassistant_node), so Home Assistant deletes its entities. Reads the broker settings of --config "
        "and the MQTT flags given before the command: detectord --config FILE homeassistant-remove.",
    )


class _Version(argparse.Action):
    """``--version``: computed only when asked (it looks for CUDA)."""

    def __init__(self, option_strings: list[str], dest: str, **kwargs: object) -> None:
        super().__init__(option_strings, dest, nargs=0, help="the version, the libraries, this device's features")

    def __call__(self, parser: argparse.ArgumentParser, *args: object) -> None:
        from detectord.daemon.version import describe

        sys.stdout.write(describe() + "\n")
        parser.exit()


def get_args_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="detectord",
        description="Real-time video object detection daemon. Without a command: the live daemon "
        "(detectord --source /dev/video0).",
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help=VERBOSE_HELP)
    parser.add_argument("--version", action=_Version)
    _add_live_options(parser)
    commands = parser.add_subparsers(dest="command", parser_class=_Parser)
    for add in (_add_analyze, _add_calibrate, _add_tune, _add_demo, _add_install, _add_homeassistant):
        add(commands)
    for command in commands.choices.values():
        # after the command too (detectord analyze VIDEO -v); absent there, the count before it stands
        command.add_argument("-v", "--verbose", action="count", default=argparse.SUPPRESS, help=VERBOSE_HELP)
    return parser
