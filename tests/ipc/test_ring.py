"""Rings across real processes: delivery guarantees, integrity, lifetime."""

from __future__ import annotations

import itertools
import multiprocessing as mp
import os
import signal
import subprocess
import sys
import time
from multiprocessing.context import SpawnContext
from pathlib import Path
from typing import Any

import psutil
import pytest

from detectord.ipc import (
    EndOfStream,
    RingError,
    RingInUseError,
    SegmentError,
    segment_name,
)
from detectord.ipc.header import read_header
from detectord.ipc.segment import attach

from . import workers
from .rings import RecordRing, frame_ring, publish_frames

REPO = Path(__file__).resolve().parents[2]


def _run(ctx: SpawnContext, target: Any, *args: Any) -> mp.Process:
    proc = ctx.Process(target=target, args=args)
    proc.start()
    return proc


def _join_all(procs: list[mp.Process], timeout: float = 60.0) -> None:
    for proc in procs:
        proc.join(timeout)
        assert proc.exitcode == 0, f"{proc.name} exited with {proc.exitcode}"


@pytest.mark.parametrize("batch", [1, 5])
def test_lossless_delivers_every_frame_exactly_once_in_order_to_every_reader(
    ctx: SpawnContext, instance: str, batch: int
) -> None:
    """Two readers, one of them slow, a 4-slot ring: the producer must wait, never overwrite."""
    count = 600
    out = ctx.Queue()
    with frame_ring(instance, slots=4, readers=2, mode="lossless") as ring:
        procs = [
            _run(ctx, workers.collect, ring.handle, 0, out, batch, 0.0),
            _run(ctx, workers.collect, ring.handle, 1, out, batch, 0.001),
            _run(ctx, workers.produce, ring.handle, count, False),
        ]
        reports = [out.get(timeout=60) for _ in range(2)]
        _join_all(procs)
        stats = ring.stats()
    for report in reports:
        assert report["seen"] == list(range(count))
    assert stats.published == count
    assert stats.producer_waits > 0, "a 4-slot ring with a slow reader must have made the producer wait"
    assert all(r.dropped == 0 and r.delivered == count and r.pinned == 0 for r in stats.readers)


def test_lossless_batches_are_consecutive_and_full_until_the_end(ctx: SpawnContext, instance: str) -> None:
    out = ctx.Queue()
    with frame_ring(instance, slots=8, readers=1, mode="lossless") as ring:
        writer = ring.writer()
        publish_frames(writer, range(8), timeout=1)
        reader_proc = _run(ctx, workers.collect, ring.handle, 0, out, 4, 0.0)
        time.sleep(0.2)
        publish_frames(writer, range(8, 11), timeout=1)
        writer.finish()
        report = out.get(timeout=30)
        _join_all([reader_proc])
    assert report["seen"] == list(range(11))


def test_latest_counts_every_frame_a_slow_reader_never_saw(ctx: SpawnContext, instance: str) -> None:
    """The producer never waits; delivered + dropped accounts for every published frame."""
    count = 3000
    out = ctx.Queue()
    with frame_ring(instance, slots=4, readers=1, mode="latest") as ring:
        reader = _run(ctx, workers.collect, ring.handle, 0, out, 1, 0.002)
        producer = _run(ctx, workers.produce, ring.handle, count, False)
        report = out.get(timeout=60)
        _join_all([reader, producer])
        stats = ring.stats()
    seen = report["seen"]
    assert seen == sorted(set(seen)), "frames must arrive in order, each at most once"
    gaps = sum(b - a - 1 for a, b in itertools.pairwise(seen)) + seen[0]
    (reader_stats,) = stats.readers
    assert stats.published == count
    assert stats.producer_waits == 0
    assert reader_stats.delivered == len(seen)
    assert reader_stats.dropped == gaps + (count - 1 - seen[-1])
    assert reader_stats.delivered + reader_stats.dropped == count
    assert reader_stats.dropped > 0, "a reader sleeping 2 ms per frame cannot keep up with this producer"
    assert seen[-1] == count - 1, "the last frame published is the newest, and the reader must get it"


