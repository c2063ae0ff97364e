"""``detectord analyze``: every frame of a video through capture -> inference -> writer.

The frame ring is lossless: capture waits for inference and the writer, so
every frame is processed exactly once and in order, while decoding runs ahead
of inference in its own process. The job runs in ``pipeline.job``'s shape; a
round here draws the progress bar and handles Ctrl-C.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from detectord.detection.motion import MotionConfig

from .cli.progress import Progress
from .config import AnalyzeConfig
from .output_files import FAILED, INTERRUPTED, StagedFile
from .pipeline.job import POLL_S, Job, run_job
from .pipeline.ringset import RingSet
from .pipeline.signals import stop_signals
from .pipeline.supervisor import Stage, finish_for
from .pipeline.telemetry import StageReport
from .stages.capture import run_capture
from .stages.inference import DetectorFactory, InferenceSettings, load_configured_detector, run_inference
from .stages.output import run_writer
from .stages.sources import VideoInfo, probe_video

log = logging.getLogger(__name__)


def ended_early(frames: int, expected: int) -> bool:
    """A video gave ``frames`` well short of the ``expected`` its container announced (truncated or corrupt).

    A frame or two (or 1%) short is tolerated: containers round their frame counts.
    """
    return expected > 0 and frames < expected - max(2, expected // 100)


@dataclass(frozen=True)
class AnalysisSummary:
    frames: int
    """Lines written (frames analysed)."""
    expected_frames: int
    """Frames the container announced (0: unknown)."""
    wall_s: float
    """From start to the last line, start-up (spawning, model loading) included."""
    processing_s: float
    """From the model being ready to the last line: the steady-state pipeline."""
    stage_ms: dict[str, float]
    """Mean busy milliseconds per frame, per stage."""
    interrupted: bool
    precision: str = ""
    """The precision scheme the model ran at (what ``auto`` chose); empty if it never loaded."""
    kept: tuple[Path, ...] = ()
    """Where an interrupted run's lines (and annotated video) are: ``OUT.partial``, the output as it was."""

    @property
    def partial(self) -> bool:
        """The video ended well before the frames its container announced (``ended_early``)."""
        return not self.interrupted and ended_early(self.frames, self.expected_frames)

    @property
    def fps(self) -> float:
        return self.frames / self.processing_s if self.processing_s > 0 else 0.0

    def line(self) -> str:
        stages = ", ".join(f"{name} {ms:.1f} ms" for name, ms in self.stage_ms.items())
        head = "interrupted after" if self.interrupted else "analysed"
        kept = f"; what it wrote is in {', '.join(map(str, self.kept))}" if self.kept else ""
        return (
            f"{head} {self.frames} frames in {self.wall_s:.1f} s ({self.fps:.2f} fps after "
            f"{self.wall_s - self.processing_s:.1f} s of start-up); mean per frame: {stages}{kept}"
        )


class AnalysisFailed(RuntimeError):
    """A stage failed; what has been written so far is kept."""


