"""The writer stage of ``detectord analyze``: one JSONL line per frame, and the annotated video."""

from __future__ import annotations

import json
import logging
import time
from multiprocessing.connection import Connection
from pathlib import Path
from threading import Event
from typing import Any

import cv2
import numpy as np

from detectord.contract.payloads import detection_json, main_person_json
from detectord.daemon.annotate import annotate
from detectord.daemon.pipeline import control
from detectord.daemon.pipeline.ringset import WAIT_STEP_S, RingHandles
from detectord.daemon.pipeline.stage import StageError
from detectord.daemon.pipeline.telemetry import StageMeter
from detectord.daemon.results import FrameResult, LoadedModel, read_result
from detectord.ipc import EndOfStream

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
            str(path), cv2.VideoWriter.fourcc(*"mp4v"), fps, (width + self._pad[1], height + self._pad[0])
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


def jsonl_record(result: FrameResult, categories: tuple[str, ...]) -> dict[str, Any]:
    """One line of ``detectord analyze`` output; boxes in pixels of the analysed frame."""
    detections = result.contract_detections(categories)
    chosen = main_person_json(detections, result.contract_main_person())
    # the analyze output's format predates the index
    main = None if chosen is None else {key: value for key, value in chosen.items() if key != "index"}
    record = {
        "frame": result.frame_id,
        "time_s": round(result.pts, 4),
        "main_person": main,
        "detections": [detection_json(d) for d in detections],
    }
    if not result.reason.model_ran:  # analyze --skip-still: nothing moved since the frame these are from
        record["reused"] = True
    return record


def jsonl_line(result: FrameResult, categories: tuple[str, ...]) -> str:
    """``jsonl_record`` as the line written: what a chunk analysed on a cluster writes too."""
    return json.dumps(jsonl_record(result, categories)) + "\n"


def run_writer(
    stop: Event,
    reports: Connection,
    rings: RingHandles,
    out: Path,
    annotated: Path | None,
    fps: float,
    supervisor: Connection,
) -> None:
    """Write results until the stream ends; ``stop`` (SIGTERM) abandons what is not yet written.

    Lines go out one write per line, so an interrupted run keeps every line
    written before the interruption. Labels come from the model inference
    announced, which the supervisor relays before any result can arrive.
    """
    camera = rings.cameras[0]
    frame_ring, result_ring = camera.attach(), rings.attach_results(0)
    frames, results = frame_ring.reader(rings.downstream), result_ring.reader(0)
    meter = StageMeter("writer", reports)
    inbox = control.Inbox(supervisor)
    model: LoadedModel | None = None
    video = None
    try:
        with out.open("w", buffering=1) as lines:
            video = _AnnotatedVideo(annotated, fps, camera.frame_size) if annotated else None
            meter.ready()
            while not stop.is_set():
                try:
                    refs = results.read(8, timeout=WAIT_STEP_S)
                except EndOfStream:
                    break
                if refs and model is None:
                    model = inbox.wait_for(control.MODEL, stop)
                    if model is None:
                        results.release(refs)
                        break
                if model is None:
                    continue
                for ref in refs:
                    clock = time.perf_counter()
                    result = read_result(ref)
                    with frames.adopt(result.frame_slot, result.frame_seq) as frame:
                        lines.write(jsonl_line(result, model.categories))
                        if video is not None:
                            video.write(annotate(frame.pixels, result, model.categories))
                    ref.release()
                    meter.add(1, time.perf_counter() - clock)
    finally:
        if video is not None:
            video.release()
        meter.close()
        result_ring.close()
        frame_ring.close()
