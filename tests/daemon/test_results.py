"""The result record: what inference writes is what the publisher and the writer read, with its frame."""

from __future__ import annotations

import time
import uuid

import numpy as np

from detectord.daemon.gating import Reason
from detectord.daemon.pipeline.ringset import RingSet
from detectord.daemon.results import read_result, write_result
from detectord.detection import PERSON, Detections, MainPerson

SHAPE = (240, 427, 3)


def test_a_record_round_trips_and_its_frame_is_handed_to_the_downstream_reader() -> None:
    import multiprocessing as mp

    name = f"test-{uuid.uuid4().hex[:10]}"
    rings = RingSet({name: SHAPE}, name, 5, live=True, batch=1, workers=1, ctx=mp.get_context("spawn"))
    inference_reader, downstream_reader = 0, rings.handles.downstream
    try:
        frames, results = rings.frames[name], rings.results[0]
        writer = frames.writer()
        slot = writer.claim()
        assert slot is not None
        slot["pixels"][:] = 7
        writer.publish(slot, frame_id=41, capture_ts=time.time(), pts=1.5)
        inference, downstream = frames.reader(inference_reader), frames.reader(downstream_reader)
        (frame,) = inference.read(1, timeout=1)
        boxes = np.array([[1, 2, 3, 4], [5, 6, 50, 60]] * 4, np.float32)
        found = Detections(boxes, np.linspace(0.9, 0.2, 8, dtype=np.float32), np.full(8, PERSON, np.int32))
        main = MainPerson(index=1, box=(5.0, 6.0, 50.0, 60.0), score=0.8, track_id=3)
        result_writer = results.writer()
        result_slot = result_writer.claim(timeout=1)
        assert result_slot is not None
        handover = (inference, downstream_reader)
        looked = [(0, 16, 96, 112), (160, 0, 256, 96)]
        write_result(
            result_writer, result_slot, 2, frame, handover, found, main, (2.0, 2.5), Reason.TRACKING, None, looked
        )
        (ref,) = results.reader(0).read(1, timeout=1)
        result = read_result(ref)
        ref.release()
        assert (result.camera, result.frame_id, result.pts, result.inference_start, result.inference_end) == (
            2,
            41,
            1.5,
            2.0,
            2.5,
        )
        assert len(result.detections) == 5, "capacity keeps the best (first) detections"
        assert result.reason is Reason.TRACKING and result.reason.model_ran
        assert result.regions == tuple(looked), "where the model looked"
        assert result.main_person == MainPerson(1, (5.0, 6.0, 50.0, 60.0), float(np.float32(0.8)), 3)
        assert frames.stats().readers[inference_reader].pinned == 0, "the pin left inference"
        with downstream.adopt(result.frame_slot, result.frame_seq) as adopted:
            assert adopted.frame_id == 41 and int(adopted.pixels[0, 0, 0]) == 7
        assert frames.stats().readers[downstream_reader].pinned == 0
    finally:
        rings.close()


def test_waiting_for_a_fresher_frame_when_the_source_ends_is_not_an_error() -> None:
    """The end of a file source raced inference: the wait for a fresher frame met the end of the stream."""
    import multiprocessing as mp

    from detectord.daemon.stages.inference import _Freshness

    name = f"test-{uuid.uuid4().hex[:10]}"
    rings = RingSet({name: SHAPE}, name, 5, live=True, batch=1, workers=1, ctx=mp.get_context("spawn"))
    try:
        frames = rings.frames[name]
        writer, reader = frames.writer(), frames.reader(0)
        freshness = _Freshness()
        for frame_id in range(3):
            slot = writer.claim()
            assert slot is not None
            writer.publish(slot, frame_id=frame_id, capture_ts=time.time() - 1.0 + 0.01 * frame_id, pts=0.0)
            (ref,) = reader.read(1, timeout=1)
            if frame_id < 2:
                assert freshness.fresher(reader, ref) == [ref]
                ref.release()
        writer.finish()
        assert freshness.fresher(reader, ref) == [ref], "a second old frame, then the end: keep the frame in hand"
        ref.release()
    finally:
        rings.close()


def test_every_camera_connects_with_a_client_id_of_its_own() -> None:
    """Two connections with one client id take the session from each other: a configured id gets the camera."""
    from detectord.daemon.config import MqttConfig
    from detectord.daemon.stages.publish import client_id_for

    assert client_id_for(MqttConfig(), "front", solo=True) == "detectord-front"
    assert client_id_for(MqttConfig(client_id="mine"), "front", solo=True) == "mine"
    named = MqttConfig(client_id="mine")
    assert {client_id_for(named, camera, solo=False) for camera in ("front", "yard")} == {"mine-front", "mine-yard"}