def test_latest_returns_the_newest_consecutive_frames_as_a_batch(instance: str) -> None:
    with frame_ring(instance, slots=6, readers=1, mode="latest") as ring:
        writer, reader = ring.writer(), ring.reader(0)
        publish_frames(writer, range(10))
        refs = reader.read(3, timeout=0)
        assert [r.frame_id for r in refs] == [7, 8, 9]
        assert ring.stats().readers[0].dropped == 7
        reader.release(refs)


@pytest.mark.parametrize("mode", ["latest", "lossless"])
def test_no_torn_frames_under_stress(ctx: SpawnContext, instance: str, mode: str) -> None:
    """Every byte of frame k is k % 256; readers check each frame on arrival and after holding it 1 ms."""
    out = ctx.Queue()
    with frame_ring(instance, slots=3, readers=2, mode=mode) as ring:
        readers = [_run(ctx, workers.check_frames, ring.handle, i, out, 0.001, False) for i in range(2)]
        producer = _run(ctx, workers.produce, ring.handle, 0, True, 4.0)
        reports = [out.get(timeout=60) for _ in readers]
        _join_all([*readers, producer])
        published = ring.stats().published
    assert published > 500
    for report in reports:
        assert report["checked"] > 100
        assert report["torn"] == 0


def test_stress_checker_sees_rewrites_of_a_view_used_after_release(ctx: SpawnContext, instance: str) -> None:
    """Control experiment: the same check on released views does catch the producer rewriting them,
    so the zero above is evidence of the pinning protocol, not of a blind checker."""
    out = ctx.Queue()
    with frame_ring(instance, slots=3, readers=1, mode="latest") as ring:
        reader = _run(ctx, workers.check_frames, ring.handle, 0, out, 0.005, True)
        producer = _run(ctx, workers.produce, ring.handle, 0, True, 2.0)
        report = out.get(timeout=60)
        _join_all([reader, producer])
    assert report["torn"] > 0


def test_a_pinned_frame_is_never_rewritten_in_latest_mode(instance: str) -> None:
    with frame_ring(instance, slots=3, readers=1, mode="latest") as ring:
        writer, reader = ring.writer(), ring.reader(0)
        slot = writer.claim()
        assert slot is not None
        slot["pixels"].fill(42)
        writer.publish(slot, frame_id=42)
        (held,) = reader.read(1, timeout=0)
        drops_before = ring.stats().producer_drops
        for frame_id in range(100):
            slot = writer.claim()
            if slot is not None:
                slot["pixels"].fill(frame_id)
                writer.publish(slot, frame_id=frame_id)
        assert held.intact
        assert held.frame_id == 42 and int(held.pixels.min()) == int(held.pixels.max()) == 42
        assert ring.stats().producer_drops == drops_before
        held.release()
        with pytest.raises(RingError, match="released"):
            held["pixels"]


def test_latest_drops_at_the_producer_when_every_slot_is_pinned(instance: str) -> None:
    with frame_ring(instance, slots=2, readers=1, mode="latest") as ring:
        writer, reader = ring.writer(), ring.reader(0)
        for frame_id in range(2):
            slot = writer.claim()
            assert slot is not None
            writer.publish(slot, frame_id=frame_id)
            refs = reader.read(1, timeout=0)
        assert writer.claim() is None
        assert ring.stats().producer_drops == 1
        reader.release(refs)


def test_views_handed_to_readers_are_read_only(instance: str) -> None:
    with frame_ring(instance, slots=2, readers=1) as ring:
        writer, reader = ring.writer(), ring.reader(0)
        slot = writer.claim()
        assert slot is not None
        writer.publish(slot, frame_id=0)
        (ref,) = reader.read(1, timeout=0)
        with pytest.raises(ValueError, match="read-only"):
            ref.pixels[0, 0, 0] = 1
        ref.release()


