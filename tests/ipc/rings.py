"""Rings the ipc tests use: frames of one fixed shape, and a generic record ring beside them.

The record ring stands for any second ring of a pipeline (the daemon's
results): the ipc package itself knows no detection schema.
"""

from __future__ import annotations

from multiprocessing.context import BaseContext
from typing import Self

from detectord.ipc import Field, FrameRing, Ring, RingHandle, RingMode, RingWriter, SlotLayout, SlotRef

SHAPE = (240, 427, 3)

RECORDS = SlotLayout("records", (Field("frame_id", "<i8"), Field("values", "<f4", (5, 4))))


def frame_ring(instance: str, **kwargs: object) -> FrameRing:
    kwargs.setdefault("shape", SHAPE)
    return FrameRing.create(instance, **kwargs)  # type: ignore[arg-type]


def publish_frames(writer: RingWriter, frame_ids: range, timeout: float = 0) -> None:
    """Publish one (blank) frame per id, each into a slot that must be free within ``timeout``."""
    for frame_id in frame_ids:
        slot = writer.claim(timeout=timeout)
        assert slot is not None, f"no free slot for frame {frame_id}"
        writer.publish(slot, frame_id=frame_id)


def attach_frames(handle: RingHandle, shape: tuple[int, int, int] = SHAPE) -> FrameRing:
    return FrameRing.attach(handle, shape=shape)


class RecordRing(Ring[SlotRef]):
    purpose = "results"
    ref_class = SlotRef

    @classmethod
    def create(cls, instance: str, *, slots: int = 8, ctx: BaseContext | None = None) -> Self:
        return cls._create(instance, RECORDS, slots=slots, readers=1, mode=RingMode.LOSSLESS, ctx=ctx)

    @classmethod
    def attach(cls, handle: RingHandle) -> Self:
        return cls._attach(handle, RECORDS)
