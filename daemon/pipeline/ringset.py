"""The rings of a pipeline: one frame ring per camera, one result ring per inference worker.

The supervisor creates and owns a ``RingSet``; stage processes get its
``handles`` (picklable while spawning) and attach from them.

Readers of a camera's frame ring: the inference workers (0..workers-1), which
*compete* for its frames (each frame goes to one of them), then the
downstream stage (publisher or writer), to which a worker hands every frame
it computed on. Each worker's doorbell is shared by every camera's ring, so a
worker waits for a frame from any camera at once (``ipc.wait_any``); the
publisher's doorbell is shared the same way by every result ring.

Live, a camera may also have a full-frame ring (``daemon/native.py``) with
the same readers: inference workers pin the full frame of each small frame
they take, and hand it to the publisher with the result.
"""

from __future__ import annotations

from dataclasses import dataclass
from multiprocessing.context import BaseContext
from multiprocessing.synchronize import Semaphore
from threading import Event

from detectord.daemon.frame_record import FRAME_FIELDS
from detectord.daemon.native import NATIVE_FIELDS, NativeRing, slots_for
from detectord.daemon.results import ResultRing
from detectord.ipc import FrameRing, RingHandle, RingMode, RingWriter, WriteSlot

WAIT_STEP_S = 0.5
"""Longest a stage blocks on a ring before it looks at its stop event again."""


@dataclass(frozen=True)
class CameraRing:
    name: str
    frames: RingHandle
    frame_shape: tuple[int, int, int]
    native: RingHandle | None = None
    """The camera's full-frame ring, when full frames are kept."""
    native_shape: tuple[int, int, int] = (0, 0, 0)
    """Its slots' shape: the largest full frame."""

    @property
    def frame_size(self) -> tuple[int, int]:
        """(width, height) of the frames."""
        height, width, _ = self.frame_shape
        return width, height

    def attach(self) -> FrameRing:
        return FrameRing.attach(self.frames, shape=self.frame_shape, extra=FRAME_FIELDS)

    def attach_native(self) -> NativeRing | None:
        if self.native is None:
            return None
        return NativeRing.attach(self.native, shape=self.native_shape, extra=NATIVE_FIELDS)


@dataclass(frozen=True)
class RingHandles:
    """What the stage processes attach with."""

    cameras: tuple[CameraRing, ...]
    results: tuple[RingHandle, ...]
    """One result ring per inference worker."""
    max_detections: int
    inference_wake: tuple[Semaphore, ...]
    """Worker k's doorbell, shared by every camera's frame ring."""
    downstream_wake: Semaphore
    """The downstream stage's doorbell, shared by every result ring."""

    @property
    def workers(self) -> int:
        return len(self.results)

    @property
    def downstream(self) -> int:
        """The downstream stage's reader index in every frame ring."""
        return self.workers

    def attach_results(self, worker: int) -> ResultRing:
        return ResultRing.attach(self.results[worker], max_detections=self.max_detections)


class RingSet:
    """The rings of one pipeline, created and unlinked by the supervisor.

    Offline (one camera, one worker) both are lossless, sized so decoding can
    run a batch ahead of inference while the writer trails a batch behind.
    Live the frame rings are ``latest`` (a camera never waits) and the result
    rings stay lossless: every result carries a frame pin, so a result nobody
    reads would pin its frame for good; the publisher keeps up (it also drains
    while the broker is down), so inference never waits for it for long.
    """

    def __init__(
        self,
        cameras: dict[str, tuple[int, int, int]],
        results_instance: str,
        max_detections: int,
        *,
        live: bool,
        batch: int,
        workers: int,
        ctx: BaseContext,
        native_size: tuple[int, int] | None = None,
    ) -> None:
        """``cameras``: name (the frame ring's instance) -> frame shape; ``results_instance`` names the result rings;
        ``native_size``: (width, height) of the largest full frame kept (live only; None: none kept)."""
        self.frames: dict[str, FrameRing] = {}
        self.natives: dict[str, NativeRing] = {}
        native_shape = (native_size[1], native_size[0], 3) if native_size is not None and live else (0, 0, 0)
        self.results: list[ResultRing] = []
        inference_wake = tuple(ctx.Semaphore(0) for _ in range(workers))
        downstream_wake = ctx.Semaphore(0)
        mode = RingMode.LATEST if live else RingMode.LOSSLESS
        try:
            for name, shape in cameras.items():
                self.frames[name] = FrameRing.create(
                    name,
                    shape=shape,
                    slots=max(8, 3 * batch),
                    readers=workers + 1,
                    mode=mode,
                    ctx=ctx,
                    competing=workers,
                    doorbells=inference_wake,
                    extra=FRAME_FIELDS,
                )
                if native_shape[0]:
                    self.natives[name] = NativeRing.create(
                        name,
                        shape=native_shape,
                        slots=slots_for(workers),
                        readers=workers + 1,
                        mode=RingMode.LATEST,
                        ctx=ctx,
                        competing=workers,
                        extra=NATIVE_FIELDS,
                    )
            for worker in range(workers):
                self.results.append(
                    ResultRing.create(
                        results_instance,
                        worker=worker,
                        max_detections=max_detections,
                        slots=max(8, 2 * batch),
                        doorbell=downstream_wake,
                        ctx=ctx,
                    )
                )
        except BaseException:
            self.close()
            raise
        self.handles = RingHandles(
            cameras=tuple(
                CameraRing(
                    name,
                    ring.handle,
                    cameras[name],
                    self.natives[name].handle if name in self.natives else None,
                    native_shape,
                )
                for name, ring in self.frames.items()
            ),
            results=tuple(ring.handle for ring in self.results),
            max_detections=max_detections,
            inference_wake=inference_wake,
            downstream_wake=downstream_wake,
        )

    def close(self) -> None:
        for results in self.results:
            results.close()
        for frames in (*self.frames.values(), *self.natives.values()):
            frames.close()


def claim(writer: RingWriter, stop: Event, lossless: bool) -> WriteSlot | None:
    """A slot to fill, or None: stop was requested, or (latest mode) every slot is pinned."""
    while not stop.is_set():
        slot = writer.claim(timeout=WAIT_STEP_S)
        if slot is not None or not lossless:
            return slot
    return None
