"""The two rings of a pipeline: frames (capture → inference) and results (inference → downstream).

The supervisor creates and owns a ``RingSet``; stage processes get its
``handles`` (picklable while spawning) and attach from them.
"""

from __future__ import annotations

from dataclasses import dataclass
from multiprocessing.context import BaseContext
from threading import Event

from detectord.daemon.results import ResultRing
from detectord.ipc import FrameRing, RingHandle, RingMode, RingWriter, WriteSlot

FRAME_READERS = 2
"""Readers of the frame ring: inference, and the stage inference hands each frame to."""
INFERENCE_READER = 0
DOWNSTREAM_READER = 1

WAIT_STEP_S = 0.5
"""Longest a stage blocks on a ring before it looks at its stop event again."""


@dataclass(frozen=True)
class RingHandles:
    """Handles and geometry the stage processes attach with."""

    frames: RingHandle
    results: RingHandle
    frame_shape: tuple[int, int, int]
    max_detections: int

    @property
    def frame_size(self) -> tuple[int, int]:
        """(width, height) of the frames."""
        height, width, _ = self.frame_shape
        return width, height

    def attach_frames(self) -> FrameRing:
        return FrameRing.attach(self.frames, shape=self.frame_shape)

    def attach_results(self) -> ResultRing:
        return ResultRing.attach(self.results, max_detections=self.max_detections)


class RingSet:
    """The frame and result rings of one pipeline, created and unlinked by the supervisor.

    Offline both are lossless, sized so decoding can run a batch ahead of
    inference while the writer trails a batch behind. Live the frame ring is
    ``latest`` (the camera never waits) and the result ring stays lossless:
    every result carries a frame pin, so a result nobody reads would pin its
    frame for good; the publisher keeps up (it also drains while the broker
    is down), so inference never waits for it for long.
    """

    def __init__(
        self,
        instance: str,
        frame_shape: tuple[int, int, int],
        max_detections: int,
        *,
        live: bool,
        batch: int,
        ctx: BaseContext,
    ) -> None:
        frame_mode = RingMode.LATEST if live else RingMode.LOSSLESS
        self.frames = FrameRing.create(
            instance, shape=frame_shape, slots=max(8, 3 * batch), readers=FRAME_READERS, mode=frame_mode, ctx=ctx
        )
        try:
            self.results = ResultRing.create(instance, max_detections=max_detections, slots=max(8, 2 * batch), ctx=ctx)
        except BaseException:
            self.frames.close()
            raise
        self.handles = RingHandles(self.frames.handle, self.results.handle, frame_shape, max_detections)

    def close(self) -> None:
        self.results.close()
        self.frames.close()


def claim(writer: RingWriter, stop: Event, lossless: bool) -> WriteSlot | None:
    """A slot to fill, or None: stop was requested, or (latest mode) every slot is pinned."""
    while not stop.is_set():
        slot = writer.claim(timeout=WAIT_STEP_S)
        if slot is not None or not lossless:
            return slot
    return None
