"""A ring of fixed-layout slots in one shared-memory segment: one producer, N readers.

Pixels and detections never leave shared memory: the producer fills a claimed
slot in place, readers get read-only numpy views of it. What needs ordering
(sequence numbers, cursors, pins) lives in a small control block that is only
touched while holding one process-shared lock, a POSIX semaphore whose
acquire/release are full memory barriers; Python gives no ordering guarantee
for plain writes to shared memory, so no control word is ever read without it.
Bulk data is written outside the lock, in slots that no reader can see.

Consistency rules:

* A slot being written is invisible to readers (its sequence is WRITING).
* A slot a reader holds is *pinned*; the producer never claims a pinned slot,
  so a view stays intact until it is released.
* ``latest`` mode: the producer never waits. It fills the oldest unpinned slot
  other than the newest frame; a reader gets the newest frames and counts every
  frame it never saw as dropped. If every slot is pinned the new frame is
  dropped at the producer and counted.
* ``lossless`` mode: slot = seq % slots; the producer waits while the slowest
  reader is a whole ring behind, so every frame reaches every reader exactly
  once, in order.

Waiting never spins: a reader with nothing to read sets its *waiting* flag and
blocks on its own semaphore (its doorbell) with a timeout; the producer rings
the doorbells of waiting readers when it publishes. The lossless producer
waits the same way on a *space* semaphore rung when a reader releases. Nobody
ever blocks on another process being scheduled, and a dead reader cannot hang
the producer.

Lifetime: the creator owns the segment and unlinks it in ``close()``; other
processes receive a ``RingHandle`` (picklable only while spawning a process,
because it carries the semaphores) and attach untracked, stating the layout
they expect. The segment records its owner's pid and start time, so a segment
left behind by a killed run is recognised and reclaimed by the next create
(``reclaim``). The endpoints (``producer``, ``consumer``) live in modules of
their own; this one holds the segment, the lock and the recovery operations.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
from collections.abc import Sequence
from multiprocessing.context import BaseContext
from multiprocessing.shared_memory import SharedMemory
from multiprocessing.synchronize import Lock, Semaphore
from types import TracebackType
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Self, TypeVar

import numpy as np

from . import header as h
from . import segment
from .handle import ReaderStats, RingError, RingGeometryError, RingHandle, RingMode, RingStats
from .layout import SlotLayout, round_up
from .reclaim import create_or_reclaim, semaphore_names

if TYPE_CHECKING:
    from .consumer import RingReader, SlotRef
    from .producer import RingWriter

log = logging.getLogger(__name__)

MAX_READERS = 16
LOCK_TIMEOUT_S = 5.0


class Locked:
    """Holds the ring lock, with a timeout so a lock orphaned by a killed process is reported."""

    __slots__ = ("_lock", "_name")

    def __init__(self, lock: Lock, name: str) -> None:
        self._lock = lock
        self._name = name

    def __enter__(self) -> None:
        if not self._lock.acquire(True, LOCK_TIMEOUT_S):
            raise RingError(
                f"ring {self._name!r}: lock not acquired within {LOCK_TIMEOUT_S:.0f} s; a process "
                "probably died inside a ring operation; restart the pipeline"
            )

    def __exit__(self, *exc: object) -> None:
        self._lock.release()


RefT = TypeVar("RefT", bound="SlotRef")


def _start_us(pid: int) -> int:
    return round(segment.process_start_time(pid) * 1e6)


class Ring(Generic[RefT]):
    """A shared-memory ring of slots of one ``SlotLayout``; see the module docstring.

    Subclasses name the segment's ``purpose`` and the ``ref_class`` readers get.
    """

    purpose: ClassVar[str] = "ring"
    ref_class: type[RefT]

    def __init__(
        self, shm: SharedMemory, handle: RingHandle, layout: SlotLayout, meta: dict[str, Any], owner: bool
    ) -> None:
        self._shm = shm
        self.handle = handle
        self.layout = layout
        self.name = handle.name
        self.mode = RingMode(meta["mode"])
        self.slot_count = int(meta["slots"])
        self.reader_count = int(meta["readers"])
        self.competing = int(meta.get("competing", 1))
        """Readers 0..competing-1 share one cursor: each slot goes to one of them."""
        self._owner = owner
        self.closed = False
        self.locked = Locked(handle.lock, self.name)
        s, r = self.slot_count, self.reader_count
        buf = segment.buffer(shm)
        # Control words are int64 memoryviews: indexing them yields plain ints, several
        # times cheaper than numpy scalars on the hand-off path.
        self.words = buf[h.HEADER_BYTES : h.HEADER_BYTES + h.control_bytes(s, r)].cast("q")
        pins_at = h.CONTROL_WORDS + r * h.READER_WORDS
        seq_at = pins_at + r * s
        self.ctl = self.words[: h.CONTROL_WORDS]
        rows_at = [h.CONTROL_WORDS + i * h.READER_WORDS for i in range(r)]
        self.rows = [self.words[at : at + h.READER_WORDS] for at in rows_at]
        self.pin_rows = [self.words[pins_at + i * s : pins_at + (i + 1) * s] for i in range(r)]
        self.slot_seq = self.words[seq_at : seq_at + s]
        self._slots = np.ndarray((s,), layout.dtype, buf, int(meta["data_offset"]))
        readonly = self._slots.view()
        readonly.flags.writeable = False
        self.fields = {name: self._slots[name] for name in layout.dtype.names or ()}
        self.ro_fields = {name: readonly[name] for name in layout.dtype.names or ()}
        self._writer: RingWriter | None = None

    # -- lifetime -----------------------------------------------------------------

    @classmethod
    def _create(
        cls,
        instance: str,
        layout: SlotLayout,
        *,
        slots: int,
        readers: int,
        mode: RingMode | str,
        ctx: BaseContext | None = None,
        competing: int = 1,
        doorbells: Sequence[Semaphore | None] = (),
        purpose: str | None = None,
    ) -> Self:
        mode = RingMode(mode)
        if slots < 2:
            raise ValueError(f"a ring needs at least 2 slots, got {slots}")
        if not 1 <= readers <= MAX_READERS:
            raise ValueError(f"a ring has 1 to {MAX_READERS} readers, got {readers}")
        if not 1 <= competing <= readers:
            raise ValueError(f"1 to {readers} readers may compete, not {competing}")
        name = segment.segment_name(instance, purpose or cls.purpose)
        context = ctx or mp.get_context("spawn")
        given = list(doorbells) + [None] * (readers - len(doorbells))
        handle = RingHandle(
            name=name,
            lock=context.Lock(),
            space=context.Semaphore(0),
            doorbells=tuple(bell if bell is not None else context.Semaphore(0) for bell in given[:readers]),
        )
        data_offset = round_up(h.HEADER_BYTES + h.control_bytes(slots, readers), h.PAGE)
        size = data_offset + slots * layout.dtype.itemsize
        pid = os.getpid()
        meta = {
            "version": h.VERSION,
            "layout": layout.to_json(),
            "slots": slots,
            "readers": readers,
            "mode": mode.value,
            "competing": competing,
            "data_offset": data_offset,
            "size": size,
            "owner_pid": pid,
            "owner_start": segment.process_start_time(pid),
            "semaphores": semaphore_names(handle.lock, handle.space, *handle.doorbells),
        }
        shm = create_or_reclaim(name, size)
        try:
            h.write_header(segment.buffer(shm), meta)
            ring = cls(shm, handle, layout, meta, owner=True)
        except BaseException:
            shm.close()
            segment.unlink(shm)
            raise
        for i in range(len(ring.words)):
            ring.words[i] = 0
        ring.ctl[h.LATEST_SLOT] = h.EMPTY
        for i in range(slots):
            ring.slot_seq[i] = h.EMPTY
        log.debug("created ring %s: %s, %d slots, %d readers, %s", name, layout.describe(), slots, readers, mode.value)
        return ring

    @classmethod
    def _attach(cls, handle: RingHandle, layout: SlotLayout) -> Self:
        shm = segment.attach(handle.name)
        try:
            meta = h.read_header(segment.buffer(shm))
            if meta is None:
                raise RingGeometryError(f"segment {handle.name!r} is not an initialised detectord ring")
            if meta.get("version") != h.VERSION:
                raise RingGeometryError(
                    f"ring {handle.name!r} has layout version {meta.get('version')}, this process speaks {h.VERSION}"
                )
            stored = SlotLayout.from_json(meta["layout"])
            if stored != layout:
                raise RingGeometryError(
                    f"ring {handle.name!r} holds {stored.describe()}, but this process expects {layout.describe()}"
                )
            if shm.size < int(meta["size"]):
                raise RingGeometryError(f"ring {handle.name!r} is truncated ({shm.size} < {meta['size']} bytes)")
            return cls(shm, handle, layout, meta, owner=False)
        except BaseException:
            shm.close()
            raise

    def close(self) -> None:
        """Detach; the owner also unlinks the segment. Idempotent."""
        if self.closed:
            return
        self.closed = True
        if self._writer is not None:
            self._writer.close()
        for view in (self.ctl, *self.rows, *self.pin_rows, self.slot_seq, self.words):
            view.release()
        del self._slots, self.fields, self.ro_fields
        try:
            self._shm.close()
        except BufferError:
            log.debug("ring %s: views still held at close; the mapping goes with the process", self.name)
        if self._owner:
            try:
                segment.unlink(self._shm)
            except FileNotFoundError:
                log.warning("ring %s was already unlinked", self.name)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __reduce__(self) -> Any:
        raise TypeError(f"pass {type(self).__name__}.handle to the process and attach there, not the ring itself")

    # -- endpoints ----------------------------------------------------------------

    def writer(self) -> RingWriter:
        """The ring's single producer endpoint (one per ring, enforced across processes)."""
        from .producer import RingWriter

        if self._writer is None:
            self._writer = RingWriter(self)
        return self._writer

    def reader(self, index: int) -> RingReader[RefT]:
        """Reader ``index`` (0 <= index < readers), with its own cursor."""
        from .consumer import RingReader

        if not 0 <= index < self.reader_count:
            raise RingError(f"ring {self.name!r} has readers 0..{self.reader_count - 1}, not {index}")
        return RingReader(self, index)

    def stats(self) -> RingStats:
        with self.locked:
            ctl = self.ctl
            w_seq = ctl[h.W_SEQ]
            readers = tuple(
                ReaderStats(
                    delivered=row[h.DELIVERED],
                    dropped=row[h.DROPPED],
                    lag=w_seq - row[h.CURSOR],
                    pinned=sum(pins),
                )
                for row, pins in zip(self.rows, self.pin_rows, strict=True)
            )
            return RingStats(
                published=w_seq,
                producer_drops=ctl[h.PRODUCER_DROPS],
                producer_waits=ctl[h.PRODUCER_WAITS],
                producer_wait_s=ctl[h.PRODUCER_WAIT_NS] / 1e9,
                finished=bool(ctl[h.EOF_FLAG]),
                readers=readers,
            )

    # -- recovery (the owner, after a stage process died) ---------------------------

    def reset_reader(self, index: int) -> None:
        """Forget dead reader ``index``: release its pins, skip what it had not read.

        Its replacement starts at the newest frame; in lossless mode nothing
        it had already taken is delivered again.
        """
        with self.locked:
            row, pins = self.rows[index], self.pin_rows[index]
            for slot in range(self.slot_count):
                pins[slot] = 0
            self.set_cursor(index, max(row[h.CURSOR], self.ctl[h.W_SEQ]))
            row[h.WAITING] = 0
            row[h.READER_PID] = 0
            row[h.READER_START_US] = 0
            self.wake_producer()

    def reset_writer(self) -> None:
        """Forget a dead producer: free a slot it left half written, and reopen the stream."""
        with self.locked:
            for slot in range(self.slot_count):
                if self.slot_seq[slot] == h.WRITING:
                    self.slot_seq[slot] = h.EMPTY
            self.ctl[h.WRITER_PID] = 0
            self.ctl[h.WRITER_START_US] = 0
            self.ctl[h.EOF_FLAG] = 0
        if self._writer is not None:
            self._writer.forget_claim()

    # -- used by the endpoints, always under the lock ------------------------------

    def take_endpoint(self, row: memoryview, pid_word: int, start_word: int, what: str) -> None:
        """Record this process as the holder of an endpoint; refuse if a live process holds it."""
        pid = os.getpid()
        start = _start_us(pid)
        with self.locked:
            holder, holder_start = row[pid_word], row[start_word]
            if holder not in (0, pid) and segment.process_alive(holder, holder_start / 1e6):
                raise RingError(f"ring {self.name!r}: {what} is already in use by process {holder}")
            row[pid_word] = pid
            row[start_word] = start

    def set_cursor(self, index: int, cursor: int) -> None:
        """Move reader ``index``'s cursor, and its whole competing group's with it."""
        for row in self.rows[: self.competing] if index < self.competing else (self.rows[index],):
            row[h.CURSOR] = cursor

    def free_slot(self) -> int | None:
        s = self.slot_count
        if self.mode is RingMode.LOSSLESS:
            seq = self.ctl[h.W_SEQ]
            slot = seq % s
            if any(pins[slot] for pins in self.pin_rows):
                return None
            if seq >= s and any(row[h.CURSOR] <= seq - s for row in self.rows):
                return None
            return slot
        latest = self.ctl[h.LATEST_SLOT]
        best, best_seq = None, None
        for slot, seq in enumerate(self.slot_seq):
            if slot == latest or any(pins[slot] for pins in self.pin_rows):
                continue
            if best_seq is None or seq < best_seq:
                best, best_seq = slot, seq
        return best

    def wake_readers(self, everyone: bool = False) -> None:
        for row, doorbell in zip(self.rows, self.handle.doorbells, strict=True):
            if everyone or row[h.WAITING]:
                row[h.WAITING] = 0
                doorbell.release()

    def wake_producer(self) -> None:
        if self.ctl[h.PRODUCER_WAITING]:
            self.ctl[h.PRODUCER_WAITING] = 0
            self.handle.space.release()
