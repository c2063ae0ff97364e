"""Frames of video in a ring: what every pipeline moves from its source to its consumers."""

from __future__ import annotations

from collections.abc import Sequence
from multiprocessing.context import BaseContext
from multiprocessing.synchronize import Semaphore
from typing import Self

import numpy as np

from .consumer import SlotRef
from .handle import RingHandle, RingMode
from .layout import Field, frame_layout
from .ring import Ring


class FrameRef(SlotRef):
    """A pinned frame: ``pixels`` (uint8[H, W, C], read-only view of shared memory)."""

    __slots__ = ()

    @property
    def pixels(self) -> np.ndarray:
        pixels: np.ndarray = self["pixels"]
        return pixels

    @property
    def frame_id(self) -> int:
        return int(self["frame_id"])

    @property
    def capture_ts(self) -> float:
        return float(self["capture_ts"])

    @property
    def pts(self) -> float:
        return float(self["pts"])


class FrameRing(Ring[FrameRef]):
    """Decoded frames of one source; ``latest`` for live sources, ``lossless`` for files."""

    purpose = "frames"
    ref_class = FrameRef

    @classmethod
    def create(
        cls,
        instance: str,
        *,
        shape: tuple[int, int, int],
        slots: int = 8,
        readers: int = 1,
        mode: RingMode | str = RingMode.LATEST,
        ctx: BaseContext | None = None,
        competing: int = 1,
        doorbells: Sequence[Semaphore | None] = (),
        extra: tuple[Field, ...] = (),
    ) -> Self:
        """``competing``: readers 0..competing-1 share each frame (one of them gets it, as in a work queue).
        ``doorbells``: semaphores to use for the first readers (shared with other rings, for ``wait_any``).
        ``extra``: fields of the pipeline's own beside each frame (``frame_layout``)."""
        return cls._create(
            instance,
            frame_layout(shape, extra),
            slots=slots,
            readers=readers,
            mode=mode,
            ctx=ctx,
            competing=competing,
            doorbells=doorbells,
        )

    @classmethod
    def attach(cls, handle: RingHandle, *, shape: tuple[int, int, int], extra: tuple[Field, ...] = ()) -> Self:
        """Attach in a stage process; ``shape`` and ``extra`` are what this process expects (checked)."""
        return cls._attach(handle, frame_layout(shape, extra))
