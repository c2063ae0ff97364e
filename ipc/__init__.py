"""Shared-memory rings that move frames and results between stage processes without copying.

Knows nothing of models: a slot is a fixed layout of named numpy fields.
"""

from .frames import FrameRef, FrameRing, ResultRing
from .layout import Field, SlotLayout, frame_layout, result_layout
from .ring import (
    EndOfStream,
    ReaderStats,
    Ring,
    RingError,
    RingGeometryError,
    RingHandle,
    RingInUseError,
    RingMode,
    RingReader,
    RingStats,
    RingWriter,
    SlotRef,
    WriteSlot,
)
from .segment import SegmentError, segment_name

__all__ = [
    "EndOfStream",
    "Field",
    "FrameRef",
    "FrameRing",
    "ReaderStats",
    "ResultRing",
    "Ring",
    "RingError",
    "RingGeometryError",
    "RingHandle",
    "RingInUseError",
    "RingMode",
    "RingReader",
    "RingStats",
    "RingWriter",
    "SegmentError",
    "SlotLayout",
    "SlotRef",
    "WriteSlot",
    "frame_layout",
    "result_layout",
    "segment_name",
]
