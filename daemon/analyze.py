"""``detectord analyze``: every frame of a video through capture -> inference -> writer.

The frame ring is lossless: capture waits for inference and the writer, so
every frame is processed exactly once and in order, while decoding runs ahead
of inference in its own process.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass

from .capture import run_capture
from .config import AnalyzeConfig
from .inference import DetectorFactory, load_configured_detector, run_inference
from .progress import Progress
from .rings import PipelineRings, create_rings
from .sources import probe_video
from .supervisor import Supervisor, finish_for, stop_signals
from .telemetry import StageReport
from .writer import run_writer

log = logging.getLogger(__name__)

STAGES = ("capture", "inference", "writer")
POLL_S = 0.1


class AnalysisFailed(RuntimeError):
    """A stage failed; what has been written so far is kept."""


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

    @property
    def fps(self) -> float:
        return self.frames / self.processing_s if self.processing_s > 0 else 0.0

    def line(self) -> str:
        stages = ", ".join(f"{name} {ms:.1f} ms" for name, ms in self.stage_ms.items())
        head = "interrupted after" if self.interrupted else "analysed"
        return (
            f"{head} {self.frames} frames in {self.wall_s:.1f} s ({self.fps:.2f} fps after "
            f"{self.wall_s - self.processing_s:.1f} s of start-up); mean per frame: {stages}"
        )


def analyze(
    config: AnalyzeConfig,
    *,
    log_level: int = logging.WARNING,
    progress: bool | None = None,
    detector_factory: DetectorFactory = load_configured_detector,
) -> AnalysisSummary:
    """Run the whole analysis; raises SourceError before starting anything if the video is unreadable.

    A first Ctrl-C (or SIGTERM) stops decoding and inference after the batch
    in hand; a second one kills them at once. Either way the writer then
    writes every result already computed, and every line written is kept.
    """
    config.model.check_runnable()
    video = probe_video(config.video)
    started = time.monotonic()
    supervisor = Supervisor(log_level)
    frames_ring, results_ring = create_rings(
        f"analyze-{os.getpid()}",
        config.frame.shape,
        config.model.max_detections,
        live=False,
        batch=config.batch,
        ctx=supervisor.ctx,
    )
    rings = PipelineRings(frames_ring.handle, results_ring.handle, config.frame.shape, config.model.max_detections)
    expected = min(video.frames, config.max_frames) if config.max_frames and video.frames else video.frames
    bar = Progress(expected, enabled=progress)
    ready_at: float | None = None
    interrupts = 0
    try:
        with stop_signals() as interrupt:
            capture = supervisor.start("capture", run_capture, rings, video, config.max_frames)
            inference = supervisor.start(
                "inference", run_inference, rings, config.model, config.main_person, config.batch, detector_factory
            )
            writer = supervisor.start("writer", run_writer, rings, config.out, config.annotated, video.fps)
            while writer.alive:
                writer.process.join(POLL_S)
                reports = supervisor.poll()
                if ready_at is None and "inference" in reports and reports["inference"].ready:
                    ready_at = reports["inference"].sent_at
                _draw(bar, reports, ready_at or started)
                if interrupt.is_set():
                    interrupt.clear()
                    interrupts += 1
                    if interrupts == 1:
                        log.warning("interrupted: finishing the frames in flight (Ctrl-C again to stop at once)")
                    else:
                        supervisor.kill("capture", "inference")
                if interrupts or capture.failed or inference.failed:
                    capture.request_stop()
                    inference.request_stop()
                finish_for(capture, frames_ring)
                finish_for(inference, results_ring)
            finished = time.monotonic()
            supervisor.join(timeout_s=5.0)
    finally:
        bar.close()
        try:
            supervisor.shutdown()
        finally:
            results_ring.close()
            frames_ring.close()
    failures = [s.failure() or f"the {s.name} stage failed" for s in supervisor.failures()]
    if failures and not interrupts:
        raise AnalysisFailed("; ".join(failures))
    return _summary(supervisor.reports, expected, started, ready_at, finished, interrupts > 0)


def _draw(bar: Progress, reports: dict[str, StageReport], since: float) -> None:
    done = reports["writer"].frames if "writer" in reports else 0
    elapsed = time.monotonic() - since
    bar.update(done, elapsed, done / elapsed if elapsed > 0 else 0.0)


def _summary(
    reports: dict[str, StageReport],
    expected: int,
    started: float,
    ready_at: float | None,
    finished: float,
    interrupted: bool,
) -> AnalysisSummary:
    frames = reports["writer"].frames if "writer" in reports else 0
    return AnalysisSummary(
        frames=frames,
        expected_frames=expected,
        wall_s=finished - started,
        processing_s=finished - (ready_at if ready_at is not None else started),
        stage_ms={
            name: 1000.0 * reports[name].busy_s / reports[name].frames
            for name in STAGES
            if name in reports and reports[name].frames
        },
        interrupted=interrupted,
    )