def test_a_waiting_reader_blocks_without_spinning(ctx: SpawnContext, instance: str) -> None:
    out = ctx.Queue()
    with frame_ring(instance, slots=2, readers=1) as ring:
        proc = _run(ctx, workers.idle_reader, ring.handle, 0, 1.0, out)
        report = out.get(timeout=30)
        _join_all([proc])
    assert report["refs"] == 0
    assert report["wall_s"] >= 0.99
    assert report["cpu_s"] < 0.2, f"blocked reader used {report['cpu_s']:.2f} s of CPU in 1 s"


def test_end_of_stream_after_the_last_frame(instance: str) -> None:
    with frame_ring(instance, slots=2, readers=1, mode="lossless") as ring:
        writer, reader = ring.writer(), ring.reader(0)
        slot = writer.claim(timeout=0)
        assert slot is not None
        writer.publish(slot, frame_id=0)
        writer.finish()
        (ref,) = reader.read(4, timeout=1, fill=True)
        ref.release()
        with pytest.raises(EndOfStream):
            reader.read(1, timeout=1)


def test_geometry_mismatch_is_a_clear_error_in_the_attaching_process(ctx: SpawnContext, instance: str) -> None:
    out = ctx.Queue()
    with frame_ring(instance, shape=(240, 427, 3)) as ring:
        _join_all([_run(ctx, workers.try_attach, ring.handle, (480, 640, 3), out)])
        _join_all([_run(ctx, workers.try_attach, ring.handle, (240, 427, 3), out)])
        mismatch, match = out.get(timeout=10), out.get(timeout=10)
    assert mismatch.startswith("RingGeometryError")
    assert "240x427x3" in mismatch and "480x640x3" in mismatch
    assert match == "attached"


def test_only_one_live_writer_per_ring(ctx: SpawnContext, instance: str) -> None:
    out = ctx.Queue()
    with frame_ring(instance) as ring:
        ring.writer()
        _join_all([_run(ctx, workers.try_write, ring.handle, out)])
        assert "already in use by process" in out.get(timeout=10)


def test_attaching_to_a_missing_segment_names_it(instance: str) -> None:
    with pytest.raises(SegmentError, match="does not exist"):
        attach(segment_name(instance, "frames"))


@pytest.mark.parametrize("bad", ["", "has space", "../etc", "x" * 300, "-leading"])
def test_instance_names_are_validated(bad: str) -> None:
    with pytest.raises(SegmentError, match="invalid instance"):
        frame_ring(bad)


def test_two_instances_never_collide(instance: str) -> None:
    with frame_ring(instance) as a, frame_ring(instance + "b") as b:
        assert a.name != b.name
        with pytest.raises(RingInUseError, match="running process"):
            frame_ring(instance)
    leftovers = [f for f in os.listdir("/dev/shm") if f.startswith(f"detectord-{instance}b-")]
    assert not leftovers


# -- lifetime across real owner processes -------------------------------------


