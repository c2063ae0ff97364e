"""``detectord tune VIDEO``: measure every precision scheme on the user's footage, recommend one, write it.

The measuring is ``detection/tuning.py``; this is the command around it:
frames from the video, int8-static calibrated on the way, a progress bar,
the table, and the ``[model]`` settings written so that nothing half-written
is ever left behind (a temporary file renamed at the end; Ctrl-C removes it).
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import signal
import sys
import time
from pathlib import Path
from types import FrameType

from detectord.daemon.config import ConfigError, TuneConfig
from detectord.daemon.stages.sources import probe_video, sample_video
from detectord.detection import scores_of
from detectord.detection.registry import calibrate
from detectord.detection.torchvision.models import resolve_device
from detectord.detection.torchvision.quantization import save_calibration
from detectord.detection.torchvision.tuning import SchemeResult, machine, measure, recommend, schemes_for

from .progress import Progress


def _cell(value: float | None, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def format_results(results: list[SchemeResult]) -> str:
    fp32 = results[0].p50_ms or 1.0
    lines = [
        "| scheme | p50 ms | speed-up | best fps (batch) | feature error | fidelity mAP | main IoU | people found |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in results:
        if r.refused:
            lines.append(f"| {r.precision} | {r.refused} | | | | | | |")
            continue
        lines.append(
            f"| {r.precision} | {_cell(r.p50_ms, '.1f')} | {fp32 / (r.p50_ms or fp32):.2f}x | "
            f"{_cell(r.best_fps, '.2f')} ({r.best_batch}) | {_cell(r.feature_error, '.2%')} | "
            f"{_cell(r.fidelity_map, '.3f')} | {_cell(r.main_person_iou, '.3f')} | {_cell(r.people_found, '.1%')} |"
        )
    return "\n".join(lines)


def _write(path: Path, text: str | None = None, artifact: dict[str, object] | None = None) -> Path:
    """``path`` written through a temporary file beside it; the caller renames it into place."""
    partial = path.with_name(f".{path.name}.partial")
    if artifact is not None:
        save_calibration(artifact, partial)
    else:
        partial.write_text(text or "")
    return partial


class _CtrlC:
    """Ctrl-C raises KeyboardInterrupt as usual, and is remembered: where a library swallowed it (a fresh
    checkout's first int8-static calibration once ran to the end after a SIGINT, exit 0), tune still stops at
    its next step."""

    def __init__(self) -> None:
        self.pressed = False

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        self.pressed = True
        raise KeyboardInterrupt

    def check(self) -> None:
        if self.pressed:
            raise KeyboardInterrupt


def run_tune(config: TuneConfig) -> int:
    ctrl_c = _CtrlC()
    previous = signal.signal(signal.SIGINT, ctrl_c)
    try:
        return _tune(config, ctrl_c)
    finally:
        signal.signal(signal.SIGINT, previous)


def _tune(config: TuneConfig, ctrl_c: _CtrlC) -> int:
    model = config.model
    video = probe_video(config.video)
    device = resolve_device(model.device)
    schemes = ["fp32", *(s for s in config.scheme_list or schemes_for(device, model.name) if s != "fp32")]
    frames = sample_video(video, config.frames, config.frame.size)
    if len(frames) < 2:
        raise ConfigError(f"{video.path}: {len(frames)} frame(s) could be read; tune needs at least 2")
    calibration_frames = sample_video(video, config.calibration_frames, config.frame.size)
    artifact_path = config.out.with_suffix(".int8.pt")
    partials: list[Path] = []
    try:
        calibration = None
        if "int8-static" in schemes:
            sys.stderr.write(f"calibrating int8-static on {len(calibration_frames)} frames…\n")
            artifact = calibrate(model, calibration_frames, config.frame.size, str(video.path))
            calibration = _write(artifact_path, artifact=artifact)
            partials.append(calibration)
            ctrl_c.check()
        progress = Progress(len(frames) * len(schemes))
        done, started = 0, time.monotonic()

        def step() -> None:
            nonlocal done
            ctrl_c.check()
            done += 1
            elapsed = time.monotonic() - started
            progress.update(done, elapsed, done / elapsed if elapsed else 0.0)

        scores = scores_of(model.name)
        try:
            results = measure(
                frames, name=model.name, weights=model.weights, profile=model.profile, device=model.device,
                frame_size=config.frame.size, calibration=calibration,
                main_threshold=scores.threshold(config.main_person.score_threshold, scores.main_person),
                schemes=schemes, step=step,
            )  # fmt: skip
        finally:
            progress.close()
        trained = model.weights != "random"
        ctrl_c.check()
        best, test = recommend(results, trained)
        lines = [
            f"detectord tune: {len(frames)} frames of {video.path} at {config.frame.width}x{config.frame.height}, "
            f"{model.name} ({model.weights} weights), profile {model.profile}, device {device}",
            f"machine: {machine()}",
            "",
            format_results(results),
            "",
            f"recommended: {best.precision}, the fastest scheme with {test}",
        ]
        if not trained:
            lines.append("(untrained weights: fidelity mAP and main IoU compare noise; run with your real weights)")
        settings = [
            f"# detectord tune, {datetime.date.today()}: {len(frames)} frames of {video.path}",
            f"# {model.name} ({model.weights} weights), profile {model.profile}, on {machine()}",
            f"# {best.precision}: the fastest scheme with {test}",
            f"# use it after the daemon's own file: detectord --config detector.toml --config {config.out.name}",
            "[model]",
            f"precision = {json.dumps(best.precision)}",
        ]
        if best.precision.startswith("int8-static"):
            settings.append(f"calibration = {json.dumps(str(artifact_path.resolve()))}")
        partials.append(_write(config.out, "\n".join(settings) + "\n"))
        if best.precision.startswith("int8-static") and calibration is not None:
            os.replace(calibration, artifact_path)
        os.replace(partials[-1], config.out)
        lines.append(f"wrote {config.out}" + (f" and {artifact_path}" if best.precision.startswith("int8") else ""))
        sys.stdout.write("\n".join(lines) + "\n")
        return 0
    finally:
        for partial in partials:
            with contextlib.suppress(FileNotFoundError):
                partial.unlink()
