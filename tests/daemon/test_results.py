"""The result record: what inference writes is what the publisher and the writer read, with its frame."""

from __future__ import annotations

import time
import uuid

import numpy as np

from detectord.daemon.pipeline.ringset import DOWNSTREAM_READER, INFERENCE_READER, RingSet
from detectord.daemon.results import read_result, write_result
from detectord.detection import PERSON, Detections, MainPerson

SHAPE = (240, 427, 3)


def test_a_record_round_trips_and_its_frame_is_handed_to_the_downstream_reader() -> None:
    import multiprocessing as mp

    rings = RingSet(f"test-{uuid.uuid4().hex[:10]}", SHAPE, 5, live=True, batch=1, ctx=mp.get_context("spawn"))
    try:
        frames, results = rings.frames, rings.results
        writer = frames.writer()
        slot = writer.claim()
        assert slot is not None
        slot["pixels"][:] = 7
        writer.publish(slot, frame_id=41, capture_ts=time.time(), pts=1.5)
        inference, downstream = frames.reader(INFERENCE_READER), frames.reader(DOWNSTREAM_READER)
        (frame,) = inference.read(1, timeout=1)
        boxes = np.array([[1, 2, 3, 4], [5, 6, 50, 60]] * 4, np.float32)
        found = Detections(boxes, np.linspace(0.9, 0.2, 8, dtype=np.float32), np.full(8, PERSON, np.int32))
        main = MainPerson(index=1, box=(5.0, 6.0, 50.0, 60.0), score=0.8, track_id=3)
        result_writer = results.writer()
        result_slot = result_writer.claim(timeout=1)
        assert result_slot is not None
        write_result(result_writer, result_slot, frame, (inference, DOWNSTREAM_READER), found, main, (2.0, 2.5))
        (ref,) = results.reader(0).read(1, timeout=1)
        result = read_result(ref)
        ref.release()
        assert (result.frame_id, result.pts, result.inference_start, result.inference_end) == (41, 1.5, 2.0, 2.5)
        assert len(result.detections) == 5, "capacity keeps the best (first) detections"
        assert result.main_person == MainPerson(1, (5.0, 6.0, 50.0, 60.0), float(np.float32(0.8)), 3)
        assert frames.stats().readers[INFERENCE_READER].pinned == 0, "the pin left inference"
        with downstream.adopt(result.frame_slot, result.frame_seq) as adopted:
            assert adopted.frame_id == 41 and int(adopted.pixels[0, 0, 0]) == 7
        assert frames.stats().readers[DOWNSTREAM_READER].pinned == 0
    finally:
        rings.close()
