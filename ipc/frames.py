"""The two rings of the pipeline: frames (capture → inference) and results (inference → publisher)."""

from __future__ import annotations

from multiprocessing.context import BaseContext
from typing import Self

import numpy as np

from .layout import DEFAULT_FRAME_SHAPE, DEFAULT_MAX_DETECTIONS, frame_layout, result_layout
from .ring import Ring, RingHandle, RingMode, SlotRef


class FrameRef(SlotRef):
    """A pinned frame: ``pixels`` (uint8[H, W, C], read-only view of shared memory)."""

    __slots__ = ()

    @property
    def pixels(self) -> np.ndarray:
        return self["pixels"]

    @property
    def frame_id(self) -> int:
        return self["frame_id"]

    @property
    def capture_ts(self) -> float:
        return self["capture_ts"]

    @property
    def pts(self) -> float:
        return self["pts"]


class FrameRing(Ring[FrameRef]):
    """Decoded frames of one camera; ``latest`` for live sources, ``lossless`` for files."""

    purpose = "frames"
    ref_class = FrameRef

    @classmethod
    def create(
        cls,
        instance: str,
        *,
        shape: tuple[int, int, int] = DEFAULT_FRAME_SHAPE,
        slots: int = 8,
        readers: int = 1,
        mode: RingMode | str = RingMode.LATEST,
        ctx: BaseContext | None = None,
    ) -> Self:
        return cls._create(instance, frame_layout(shape), slots=slots, readers=readers, mode=mode, ctx=ctx)

    @classmethod
    def attach(cls, handle: RingHandle, *, shape: tuple[int, int, int] = DEFAULT_FRAME_SHAPE) -> Self:
        """Attach in a stage process; ``shape`` is what this process expects (checked)."""
        return cls._attach(handle, frame_layout(shape))

    @property
    def shape(self) -> tuple[int, int, int]:
        height, width, channels = self.layout.dtype["pixels"].shape
        return height, width, channels


class ResultRing(Ring[SlotRef]):
    """Fixed-size detection records of processed frames, in frame order."""

    purpose = "results"
    ref_class = SlotRef

    @classmethod
    def create(
        cls,
        instance: str,
        *,
        max_detections: int = DEFAULT_MAX_DETECTIONS,
        slots: int = 8,
        readers: int = 1,
        mode: RingMode | str = RingMode.LOSSLESS,
        ctx: BaseContext | None = None,
    ) -> Self:
        return cls._create(instance, result_layout(max_detections), slots=slots, readers=readers, mode=mode, ctx=ctx)

    @classmethod
    def attach(cls, handle: RingHandle, *, max_detections: int = DEFAULT_MAX_DETECTIONS) -> Self:
        return cls._attach(handle, result_layout(max_detections))

    @property
    def max_detections(self) -> int:
        return int(self.layout.dtype["scores"].shape[0])
