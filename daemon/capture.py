"""The capture stage: decode, resize to the pipeline's frame size straight into a ring slot."""

from __future__ import annotations

import logging
import time
from multiprocessing.connection import Connection
from threading import Event

import cv2

from detectord.ipc import RingMode

from .rings import PipelineRings, claim
from .sources import VideoFile, VideoInfo
from .telemetry import StageMeter

log = logging.getLogger(__name__)


def run_capture(
    stop: Event, reports: Connection, rings: PipelineRings, video: VideoInfo, limit: int | None = None
) -> None:
    """Every frame of ``video`` (or its first ``limit``) into the frame ring, in order; then end of stream."""
    ring = rings.attach_frames()
    writer = ring.writer()
    meter = StageMeter("capture", reports)
    height, width, _ = rings.frame_shape
    lossless = ring.mode is RingMode.LOSSLESS
    source = VideoFile(video, limit)
    meter.ready()
    try:
        frame_id = 0
        while not stop.is_set():
            started = time.perf_counter()
            image = source.read()
            if image is None:
                break
            decoded = time.perf_counter()
            slot = claim(writer, stop, lossless)
            if slot is None:
                frame_id += 1
                continue
            claimed = time.perf_counter()
            cv2.resize(image, (width, height), dst=slot["pixels"], interpolation=cv2.INTER_AREA)
            writer.publish(slot, frame_id=frame_id, capture_ts=time.time(), pts=source.pts(frame_id))
            frame_id += 1
            meter.add(1, (decoded - started) + (time.perf_counter() - claimed))
        log.debug("capture: %d frames", frame_id)
    finally:
        writer.finish()
        meter.close()
        source.close()
        ring.close()
