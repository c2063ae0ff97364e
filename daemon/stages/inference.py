"""The inference stage: frames from the frame ring, detections and the main person to the result ring.

Each frame's pin is handed to the downstream reader (publisher or writer)
before its result is published (``results.write_result``), so the frame the
boxes were computed on is the frame that gets encoded. Once its detector is
loaded the stage announces it (``LoadedModel``): the readers label and
describe the detections with what actually produced them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from threading import Event

from detectord.daemon.config import ModelConfig
from detectord.daemon.pipeline.ringset import DOWNSTREAM_READER, INFERENCE_READER, WAIT_STEP_S, RingHandles, claim
from detectord.daemon.pipeline.telemetry import StageMeter
from detectord.daemon.results import LoadedModel, write_result
from detectord.detection import FrameDetector, MainPersonConfig, MainPersonTracker, load_detector
from detectord.ipc import EndOfStream, FrameRef, RingMode, RingReader

log = logging.getLogger(__name__)

DetectorFactory = Callable[[ModelConfig, tuple[int, int]], FrameDetector]


def load_configured_detector(config: ModelConfig, frame_size: tuple[int, int]) -> FrameDetector:
    """The detector a configuration names; the only factory the command line uses."""
    return load_detector(
        config.name,
        config.weights,
        config.device,
        config.profile,
        frame_size=frame_size,
        score_threshold=config.score_threshold,
        precision=config.precision,
        calibration=config.calibration,
    )


class _Freshness:
    """Live sources: start the model on a frame as young as waiting a little can make it.

    When the model frees up, the newest frame is on average half a frame
    interval old. If it is older than that, the next frame is due sooner than
    the current one's age: waiting for it costs less idle time than it saves
    latency, and the detections describe a fresher scene. The interval is
    estimated from the frames themselves (ids and capture times).
    """

    def __init__(self) -> None:
        self.interval_s = 0.0
        self._last: tuple[int, float] | None = None

    def fresher(self, reader: RingReader[FrameRef], ref: FrameRef) -> list[FrameRef]:
        frame_id, captured = ref.frame_id, ref.capture_ts
        if self._last is not None and frame_id > self._last[0]:
            interval = (captured - self._last[1]) / (frame_id - self._last[0])
            self.interval_s = interval if not self.interval_s else 0.8 * self.interval_s + 0.2 * interval
        self._last = (frame_id, captured)
        if not self.interval_s or time.time() - captured <= self.interval_s / 2:
            return [ref]
        newer = reader.read(1, timeout=1.5 * self.interval_s)
        if not newer:
            return [ref]
        ref.release()
        self._last = (newer[0].frame_id, newer[0].capture_ts)
        return newer


def run_inference(
    stop: Event,
    reports: Connection,
    rings: RingHandles,
    model: ModelConfig,
    main_person: MainPersonConfig,
    batch: int,
    detector_factory: DetectorFactory = load_configured_detector,
) -> None:
    frame_ring, result_ring = rings.attach_frames(), rings.attach_results()
    reader, writer = frame_ring.reader(INFERENCE_READER), result_ring.writer()
    meter = StageMeter("inference", reports)
    held: list[FrameRef] = []
    try:
        detector = detector_factory(model, rings.frame_size)
        tracker = MainPersonTracker(main_person)
        lossless = frame_ring.mode is RingMode.LOSSLESS
        freshness = _Freshness()
        meter.ready(LoadedModel(detector.info, tuple(detector.categories)))
        while not stop.is_set():
            try:
                held = reader.read(batch if lossless else 1, timeout=WAIT_STEP_S, fill=lossless)
            except EndOfStream:
                break
            if not held:
                meter.tick()
                continue
            if not lossless:
                held = freshness.fresher(reader, held[0])
            started, clock = time.time(), time.perf_counter()
            detections = detector([ref.pixels for ref in held])
            finished, busy = time.time(), time.perf_counter() - clock
            for ref, found in zip(held, detections, strict=True):
                main = tracker.update(found)
                slot = claim(writer, stop, lossless)
                if slot is None:
                    continue
                write_result(writer, slot, ref, (reader, DOWNSTREAM_READER), found, main, (started, finished))
            reader.release(held)
            held = []
            meter.add(len(detections), busy)
        writer.finish()
    finally:
        reader.release(held)
        meter.close()
        result_ring.close()
        frame_ring.close()
