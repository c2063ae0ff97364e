"""The producer's endpoint of a ring: claim a slot, fill it in place, publish it."""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Any

from . import header as h
from .handle import RingError, RingMode

if TYPE_CHECKING:
    from .ring import Ring


class WriteSlot:
    """A slot claimed by the producer: invisible to readers until published."""

    __slots__ = ("_ring", "index")

    def __init__(self, ring: Ring[Any], index: int) -> None:
        self._ring = ring
        self.index = index

    def __getitem__(self, name: str) -> Any:
        """A writable view of an array field, or the current value of a scalar field."""
        return self._ring.fields[name][self.index]

    def __setitem__(self, name: str, value: Any) -> None:
        self._ring.fields[name][self.index] = value


class RingWriter:
    """The producer endpoint: claim a slot, fill it in place, publish it."""

    def __init__(self, ring: Ring[Any]) -> None:
        self._ring = ring
        ring.take_endpoint(ring.ctl, h.WRITER_PID, h.WRITER_START_US, "the writer")
        self._claimed: WriteSlot | None = None

    def claim(self, timeout: float | None = None) -> WriteSlot | None:
        """A slot to fill, or None.

        ``latest``: never waits; None means every slot is pinned and this frame
        is dropped (counted). ``lossless``: waits up to ``timeout`` for the
        slowest reader; None means the timeout passed.
        """
        ring = self._ring
        if self._claimed is not None:
            raise RingError(
                f"ring {ring.name!r}: publish or abandon slot {self._claimed.index} before claiming another"
            )
        deadline = None if timeout is None else time.monotonic() + timeout
        waited_since: int | None = None
        while True:
            with ring.locked:
                slot = ring.free_slot()
                if slot is not None:
                    ring.slot_seq[slot] = h.WRITING
                    if waited_since is not None:
                        ring.ctl[h.PRODUCER_WAITS] += 1
                        ring.ctl[h.PRODUCER_WAIT_NS] += time.monotonic_ns() - waited_since
                    self._claimed = WriteSlot(ring, slot)
                    return self._claimed
                if ring.mode is RingMode.LATEST:
                    ring.ctl[h.PRODUCER_DROPS] += 1
                    return None
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return None
                ring.ctl[h.PRODUCER_WAITING] = 1
            if waited_since is None:
                waited_since = time.monotonic_ns()
            ring.handle.space.acquire(True, remaining)

    def publish(self, slot: WriteSlot, **fields: Any) -> int:
        """Set scalar ``fields``, then make the slot visible; returns its sequence number."""
        ring = self._ring
        if slot is not self._claimed:
            raise RingError(f"ring {ring.name!r}: slot {slot.index} was not claimed by this writer")
        for name, value in fields.items():
            slot[name] = value
        with ring.locked:
            seq: int = ring.ctl[h.W_SEQ]
            ring.slot_seq[slot.index] = seq
            ring.ctl[h.W_SEQ] = seq + 1
            ring.ctl[h.LATEST_SLOT] = slot.index
            ring.wake_readers()
        self._claimed = None
        return seq

    def abandon(self, slot: WriteSlot) -> None:
        """Give a claimed slot back unpublished (the frame could not be produced)."""
        ring = self._ring
        if slot is not self._claimed:
            raise RingError(f"ring {ring.name!r}: slot {slot.index} was not claimed by this writer")
        with ring.locked:
            ring.slot_seq[slot.index] = h.EMPTY
            if ring.mode is RingMode.LOSSLESS:
                ring.wake_producer()
        self._claimed = None

    def forget_claim(self) -> None:
        """The owner reset the ring after this writer's process died: a claim it held is gone."""
        self._claimed = None

    def finish(self) -> None:
        """End of stream: readers drain what is left, then get EndOfStream."""
        with self._ring.locked:
            self._ring.ctl[h.EOF_FLAG] = 1
            self._ring.wake_readers(everyone=True)

    def close(self) -> None:
        """Stop being the writer (another process may take over, e.g. a restarted stage)."""
        ring = self._ring
        if ring.closed:
            return
        with ring.locked:
            if ring.ctl[h.WRITER_PID] == os.getpid():
                ring.ctl[h.WRITER_PID] = 0
                ring.ctl[h.WRITER_START_US] = 0
