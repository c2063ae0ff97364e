"""A supervisor-like owner for lifetime tests: ``python -m tests.ipc.owner INSTANCE``.

Creates a frame ring and a result ring, spawns one attached reader process,
prints ``READY`` once that reader has read a frame, and runs until SIGTERM or SIGINT, then stops its child and
closes (unlinks) the rings, like the daemon's supervisor.
"""

from __future__ import annotations

import multiprocessing as mp
import signal
import sys
import time

from detectord.daemon.pipeline.signals import stop_signals
from detectord.ipc import EndOfStream, RingHandle

from .rings import RecordRing, attach_frames, frame_ring


def _reader(frames: RingHandle, results: RingHandle) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    ring = attach_frames(frames)
    result_ring = RecordRing.attach(results)
    reader = ring.reader(0)
    try:
        with stop_signals(signal.SIGTERM) as stop:
            while not stop.is_set():
                try:
                    reader.release(reader.read(1, timeout=0.2))
                except EndOfStream:
                    break
    finally:
        result_ring.close()
        ring.close()


def main(instance: str) -> int:
    ctx = mp.get_context("spawn")
    with stop_signals() as stop, frame_ring(instance, slots=4) as frames, RecordRing.create(instance) as results:
        child = ctx.Process(target=_reader, args=(frames.handle, results.handle), daemon=True)
        child.start()
        writer = frames.writer()
        frame_id = 0
        ready = False
        while not stop.wait(0.01):
            slot = writer.claim()
            if slot is not None:
                writer.publish(slot, frame_id=frame_id, capture_ts=time.time(), pts=0.0)
                frame_id += 1
            if not ready and frames.stats().readers[0].delivered > 0:  # the child is attached and reading
                ready = True
                sys.stdout.write("READY\n")
                sys.stdout.flush()
        child.terminate()
        child.join(5)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
