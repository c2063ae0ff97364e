"""The ``detectord`` command line: parse, validate once, run, and turn errors into one line."""

from __future__ import annotations

import argparse
import logging
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

from .config import AnalyzeConfig, CalibrateConfig, ConfigError, FrameConfig, ModelConfig
from .logs import configure_logging
from .process import StageError

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


def _add_model_options(parser: argparse.ArgumentParser, runtime: bool = True) -> None:
    """Options naming a model; ``runtime`` adds how it runs (device, precision, thresholds)."""
    group = parser.add_argument_group("model")
    group.add_argument("--model", default=ModelConfig.name, choices=sorted(MODELS), help="torchvision detector")
    group.add_argument(
        "--weights",
        default=ModelConfig.weights,
        help="'default' (torchvision's pretrained, downloaded once), 'random' (untrained: tests and timing "
        "only) or a state_dict file",
    )
    group.add_argument("--profile", default=ModelConfig.profile, choices=sorted(PROFILES), help="inference profile")
    if not runtime:
        return
    group.add_argument("--device", default=ModelConfig.device, help="auto, cpu, cuda or cuda:N")
    group.add_argument(
        "--precision",
        default=ModelConfig.precision,
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
        default=MainPersonConfig.score_threshold,
        help="minimum score of the main person",
    )


def get_args_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="detectord", description="Real-time video object detection daemon.")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="-v: progress messages, -vv: debugging")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
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


def main(argv: list[str] | None = None) -> int:
    args = get_args_parser().parse_args(argv)
    log_level = (logging.WARNING, logging.INFO, logging.DEBUG)[min(args.verbose, 2)]
    configure_logging(log_level)
    try:
        if args.command == "calibrate":
            return _run_calibrate(args)
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
