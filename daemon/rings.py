"""The two rings of a pipeline, as the supervisor creates them and the stages attach them."""

from __future__ import annotations

from dataclasses import dataclass
from multiprocessing.context import BaseContext
from threading import Event

from detectord.ipc import FrameRing, ResultRing, RingHandle, RingMode, RingWriter, WriteSlot

FRAME_READERS = 2
"""Readers of the frame ring: inference, and the stage inference hands each frame to."""
INFERENCE_READER = 0
DOWNSTREAM_READER = 1

WAIT_STEP_S = 0.5
"""Longest a stage blocks on a ring before it looks at its stop event again."""


@dataclass(frozen=True)
class PipelineRings:
    """Handles and geometry the stage processes attach with (picklable while spawning)."""

    frames: RingHandle
    results: RingHandle
    frame_shape: tuple[int, int, int]
    max_detections: int

    def attach_frames(self) -> FrameRing:
        return FrameRing.attach(self.frames, shape=self.frame_shape)

    def attach_results(self) -> ResultRing:
        return ResultRing.attach(self.results, max_detections=self.max_detections)


def create_rings(
    instance: str,
    frame_shape: tuple[int, int, int],
    max_detections: int,
    *,
    live: bool,
    batch: int,
    ctx: BaseContext,
) -> tuple[FrameRing, ResultRing]:
    """The frame and result rings of a pipeline.

    Offline both are lossless, sized so decoding can run a batch ahead of
    inference while the writer trails a batch behind. Live the frame ring is
    ``latest`` (the camera never waits) and the result ring stays lossless:
    every result carries a frame pin, so a result nobody reads would pin its
    frame for good; the publisher keeps up (it also drains while the broker
    is down), so inference never waits for it for long.
    """
    slots = max(8, 3 * batch)
    frame_mode = RingMode.LATEST if live else RingMode.LOSSLESS
    frames = FrameRing.create(instance, shape=frame_shape, slots=slots, readers=FRAME_READERS, mode=frame_mode, ctx=ctx)
    try:
        results = ResultRing.create(
            instance,
            max_detections=max_detections,
            slots=max(8, 2 * batch),
            readers=1,
            mode=RingMode.LOSSLESS,
            ctx=ctx,
        )
    except BaseException:
        frames.close()
        raise
    return frames, results


def claim(writer: RingWriter, stop: Event, lossless: bool) -> WriteSlot | None:
    """A slot to fill, or None: stop was requested, or (latest mode) every slot is pinned."""
    while not stop.is_set():
        slot = writer.claim(timeout=WAIT_STEP_S)
        if slot is not None or not lossless:
            return slot
    return None
