"""The capture stage: decode, resize to the pipeline's frame size straight into a ring slot.

The stream is finished (end of stream for the readers) only when the stage
ends normally; a crashed capture leaves it open for its restarted successor,
and the supervisor finishes it when none will come.

``run_capture`` reads every frame of a file into a lossless ring (offline);
``run_live_capture`` reads a camera, stream or paced file into a latest-mode
ring, never waiting for inference, and reopens a failed or stalled source
with exponential backoff while reporting what it is doing.
"""

from __future__ import annotations

import logging
import time
from multiprocessing.connection import Connection
from threading import Event

import cv2
import numpy as np

from detectord.daemon import native
from detectord.daemon.config import SourceConfig
from detectord.daemon.frame_record import NO_NATIVE, motion_fields
from detectord.daemon.pipeline.ringset import CameraRing, claim
from detectord.daemon.pipeline.telemetry import StageMeter
from detectord.detection.motion import MotionConfig, MotionDetector
from detectord.ipc import RingMode, RingWriter, WriteSlot

from .sources import LiveSource, SourceError, VideoFile, VideoInfo

log = logging.getLogger(__name__)


def _fill(
    writer: RingWriter,
    slot: WriteSlot,
    image: np.ndarray,
    frame_id: int,
    pts: float,
    motion: MotionDetector | None,
    full: RingWriter | None = None,
) -> None:
    """Resize ``image`` straight into the slot, find its motion there (no copy), publish; with ``full``, the
    camera's full frame goes first into its own ring, and the small frame names it."""
    height, width = slot["pixels"].shape[:2]
    cv2.resize(image, (width, height), dst=slot["pixels"], interpolation=cv2.INTER_AREA)
    captured = time.time()
    found = motion.detect(slot["pixels"], captured) if motion is not None else None
    seq = motion.moved_frames if motion is not None else 0
    named = native.put(full, image, frame_id, captured, pts) if full is not None else NO_NATIVE
    writer.publish(slot, frame_id=frame_id, capture_ts=captured, pts=pts, **named, **motion_fields(slot, found, seq))


def run_capture(
    stop: Event,
    reports: Connection,
    camera: CameraRing,
    video: VideoInfo,
    limit: int | None = None,
    motion: MotionConfig | None = None,
) -> None:
    """Every frame of ``video`` (or its first ``limit``) into the frame ring, in order; then end of stream.
    With ``motion``, each frame's motion (against the video's own time) goes with it."""
    ring = camera.attach()
    detector = MotionDetector(motion, camera.frame_size) if motion is not None else None
    writer = ring.writer()
    meter = StageMeter("capture", reports)
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
            if slot is not None:
                claimed = time.perf_counter()
                _fill(writer, slot, image, frame_id, source.pts(frame_id), detector)
                meter.add(1, (decoded - started) + (time.perf_counter() - claimed))
            frame_id += 1
        writer.finish()
    finally:
        meter.close()
        source.close()
        ring.close()


def run_live_capture(
    stop: Event,
    reports: Connection,
    camera: CameraRing,
    config: SourceConfig,
    stage: str = "capture",
    motion: MotionConfig | None = None,
) -> None:
    """The newest frame wins: publish every frame read; a slow reader only makes the ring drop old ones.
    With ``motion`` (gating on), each frame's motion goes with it; with the camera's full-frame ring, each
    frame's full-resolution picture."""
    ring = camera.attach()
    full_ring = camera.attach_native()
    full = full_ring.writer() if full_ring is not None else None
    detector = MotionDetector(motion, camera.frame_size) if motion is not None else None
    writer = ring.writer()
    meter = StageMeter(stage, reports)
    source = LiveSource(config.uri, loop=config.loop)
    backoff = config.reconnect_min_s
    frame_id = 0
    started_at = last_frame = time.monotonic()
    meter.ready()
    try:
        while not stop.is_set():
            if not source.is_open:
                try:
                    source.open()
                except SourceError as exc:
                    meter.set_status(f"reconnecting in {backoff:.0f} s: {exc}")
                    log.warning("%s; retrying in %.0f s", exc, backoff)
                    stop.wait(backoff)
                    backoff = min(2 * backoff, config.reconnect_max_s)
                    continue
                last_frame = time.monotonic()
                meter.set_status("streaming")
            started = time.perf_counter()
            image = source.read()
            if image is None:
                if source.ended:
                    meter.set_status("ended")
                    break
                if time.monotonic() - last_frame > config.stall_timeout_s:
                    log.warning("%s delivered no frame for %.0f s; reopening", config.uri, config.stall_timeout_s)
                else:
                    log.warning("reading %s failed; reopening", config.uri)
                source.close()
                continue
            last_frame = time.monotonic()
            backoff = config.reconnect_min_s
            slot = writer.claim()
            if slot is not None:
                pts = frame_id / source.fps if source.fps else time.monotonic() - started_at
                _fill(writer, slot, image, frame_id, pts, detector, full)
            frame_id += 1
            meter.add(1, time.perf_counter() - started)
        writer.finish()
    finally:
        meter.close()
        source.close()
        ring.close()
        if full_ring is not None:
            full_ring.close()