def _start_owner(instance: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.ipc.owner", instance],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "READY"
    return proc


def _segments(instance: str) -> list[str]:
    return sorted(f for f in os.listdir("/dev/shm") if f.startswith(f"detectord-{instance}-"))


@pytest.mark.parametrize("how", ["SIGTERM", "SIGINT", "SIGTERM to the group"])
def test_no_segment_left_after_the_owner_stops_on_a_signal(instance: str, how: str) -> None:
    owner = _start_owner(instance)
    assert _segments(instance) == [f"detectord-{instance}-frames", f"detectord-{instance}-results"]
    header = _header(instance)
    if how == "SIGTERM to the group":
        os.killpg(owner.pid, signal.SIGTERM)
    else:
        owner.send_signal(getattr(signal, how))
    assert owner.wait(timeout=15) == 0
    assert _segments(instance) == []
    assert not [s for s in header["semaphores"] if os.path.exists("/dev/shm/sem." + s.lstrip("/"))]


def test_owner_exiting_normally_unlinks_its_segments(ctx: SpawnContext, instance: str) -> None:
    """The context manager is the normal exit path; the instance fixture checks /dev/shm afterwards."""
    with frame_ring(instance):
        assert _segments(instance) == [f"detectord-{instance}-frames"]


def test_segments_of_a_killed_run_are_reclaimed_on_the_next_create(instance: str, caplog: Any) -> None:
    owner = _start_owner(instance)
    header = _header(instance)
    os.killpg(owner.pid, signal.SIGKILL)
    owner.wait(timeout=10)
    time.sleep(0.2)
    assert _segments(instance) == [f"detectord-{instance}-frames", f"detectord-{instance}-results"]
    stale_semaphores = [s for s in header["semaphores"] if os.path.exists("/dev/shm/sem." + s.lstrip("/"))]
    assert stale_semaphores, "SIGKILL of the whole group leaves the semaphores behind too"
    with caplog.at_level("WARNING"), frame_ring(instance) as ring:
        assert "reclaiming stale shared-memory segment" in caplog.text
        assert ring.stats().published == 0
    with RecordRing.create(instance):
        pass
    assert _segments(instance) == []
    assert not [s for s in stale_semaphores if os.path.exists("/dev/shm/sem." + s.lstrip("/"))]


def test_a_live_owner_is_never_reclaimed(instance: str) -> None:
    owner = _start_owner(instance)
    try:
        with pytest.raises(RingInUseError, match=f"running process {owner.pid}"):
            frame_ring(instance)
    finally:
        owner.terminate()
        owner.wait(timeout=15)


def test_a_segment_whose_owner_died_is_not_taken_while_a_process_still_uses_it(instance: str) -> None:
    """The owner is gone but its reader lives on (an orphaned stage): reclaiming would pull the ring from under it."""
    owner = _start_owner(instance)
    children = psutil.Process(owner.pid).children()
    reader = next(c for c in children if "resource_tracker" not in " ".join(c.cmdline()))
    for process in [p for p in children if p is not reader]:
        process.kill()  # the resource tracker would unlink the segments when its owner dies
    os.kill(owner.pid, signal.SIGKILL)
    owner.wait(timeout=10)
    try:
        with pytest.raises(RingInUseError, match=f"still used by running process {reader.pid}"):
            frame_ring(instance)
    finally:
        reader.kill()
        reader.wait(10)
    with frame_ring(instance), RecordRing.create(instance):
        pass
    assert _segments(instance) == []


def _header(instance: str) -> dict[str, Any]:
    shm = attach(segment_name(instance, "frames"))
    try:
        header = read_header(shm.buf)
    finally:
        shm.close()
    assert header is not None
    return header


def test_a_handed_over_frame_stays_pinned_until_the_downstream_reader_releases_it(
    ctx: SpawnContext, instance: str
) -> None:
    """Inference hands its frame to the publisher: the slot is never unpinned in between."""
    requests, replies = ctx.Queue(), ctx.Queue()
    with frame_ring(instance, slots=3, readers=2, mode="latest") as ring:
        writer, inference = ring.writer(), ring.reader(0)
        downstream = _run(ctx, workers.adopt_frames, ring.handle, 1, requests, replies)
        handed = []
        for frame_id in range(3):
            slot = writer.claim()
            assert slot is not None
            slot["pixels"].fill(100 + frame_id)
            writer.publish(slot, frame_id=frame_id)
            (ref,) = inference.read(1, timeout=1)
            inference.hand_over([ref], to=1)
            handed.append((ref.index, ref.seq))
        assert ring.stats().readers[0].pinned == 0
        assert ring.stats().readers[1].pinned == 3
        assert writer.claim() is None, "all three slots are pinned by the downstream reader"
        for item in handed:
            requests.put(item)
        assert replies.get(timeout=30) == [(0, 100), (1, 101), (2, 102)]
        _join_all([downstream])
        assert ring.stats().readers[1].pinned == 0
        assert writer.claim() is not None


def test_lossless_producer_waits_for_the_reader_frames_are_handed_to(instance: str) -> None:
    with frame_ring(instance, slots=2, readers=2, mode="lossless") as ring:
        writer, inference, downstream = ring.writer(), ring.reader(0), ring.reader(1)
        publish_frames(writer, range(2))
        refs = inference.read(2, timeout=0)
        inference.hand_over(refs, to=1)
        assert writer.claim(timeout=0) is None
        adopted = downstream.adopt(refs[0].index, refs[0].seq)
        assert adopted.frame_id == 0
        adopted.release()
        slot = writer.claim(timeout=0)
        assert slot is not None and slot.index == 0
        writer.abandon(slot)


def test_adopting_a_slot_that_was_not_handed_over_is_an_error(instance: str) -> None:
    with frame_ring(instance, slots=2, readers=2) as ring:
        writer = ring.writer()
        slot = writer.claim()
        assert slot is not None
        seq = writer.publish(slot, frame_id=0)
        with pytest.raises(RingError, match="not handed over"):
            ring.reader(1).adopt(slot.index, seq)


def test_a_slot_named_by_place_and_sequence_is_pinned_only_while_it_holds_that_frame(instance: str) -> None:
    """A camera's full-resolution frame, named by its small frame: pinned in time, the producer goes around it;
    rewritten, the pin is refused rather than given to another frame."""
    with frame_ring(instance, slots=3, readers=2, mode="latest") as ring:
        writer, reader = ring.writer(), ring.reader(0)
        first = writer.claim()
        assert first is not None
        seq = writer.publish(first, frame_id=0)
        pinned = reader.pin(first.index, seq)
        assert pinned is not None and pinned.frame_id == 0
        publish_frames(writer, range(1, 6))
        assert pinned.intact, "the producer claimed around the pinned slot"
        reader.hand_over([pinned], to=1)
        ring.reader(1).adopt(first.index, seq).release()
        publish_frames(writer, range(6, 9))
        assert reader.pin(first.index, seq) is None, "rewritten since: no pin"
        assert reader.pin(99, 0) is None
        assert ring.stats().readers[0].pinned == 0


def test_a_dead_readers_pins_are_released_for_its_replacement(ctx: SpawnContext, instance: str) -> None:
    """A stage that crashed while holding frames must not hold them forever."""
    out = ctx.Queue()
    with frame_ring(instance, slots=2, readers=1, mode="lossless") as ring:
        writer = ring.writer()
        publish_frames(writer, range(2))
        holder = _run(ctx, workers.hold_and_die, ring.handle, 0, out)
        assert out.get(timeout=30) == "holding"
        holder.join(30)
        assert holder.exitcode != 0
        assert ring.stats().readers[0].pinned == 2
        assert writer.claim(timeout=0) is None
        ring.reset_reader(0)
        assert ring.stats().readers[0].pinned == 0 and ring.stats().readers[0].lag == 0
        slot = writer.claim(timeout=0)
        assert slot is not None
        writer.publish(slot, frame_id=2)
        (ref,) = ring.reader(0).read(1, timeout=1)
        assert ref.frame_id == 2, "the replacement starts at the newest frame"
        ref.release()


def test_a_dead_writers_half_written_slot_and_end_of_stream_are_undone(instance: str) -> None:
    with frame_ring(instance, slots=2, readers=1, mode="latest") as ring:
        writer = ring.writer()
        assert writer.claim() is not None
        writer.finish()
        ring.reset_writer()
        assert not ring.stats().finished
        reader = ring.reader(0)
        assert reader.read(1, timeout=0) == []
