"""Shared-memory rings that move frames and results between processes without copying.

Generic: a slot is a fixed layout of named numpy fields, and nothing here
knows what a detection is. ARCHITECTURE.md ("The ring protocol") explains
slots, pins, hand-over and modes.
"""

from .consumer import RingReader, SlotRef, wait_any
from .frames import FrameRef, FrameRing
from .handle import (
    EndOfStream,
    ReaderStats,
    RingError,
    RingGeometryError,
    RingHandle,
    RingInUseError,
    RingMode,
    RingStats,
)
from .layout import Field, SlotLayout, frame_layout
from .producer import RingWriter, WriteSlot
from .ring import Ring
from .segment import SegmentError, segment_name

__all__ = [
    "EndOfStream",
    "Field",
    "FrameRef",
    "FrameRing",
    "ReaderStats",
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
    "segment_name",
    "wait_any",
]
