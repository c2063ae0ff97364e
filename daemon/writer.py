"""The offline writer stage: one JSONL line per frame, and the annotated video."""

from __future__ import annotations

import json
import logging
import time
from multiprocessing.connection import Connection
from pathlib import Path
from threading import Event

import cv2
import numpy as np

from detectord.detection import COCO_CATEGORIES
from detectord.ipc import EndOfStream

from .annotate import annotate
from .process import StageError
from .records import jsonl_record, read_result
from .rings import DOWNSTREAM_READER, WAIT_STEP_S, PipelineRings
from .telemetry import StageMeter

log = logging.getLogger(__name__)


class _AnnotatedVideo:
    """MPEG-4 at the frame size, padded to even dimensions with black on the right and bottom.

    The encoders OpenCV ships store 4:2:0 chroma, which needs even width and
    height; a 427-pixel frame would otherwise lose its last column. Padding
    keeps every pixel and every box coordinate as they are.
    """

    def __init__(self, path: Path, fps: float, size: tuple[int, int]) -> None:
        width, height = size
        self._pad = (height % 2, width % 2)
        self._writer = cv2.VideoWriter(
            str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width + self._pad[1], height + self._pad[0])
        )
        if not self._writer.isOpened():
            raise StageError(f"cannot write {path}: OpenCV has no MPEG-4 encoder here")

    def write(self, image: np.ndarray) -> None:
        bottom, right = self._pad
        if bottom or right:
            image = cv2.copyMakeBorder(image, 0, bottom, 0, right, cv2.BORDER_CONSTANT, value=(0, 0, 0))
        self._writer.write(image)

    def release(self) -> None:
        self._writer.release()


def run_writer(
    stop: Event,
    reports: Connection,
    rings: PipelineRings,
    out: Path,
    annotated: Path | None,
    fps: float,
    categories: tuple[str, ...] = COCO_CATEGORIES,
) -> None:
    """Write results until the stream ends; ``stop`` (SIGTERM) abandons what is not yet written.

    Lines go out one write per line, so an interrupted run keeps every line
    written before the interruption.
    """
    frame_ring, result_ring = rings.attach_frames(), rings.attach_results()
    frames, results = frame_ring.reader(DOWNSTREAM_READER), result_ring.reader(0)
    meter = StageMeter("writer", reports)
    height, width, _ = rings.frame_shape
    video = None
    try:
        with out.open("w", buffering=1) as lines:
            video = _AnnotatedVideo(annotated, fps, (width, height)) if annotated else None
            meter.ready()
            while not stop.is_set():
                try:
                    refs = results.read(8, timeout=WAIT_STEP_S)
                except EndOfStream:
                    break
                for ref in refs:
                    clock = time.perf_counter()
                    result = read_result(ref)
                    with frames.adopt(result.frame_slot, result.frame_seq) as frame:
                        lines.write(json.dumps(jsonl_record(result, categories)) + "\n")
                        if video is not None:
                            video.write(annotate(frame.pixels, result, categories))
                    ref.release()
                    meter.add(1, time.perf_counter() - clock)
    finally:
        if video is not None:
            video.release()
        meter.close()
        result_ring.close()
        frame_ring.close()
