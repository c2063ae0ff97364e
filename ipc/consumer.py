"""The readers' endpoint of a ring: read pinned slots, release them, or hand them to another reader."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from multiprocessing.synchronize import Semaphore
from typing import TYPE_CHECKING, Any, Generic, Self

import numpy as np

from . import header as h
from .handle import EndOfStream, RingError, RingMode
from .ring import RefT

if TYPE_CHECKING:
    from .ring import Ring


class SlotRef:
    """A published slot pinned by a reader: its views stay intact until ``release()``."""

    __slots__ = ("_reader", "_released", "index", "seq")

    def __init__(self, reader: RingReader[Any], index: int, seq: int) -> None:
        self._reader = reader
        self.index = index
        self.seq = seq
        self._released = False

    def __getitem__(self, name: str) -> Any:
        """A read-only view of an array field, or the value of a scalar field."""
        if self._released:
            raise RingError(f"slot {self.index} (seq {self.seq}) was released; its views may be rewritten")
        value = self._reader._ring.ro_fields[name][self.index]
        return value if isinstance(value, np.ndarray) else value.item()

    @property
    def intact(self) -> bool:
        """Whether the slot still holds this sequence (always true while pinned)."""
        ring = self._reader._ring
        with ring.locked:
            return ring.slot_seq[self.index] == self.seq

    def release(self) -> None:
        self._reader.release((self,))

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class RingReader(Generic[RefT]):
    """A reader endpoint with its own cursor; what it reads stays pinned until released."""

    def __init__(self, ring: Ring[RefT], index: int) -> None:
        self._ring = ring
        self.index = index
        self._row = ring.rows[index]
        self._pins = ring.pin_rows[index]
        self._doorbell = ring.handle.doorbells[index]
        self._ref_class = ring.ref_class
        ring.take_endpoint(self._row, h.READER_PID, h.READER_START_US, f"reader {index}")

    def read(self, max_count: int = 1, timeout: float | None = None, fill: bool = False) -> list[RefT]:
        """Up to ``max_count`` consecutive published slots, pinned, oldest first.

        Blocks up to ``timeout`` seconds (None: forever) while there is nothing
        to read and returns [] when it passes. ``lossless`` with ``fill``: waits
        until ``max_count`` slots are ready, the stream ends or the timeout
        passes, then returns what there is. ``latest``: the newest frames,
        every unseen older one counted as dropped. Raises EndOfStream once the
        producer has finished and everything was read.
        """
        if max_count < 1:
            raise ValueError("max_count must be at least 1")
        ring = self._ring
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            expired = deadline is not None and time.monotonic() >= deadline
            need = max_count if fill and not expired else 1
            with ring.locked:
                refs = self._take(max_count, need)
                if refs:
                    return refs
                if ring.ctl[h.EOF_FLAG] and ring.ctl[h.W_SEQ] <= self._row[h.CURSOR]:
                    raise EndOfStream(ring.name)
                if expired:
                    return []
                self._row[h.WAITING] = 1
            self._doorbell.acquire(True, None if deadline is None else max(0.0, deadline - time.monotonic()))

    def arm(self) -> bool:
        """Say this reader is about to wait (its doorbell will ring); False if there is something to read now.

        With ``wait_any`` this lets one process wait on several rings whose
        readers share one doorbell.
        """
        ring = self._ring
        with ring.locked:
            if ring.ctl[h.W_SEQ] > self._row[h.CURSOR] or ring.ctl[h.EOF_FLAG]:
                return False
            self._row[h.WAITING] = 1
            return True

    def _take(self, max_count: int, need: int) -> list[RefT]:
        ring = self._ring
        w_seq = ring.ctl[h.W_SEQ]
        cursor = self._row[h.CURSOR]
        available = w_seq - cursor
        if available <= 0:
            return []
        if ring.mode is RingMode.LOSSLESS:
            if need > 1 and available < min(need, self._fillable(cursor)) and not ring.ctl[h.EOF_FLAG]:
                return []
            seqs = range(cursor, cursor + min(available, max_count))
            slots = [seq % ring.slot_count for seq in seqs]
        else:
            first = max(cursor, w_seq - max_count)
            where = {seq: i for i, seq in enumerate(ring.slot_seq) if seq >= first}
            start = w_seq
            while start - 1 in where:
                start -= 1
            if start == w_seq:
                return []
            seqs = range(start, w_seq)
            slots = [where[seq] for seq in seqs]
            self._row[h.DROPPED] += seqs.start - cursor
        for slot in slots:
            self._pins[slot] += 1
        ring.set_cursor(self.index, seqs.stop)
        self._row[h.DELIVERED] += len(seqs)
        make = self._ref_class
        return [make(self, slot, seq) for slot, seq in zip(slots, seqs, strict=True)]

    def _fillable(self, cursor: int) -> int:
        """How many slots can ever be ready at once for this reader, given the slots it still pins.

        The producer cannot pass the oldest slot this reader pins, so waiting
        for more would only end at the timeout.
        """
        ring = self._ring
        pinned = [ring.slot_seq[slot] for slot, count in enumerate(self._pins) if count]
        held = cursor - min(pinned) if pinned else 0
        return max(1, ring.slot_count - held)

    def release(self, refs: Iterable[SlotRef]) -> None:
        """Unpin slots read earlier; their views must not be used afterwards."""
        ring = self._ring
        todo = [ref for ref in refs if not ref._released]
        if not todo:
            return
        with ring.locked:
            for ref in todo:
                if ref._reader is not self:
                    raise RingError(f"slot {ref.index} was read by reader {ref._reader.index}, not {self.index}")
                self._pins[ref.index] -= 1
                ref._released = True
            ring.wake_producer()

    def hand_over(self, refs: Iterable[SlotRef], to: int) -> None:
        """Move the pins of ``refs`` to reader ``to``, which takes them with ``adopt``.

        This is how the frame inference computed on stays intact until the
        publisher (or writer) has encoded it: the pin changes hands under the
        lock, so there is no instant at which the slot is unpinned. Reader
        ``to``'s cursor moves past the handed-over frames, so in lossless mode
        the producer waits for it as for any reader.
        """
        ring = self._ring
        if not 0 <= to < ring.reader_count or to == self.index:
            raise RingError(f"ring {ring.name!r}: cannot hand over from reader {self.index} to reader {to}")
        todo = [ref for ref in refs if not ref._released]
        target_pins, target_row = ring.pin_rows[to], ring.rows[to]
        with ring.locked:
            for ref in todo:
                if ref._reader is not self:
                    raise RingError(f"slot {ref.index} was read by reader {ref._reader.index}, not {self.index}")
                self._pins[ref.index] -= 1
                target_pins[ref.index] += 1
                ring.set_cursor(to, max(target_row[h.CURSOR], ref.seq + 1))
                target_row[h.DELIVERED] += 1
                ref._released = True

    def pin(self, index: int, seq: int) -> RefT | None:
        """Pin slot ``index`` if it still holds sequence ``seq``, whatever this reader's cursor; None if the
        producer has rewritten it since.

        For a ring whose slots another ring's records name (a camera's
        full-resolution frames, named by its small frames): the pin is taken
        under the lock, so the producer, which claims only unpinned slots
        under the same lock, cannot be rewriting it.
        """
        ring = self._ring
        with ring.locked:
            if not 0 <= index < ring.slot_count or ring.slot_seq[index] != seq:
                return None
            self._pins[index] += 1
        return self._ref_class(self, index, seq)

    def adopt(self, index: int, seq: int) -> RefT:
        """Take a slot another reader handed over to this one; release it as usual."""
        ring = self._ring
        with ring.locked:
            if not 0 <= index < ring.slot_count or self._pins[index] <= 0:
                raise RingError(f"ring {ring.name!r}: slot {index} was not handed over to reader {self.index}")
            if ring.slot_seq[index] != seq:
                raise RingError(
                    f"ring {ring.name!r}: slot {index} holds seq {ring.slot_seq[index]}, not the handed-over {seq}"
                )
        return self._ref_class(self, index, seq)


def wait_any(readers: Sequence[RingReader[Any]], doorbell: Semaphore, timeout: float) -> None:
    """Block until one of ``readers`` (all ringing ``doorbell``) may have something, or ``timeout`` passes.

    Returns at once if one has something now; a wake-up may be spurious (a
    reader woken for a slot another process took), so callers read again.
    """
    if all(reader.arm() for reader in readers):
        doorbell.acquire(True, timeout)