class Analysis(Job):
    stages = ("capture", "inference", "writer")

    def __init__(
        self,
        config: AnalyzeConfig,
        video: VideoInfo,
        log_level: int,
        progress: bool | None,
        factory: DetectorFactory,
        files: tuple[Path, Path | None],
        on_progress: Callable[[int], None] | None = None,
    ) -> None:
        super().__init__(log_level)
        self.on_progress = on_progress
        """Told the frames written so far, every round (an archive run's progress over many videos)."""
        self.config = config
        self.files = files
        """Where the writer writes the lines and the annotated video (staged beside the targets)."""
        self.video = video
        self.factory = factory
        self.started = time.monotonic()
        limit = config.max_frames
        self.expected = min(video.frames, limit) if limit and video.frames else video.frames
        self.bar = Progress(self.expected, enabled=progress)
        self.ready_at: float | None = None
        self.finished_at: float | None = None
        self.interrupts = 0

    def make_rings(self) -> RingSet:
        cfg = self.config
        instance = f"analyze-{os.getpid()}"
        return RingSet(
            {instance: cfg.frame.shape},
            instance,
            cfg.model.max_detections,
            live=False,
            batch=cfg.batch,
            workers=1,
            ctx=self.supervisor.ctx,
        )

    def stopping(self) -> None:
        self.bar.close()

    def start(self, name: str) -> Stage:
        cfg, handles = self.config, self.rings.handles
        if name == "capture":
            motion = MotionConfig() if cfg.skip_still else None
            return self.supervisor.start(name, run_capture, handles.cameras[0], self.video, cfg.max_frames, motion)
        if name == "inference":
            settings = InferenceSettings(cfg.model, (cfg.main_person,), cfg.batch, skip_still=cfg.skip_still)
            return self.supervisor.start(name, run_inference, handles, 0, settings, self.factory)
        out, annotated = self.files
        return self.supervisor.start(name, run_writer, handles, out, annotated, self.video.fps, self.control_receive)

    def wait(self) -> None:
        self.supervisor.stages["writer"].process.join(POLL_S)

    def step(self, now: float, stop: threading.Event) -> bool:
        stages, reports = self.supervisor.stages, self.supervisor.reports
        capture, inference, writer = stages["capture"], stages["inference"], stages["writer"]
        if not writer.alive:
            self.finished_at = time.monotonic()
            return True
        if self.ready_at is None and "inference" in reports and reports["inference"].ready:
            self.ready_at = reports["inference"].sent_at
        self.relay_model()
        _draw(self.bar, reports, self.ready_at or self.started)
        if self.on_progress is not None:
            self.on_progress(reports["writer"].frames if "writer" in reports else 0)
        if stop.is_set():
            stop.clear()
            self.interrupts += 1
            if self.interrupts == 1:
                log.warning("interrupted: finishing the frames in flight (Ctrl-C again to stop at once)")
            else:
                self.supervisor.kill("capture", "inference")
        if self.interrupts or capture.failed or inference.failed:
            capture.request_stop()
            inference.request_stop()
        finish_for(capture, next(iter(self.rings.frames.values())))
        finish_for(inference, self.rings.results[0])
        return False

    def finish(self) -> None:
        self.supervisor.join(timeout_s=5.0)

    def summary(self) -> AnalysisSummary:
        failures = [s.failure() or f"the {s.name} stage failed" for s in self.supervisor.failures()]
        if failures and not self.interrupts:
            raise AnalysisFailed("; ".join(failures))
        reports = self.supervisor.reports
        finished = self.finished_at if self.finished_at is not None else time.monotonic()
        frames = reports["writer"].frames if "writer" in reports else 0
        return AnalysisSummary(
            frames=frames,
            expected_frames=self.expected,
            wall_s=finished - self.started,
            processing_s=finished - (self.ready_at if self.ready_at is not None else self.started),
            stage_ms={
                name: 1000.0 * reports[name].busy_s / reports[name].frames
                for name in self.stages
                if name in reports and reports[name].frames
            },
            interrupted=self.interrupts > 0,
            precision=next(
                (m.info.precision for n, m in sorted(self.supervisor.announcements.items()) if n == "inference"), ""
            ),
        )


def analyze(
    config: AnalyzeConfig,
    *,
    log_level: int = logging.WARNING,
    progress: bool | None = None,
    detector_factory: DetectorFactory = load_configured_detector,
    keep_incomplete: bool = True,
    on_progress: Callable[[int], None] | None = None,
) -> AnalysisSummary:
    """Run the whole analysis; raises SourceError before starting anything if the video is unreadable.

    A first Ctrl-C (or SIGTERM) stops decoding and inference after the batch
    in hand; a second one kills them at once. Either way the writer then
    writes every result already computed, and every line written is kept;
    without ``keep_incomplete`` (an archive run, which does the video again
    next time) nothing of an interrupted or failed run reaches the targets.
    Only a run that finished replaces a target: an interrupted one leaves its
    lines in ``OUT.partial``, a failed one in ``OUT.failed`` (whole lines
    only), and the targets as they were (``output_files.py``).
    """
    config.model.check_runnable()
    video = probe_video(config.video)
    out = StagedFile(config.out)
    annotated = None
    try:
        annotated = StagedFile(config.annotated) if config.annotated is not None else None
        files = (out.path, annotated.path if annotated else None)
        job = Analysis(config, video, log_level, progress, detector_factory, files, on_progress)
        with stop_signals() as interrupt:
            run_job(job, interrupt)
        summary = job.summary()
    except BaseException as exc:
        kept = out.keep_beside(FAILED) if keep_incomplete else None
        if not keep_incomplete:
            out.discard()
        if annotated is not None and keep_incomplete:
            annotated.keep_beside(FAILED, whole_lines=False)
        elif annotated is not None:
            annotated.discard()
        if isinstance(exc, AnalysisFailed):
            where = f"the lines written are in {kept}" if kept else "no line was written"
            if config.out.exists():
                where += f"; {config.out} is as it was"
            raise AnalysisFailed(f"{exc}; {where}") from None
        raise
    kept_files: list[Path] = []
    for staged, lines in ((out, True), (annotated, False)):
        if staged is None:
            continue
        if not summary.interrupted:
            staged.commit()
        elif keep_incomplete:
            beside = staged.keep_beside(INTERRUPTED, whole_lines=lines)
            kept_files += [beside] if beside is not None else []
        else:
            staged.discard()
    return replace(summary, kept=tuple(kept_files))


def _draw(bar: Progress, reports: dict[str, StageReport], since: float) -> None:
    done = reports["writer"].frames if "writer" in reports else 0
    elapsed = time.monotonic() - since
    bar.update(done, elapsed, done / elapsed if elapsed > 0 else 0.0)
