"""The first page of a ring segment: a JSON header, then the control block's word layout.

The header (magic, length, JSON) says what the segment holds: layout,
geometry, mode, owner and the names of its semaphores, so that an attaching
process can check it expects the same thing and a later run can reclaim a
segment whose owner died. The control block follows at ``HEADER_BYTES``: int64
words only ever read or written under the ring's lock.
"""

from __future__ import annotations

import json
from typing import Any

MAGIC = b"DTCTRNG1"
VERSION = 1
HEADER_BYTES = 4096
PAGE = 4096

EMPTY = -1
"""Slot sequence of a slot that holds nothing."""
WRITING = -2
"""Slot sequence of a slot the producer has claimed and not yet published."""

# Control words (int64).
W_SEQ = 0
"""Sequence number the next published slot gets."""
EOF_FLAG = 1
PRODUCER_WAITING = 2
PRODUCER_DROPS = 3
PRODUCER_WAITS = 4
PRODUCER_WAIT_NS = 5
LATEST_SLOT = 6
WRITER_PID = 7
WRITER_START_US = 8
CONTROL_WORDS = 16

# Per-reader words (int64).
CURSOR = 0
"""Next sequence number this reader has not seen."""
DELIVERED = 1
DROPPED = 2
WAITING = 3
READER_PID = 4
READER_START_US = 5
READER_WORDS = 8


class HeaderError(ValueError):
    """The header is too large to store."""


def control_bytes(slots: int, readers: int) -> int:
    """Control words, per-reader rows, per-reader pin counts per slot, and each slot's sequence."""
    return 8 * (CONTROL_WORDS + readers * READER_WORDS + readers * slots + slots)


def read_header(buf: memoryview) -> dict[str, Any] | None:
    """The header's JSON, or None if the segment is not an initialised ring."""
    if len(buf) < HEADER_BYTES or bytes(buf[:8]) != MAGIC:
        return None
    length = int.from_bytes(buf[8:12], "little")
    if not 0 < length <= HEADER_BYTES - 12:
        return None
    try:
        meta = json.loads(bytes(buf[12 : 12 + length]))
    except ValueError:
        return None
    return meta if isinstance(meta, dict) else None


def write_header(buf: memoryview, meta: dict[str, Any]) -> None:
    """Store ``meta``; the magic goes last, so a half-written header never looks valid."""
    text = json.dumps(meta, separators=(",", ":")).encode()
    if len(text) > HEADER_BYTES - 12:
        raise HeaderError(f"ring header too large ({len(text)} bytes)")
    buf[8:12] = len(text).to_bytes(4, "little")
    buf[12 : 12 + len(text)] = text
    buf[:8] = MAGIC
