"""Stage-like processes for the ring tests: each runs in its own spawned process.

Results come back through a ``multiprocessing.Queue`` as small Python objects
(ids, counts), never pixels.
"""

from __future__ import annotations

import os
import time
from multiprocessing.queues import Queue
from typing import Any

import numpy as np

from detectord.ipc import EndOfStream, FrameRing, RingHandle, RingMode

from .rings import attach_frames


def produce(handle: RingHandle, count: int, fill: bool, seconds: float = 0.0) -> None:
    """Publish ``count`` frames (or as many as fit in ``seconds``), every byte = frame_id % 256."""
    ring = attach_frames(handle)
    writer = ring.writer()
    deadline = time.monotonic() + seconds if seconds else None
    frame_id = 0
    try:
        while frame_id < count or (deadline is not None and time.monotonic() < deadline):
            slot = writer.claim(timeout=5.0)
            if slot is None:
                if ring.mode is RingMode.LOSSLESS:
                    raise RuntimeError("lossless producer timed out waiting for readers")
                frame_id += 1
                continue
            if fill:
                slot["pixels"].fill(frame_id % 256)
            writer.publish(slot, frame_id=frame_id, capture_ts=time.time(), pts=frame_id / 25.0)
            frame_id += 1
        writer.finish()
    finally:
        ring.close()


def collect(handle: RingHandle, index: int, out: Queue[Any], batch: int, delay: float) -> None:
    """Read until end of stream; report the frame ids seen and the ring's view of this reader."""
    ring = attach_frames(handle)
    reader = ring.reader(index)
    seen: list[int] = []
    try:
        while True:
            try:
                refs = reader.read(batch, timeout=10.0, fill=batch > 1)
            except EndOfStream:
                break
            if not refs:
                raise RuntimeError("reader starved for 10 s")
            seen.extend(ref.frame_id for ref in refs)
            if delay:
                time.sleep(delay)
            reader.release(refs)
        stats = ring.stats()
        out.put({"seen": seen, "stats": stats})
    finally:
        ring.close()


def _torn(pixels: np.ndarray, expected: int) -> bool:
    return int(pixels.min()) != expected or int(pixels.max()) != expected


def check_frames(handle: RingHandle, index: int, out: Queue[Any], hold: float, use_after_release: bool) -> None:
    """Verify every frame read is uniform and matches its header, before and after holding it.

    With ``use_after_release`` the check after holding runs on a view that was
    already released: the control experiment showing that the checker does see
    rewrites when the pinning protocol is not followed.
    """
    ring = attach_frames(handle)
    reader = ring.reader(index)
    checked = torn = 0
    try:
        while True:
            try:
                refs = reader.read(1, timeout=10.0)
            except EndOfStream:
                break
            (ref,) = refs
            pixels, expected = ref.pixels, ref.frame_id % 256
            torn += _torn(pixels, expected)
            if use_after_release:
                ref.release()
            time.sleep(hold)
            torn += _torn(pixels, expected)
            checked += 1
            if not use_after_release:
                ref.release()
        out.put({"checked": checked, "torn": torn})
    finally:
        ring.close()


def try_attach(handle: RingHandle, shape: tuple[int, int, int], out: Queue[Any]) -> None:
    """Attach with a given expected geometry and report what happened."""
    try:
        ring = FrameRing.attach(handle, shape=shape)
    except Exception as exc:
        out.put(f"{type(exc).__name__}: {exc}")
    else:
        ring.close()
        out.put("attached")


def try_write(handle: RingHandle, out: Queue[Any]) -> None:
    """Try to become the writer of a ring whose writer lives in another process."""
    ring = attach_frames(handle)
    try:
        ring.writer()
    except Exception as exc:
        out.put(f"{type(exc).__name__}: {exc}")
    else:
        out.put("became writer")
    finally:
        ring.close()


def idle_reader(handle: RingHandle, index: int, seconds: float, out: Queue[Any]) -> None:
    """Block on an empty ring for ``seconds`` and report the CPU time that cost."""
    ring = attach_frames(handle)
    reader = ring.reader(index)
    try:
        start_cpu, start = time.process_time(), time.monotonic()
        refs = reader.read(1, timeout=seconds)
        out.put({"refs": len(refs), "cpu_s": time.process_time() - start_cpu, "wall_s": time.monotonic() - start})
    finally:
        ring.close()


def adopt_frames(handle: RingHandle, index: int, requests: Queue[Any], replies: Queue[Any]) -> None:
    """A downstream reader: adopt three handed-over frames, report (frame id, first byte) of each."""
    ring = attach_frames(handle)
    reader = ring.reader(index)
    seen = []
    try:
        for _ in range(3):
            slot, seq = requests.get(timeout=10)
            with reader.adopt(slot, seq) as ref:
                seen.append((ref.frame_id, int(ref.pixels[0, 0, 0])))
        replies.put(seen)
    finally:
        ring.close()


def hold_and_die(handle: RingHandle, index: int, out: Queue[Any]) -> None:
    """Read every frame there is, keep them pinned, and die without releasing them."""
    ring = attach_frames(handle)
    ring.reader(index).read(8, timeout=5)
    out.put("holding")
    out.close()
    out.join_thread()  # os._exit skips the queue's feeder thread
    os._exit(17)
