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
left behind by a killed run is recognised and reclaimed by the next create.
"""

from __future__ import annotations

import contextlib
import enum
import json
import logging
import multiprocessing as mp
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass
from multiprocessing.context import BaseContext
from multiprocessing.shared_memory import SharedMemory
from multiprocessing.synchronize import Lock, Semaphore
from types import TracebackType
from typing import Any, ClassVar, Generic, Self, TypeVar

import numpy as np

from . import segment
from .layout import SlotLayout, round_up

log = logging.getLogger(__name__)

MAGIC = b"DTCTRNG1"
VERSION = 1
HEADER_BYTES = 4096
PAGE = 4096
MAX_READERS = 16
LOCK_TIMEOUT_S = 5.0

EMPTY = -1
WRITING = -2

# Control words (int64).
_W_SEQ = 0  # sequence number the next published slot gets
_EOF = 1
_PRODUCER_WAITING = 2
_PRODUCER_DROPS = 3
_PRODUCER_WAITS = 4
_PRODUCER_WAIT_NS = 5
_LATEST_SLOT = 6
_WRITER_PID = 7
_CONTROL_WORDS = 16

# Per-reader words (int64).
_CURSOR = 0  # next sequence number this reader has not seen
_DELIVERED = 1
_DROPPED = 2
_WAITING = 3
_READER_PID = 4
_READER_WORDS = 8


class RingMode(enum.StrEnum):
    LATEST = "latest"
    LOSSLESS = "lossless"


class RingError(RuntimeError):
    """Misuse of a ring, or a ring whose state cannot be trusted."""


class RingGeometryError(RingError):
    """An attaching process expects another layout than the segment holds."""


class RingInUseError(RingError):
    """The segment name is owned by a live process (another daemon instance)."""


class EndOfStream(Exception):
    """The producer has finished and a reader has read every frame it will get."""


@dataclass(frozen=True)
class RingHandle:
    """What a stage process needs to attach: the name and the semaphores.

    Picklable only as an argument of a process being spawned (multiprocessing
    refuses to pickle semaphores otherwise), which is exactly how stages get it.
    """

    name: str
    lock: Lock
    space: Semaphore
    doorbells: tuple[Semaphore, ...]


@dataclass(frozen=True)
class ReaderStats:
    delivered: int
    dropped: int
    lag: int
    pinned: int


@dataclass(frozen=True)
class RingStats:
    published: int
    producer_drops: int
    producer_waits: int
    producer_wait_s: float
    finished: bool
    readers: tuple[ReaderStats, ...]


def _semaphore_names(handle: RingHandle) -> list[str]:
    """Names of the POSIX semaphores behind the handle, so a reclaim can remove them too."""
    names = []
    for sem in (handle.lock, handle.space, *handle.doorbells):
        name = getattr(getattr(sem, "_semlock", None), "name", None)
        if name:
            names.append(name)
    return names


def _unlink_semaphore(name: str) -> None:
    from _multiprocessing import sem_unlink

    with contextlib.suppress(FileNotFoundError):
        sem_unlink(name)


def _read_header(buf: memoryview) -> dict[str, Any] | None:
    if len(buf) < HEADER_BYTES or bytes(buf[:8]) != MAGIC:
        return None
    length = int.from_bytes(buf[8:12], "little")
    if not 0 < length <= HEADER_BYTES - 12:
        return None
    try:
        return json.loads(bytes(buf[12 : 12 + length]))
    except ValueError:
        return None


def _write_header(buf: memoryview, meta: dict[str, Any]) -> None:
    text = json.dumps(meta, separators=(",", ":")).encode()
    if len(text) > HEADER_BYTES - 12:
        raise RingError(f"ring header too large ({len(text)} bytes)")
    buf[8:12] = len(text).to_bytes(4, "little")
    buf[12 : 12 + len(text)] = text
    buf[:8] = MAGIC


def _control_bytes(slots: int, readers: int) -> int:
    return 8 * (_CONTROL_WORDS + readers * _READER_WORDS + readers * slots + slots)


class _Locked:
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
        self._owner = owner
        self._closed = False
        self._locked = _Locked(handle.lock, self.name)
        s, r = self.slot_count, self.reader_count
        buf = shm.buf
        # Control words are int64 memoryviews: indexing them yields plain ints, several
        # times cheaper than numpy scalars on the hand-off path.
        self._words = buf[HEADER_BYTES : HEADER_BYTES + _control_bytes(s, r)].cast("q")
        pins_at = _CONTROL_WORDS + r * _READER_WORDS
        seq_at = pins_at + r * s
        self._ctl = self._words[:_CONTROL_WORDS]
        rows_at = [_CONTROL_WORDS + i * _READER_WORDS for i in range(r)]
        self._rows = [self._words[at : at + _READER_WORDS] for at in rows_at]
        self._pin_rows = [self._words[pins_at + i * s : pins_at + (i + 1) * s] for i in range(r)]
        self._slot_seq = self._words[seq_at : seq_at + s]
        self._slots = np.ndarray((s,), layout.dtype, buf, int(meta["data_offset"]))
        readonly = self._slots.view()
        readonly.flags.writeable = False
        self._fields = {name: self._slots[name] for name in layout.dtype.names}
        self._ro_fields = {name: readonly[name] for name in layout.dtype.names}
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
    ) -> Self:
        mode = RingMode(mode)
        if slots < 2:
            raise ValueError(f"a ring needs at least 2 slots, got {slots}")
        if not 1 <= readers <= MAX_READERS:
            raise ValueError(f"a ring has 1 to {MAX_READERS} readers, got {readers}")
        name = segment.segment_name(instance, cls.purpose)
        ctx = ctx or mp.get_context("spawn")
        handle = RingHandle(
            name=name,
            lock=ctx.Lock(),
            space=ctx.Semaphore(0),
            doorbells=tuple(ctx.Semaphore(0) for _ in range(readers)),
        )
        data_offset = round_up(HEADER_BYTES + _control_bytes(slots, readers), PAGE)
        size = data_offset + slots * layout.dtype.itemsize
        pid = os.getpid()
        meta = {
            "version": VERSION,
            "layout": layout.to_json(),
            "slots": slots,
            "readers": readers,
            "mode": mode.value,
            "data_offset": data_offset,
            "size": size,
            "owner_pid": pid,
            "owner_start": segment.process_start_time(pid),
            "semaphores": _semaphore_names(handle),
        }
        shm = _create_or_reclaim(name, size)
        try:
            _write_header(shm.buf, meta)
            ring = cls(shm, handle, layout, meta, owner=True)
        except BaseException:
            shm.close()
            shm.unlink()
            raise
        for i in range(len(ring._words)):
            ring._words[i] = 0
        ring._ctl[_LATEST_SLOT] = EMPTY
        for i in range(slots):
            ring._slot_seq[i] = EMPTY
        log.debug("created ring %s: %s, %d slots, %d readers, %s", name, layout.describe(), slots, readers, mode.value)
        return ring

    @classmethod
    def _attach(cls, handle: RingHandle, layout: SlotLayout) -> Self:
        shm = segment.attach(handle.name)
        try:
            meta = _read_header(shm.buf)
            if meta is None:
                raise RingGeometryError(f"segment {handle.name!r} is not an initialised detectord ring")
            if meta.get("version") != VERSION:
                raise RingGeometryError(
                    f"ring {handle.name!r} has layout version {meta.get('version')}, this process speaks {VERSION}"
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
        if self._closed:
            return
        self._closed = True
        if self._writer is not None:
            self._writer.close()
        for view in (self._ctl, *self._rows, *self._pin_rows, self._slot_seq, self._words):
            view.release()
        del self._slots, self._fields, self._ro_fields
        try:
            self._shm.close()
        except BufferError:
            log.debug("ring %s: views still held at close; the mapping goes with the process", self.name)
        if self._owner:
            try:
                self._shm.unlink()
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
        if self._writer is None:
            self._writer = RingWriter(self)
        return self._writer

    def reader(self, index: int) -> RingReader[RefT]:
        """Reader ``index`` (0 <= index < readers), with its own cursor."""
        if not 0 <= index < self.reader_count:
            raise RingError(f"ring {self.name!r} has readers 0..{self.reader_count - 1}, not {index}")
        return RingReader(self, index)

    def stats(self) -> RingStats:
        with self._locked:
            ctl = self._ctl
            w_seq = ctl[_W_SEQ]
            readers = tuple(
                ReaderStats(
                    delivered=row[_DELIVERED],
                    dropped=row[_DROPPED],
                    lag=w_seq - row[_CURSOR],
                    pinned=sum(pins),
                )
                for row, pins in zip(self._rows, self._pin_rows, strict=True)
            )
            return RingStats(
                published=w_seq,
                producer_drops=ctl[_PRODUCER_DROPS],
                producer_waits=ctl[_PRODUCER_WAITS],
                producer_wait_s=ctl[_PRODUCER_WAIT_NS] / 1e9,
                finished=bool(ctl[_EOF]),
                readers=readers,
            )

    # -- recovery (the owner, after a stage process died) ---------------------------

    def reset_reader(self, index: int) -> None:
        """Forget dead reader ``index``: release its pins, skip what it had not read.

        Its replacement starts at the newest frame; in lossless mode nothing
        it had already taken is delivered again.
        """
        with self._locked:
            row, pins = self._rows[index], self._pin_rows[index]
            for slot in range(self.slot_count):
                pins[slot] = 0
            row[_CURSOR] = max(row[_CURSOR], self._ctl[_W_SEQ])
            row[_WAITING] = 0
            row[_READER_PID] = 0
            self._wake_producer()

    def reset_writer(self) -> None:
        """Forget a dead producer: free a slot it left half written, and reopen the stream."""
        with self._locked:
            for slot in range(self.slot_count):
                if self._slot_seq[slot] == WRITING:
                    self._slot_seq[slot] = EMPTY
            self._ctl[_WRITER_PID] = 0
            self._ctl[_EOF] = 0
        if self._writer is not None:
            self._writer._claimed = None

    # -- used by the endpoints, always under the lock ------------------------------

    def _take_endpoint(self, row: memoryview, index: int, what: str) -> None:
        pid = os.getpid()
        with self._locked:
            holder = row[index]
            if holder not in (0, pid) and _pid_alive(holder):
                raise RingError(f"ring {self.name!r}: {what} is already in use by process {holder}")
            row[index] = pid

    def _free_slot(self) -> int | None:
        s = self.slot_count
        if self.mode is RingMode.LOSSLESS:
            seq = self._ctl[_W_SEQ]
            slot = seq % s
            if any(pins[slot] for pins in self._pin_rows):
                return None
            if seq >= s and any(row[_CURSOR] <= seq - s for row in self._rows):
                return None
            return slot
        latest = self._ctl[_LATEST_SLOT]
        best, best_seq = None, None
        for slot, seq in enumerate(self._slot_seq):
            if slot == latest or any(pins[slot] for pins in self._pin_rows):
                continue
            if best_seq is None or seq < best_seq:
                best, best_seq = slot, seq
        return best

    def _wake_readers(self, everyone: bool = False) -> None:
        for row, doorbell in zip(self._rows, self.handle.doorbells, strict=True):
            if everyone or row[_WAITING]:
                row[_WAITING] = 0
                doorbell.release()

    def _wake_producer(self) -> None:
        if self._ctl[_PRODUCER_WAITING]:
            self._ctl[_PRODUCER_WAITING] = 0
            self.handle.space.release()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _create_or_reclaim(name: str, size: int) -> SharedMemory:
    try:
        return segment.create(name, size)
    except FileExistsError:
        pass
    old = segment.attach(name)
    try:
        meta = _read_header(old.buf)
    finally:
        old.close()
    if meta is None:
        raise RingInUseError(
            f"shared-memory segment {name!r} exists but is not a detectord ring; "
            f"if nothing uses it, remove /dev/shm/{name}"
        )
    pid, start = int(meta.get("owner_pid", 0)), float(meta.get("owner_start", 0.0))
    if segment.owner_alive(pid, start):
        raise RingInUseError(
            f"shared-memory segment {name!r} belongs to running process {pid}; "
            "is another detectord running with the same instance name?"
        )
    log.warning("reclaiming stale shared-memory segment %s left by dead process %d", name, pid)
    for sem in meta.get("semaphores", []):
        _unlink_semaphore(str(sem))
    segment.unlink_stale(name)
    return segment.create(name, size)


class WriteSlot:
    """A slot claimed by the producer: invisible to readers until published."""

    __slots__ = ("_ring", "index")

    def __init__(self, ring: Ring, index: int) -> None:
        self._ring = ring
        self.index = index

    def __getitem__(self, name: str) -> Any:
        """A writable view of an array field, or the current value of a scalar field."""
        return self._ring._fields[name][self.index]

    def __setitem__(self, name: str, value: Any) -> None:
        self._ring._fields[name][self.index] = value


class RingWriter:
    """The producer endpoint: claim a slot, fill it in place, publish it."""

    def __init__(self, ring: Ring) -> None:
        self._ring = ring
        ring._take_endpoint(ring._ctl, _WRITER_PID, "the writer")
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
            with ring._locked:
                slot = ring._free_slot()
                if slot is not None:
                    ring._slot_seq[slot] = WRITING
                    if waited_since is not None:
                        ring._ctl[_PRODUCER_WAITS] += 1
                        ring._ctl[_PRODUCER_WAIT_NS] += time.monotonic_ns() - waited_since
                    self._claimed = WriteSlot(ring, slot)
                    return self._claimed
                if ring.mode is RingMode.LATEST:
                    ring._ctl[_PRODUCER_DROPS] += 1
                    return None
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return None
                ring._ctl[_PRODUCER_WAITING] = 1
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
        with ring._locked:
            seq = ring._ctl[_W_SEQ]
            ring._slot_seq[slot.index] = seq
            ring._ctl[_W_SEQ] = seq + 1
            ring._ctl[_LATEST_SLOT] = slot.index
            ring._wake_readers()
        self._claimed = None
        return seq

    def abandon(self, slot: WriteSlot) -> None:
        """Give a claimed slot back unpublished (the frame could not be produced)."""
        ring = self._ring
        if slot is not self._claimed:
            raise RingError(f"ring {ring.name!r}: slot {slot.index} was not claimed by this writer")
        with ring._locked:
            ring._slot_seq[slot.index] = EMPTY
            if ring.mode is RingMode.LOSSLESS:
                ring._wake_producer()
        self._claimed = None

    def finish(self) -> None:
        """End of stream: readers drain what is left, then get EndOfStream."""
        with self._ring._locked:
            self._ring._ctl[_EOF] = 1
            self._ring._wake_readers(everyone=True)

    def close(self) -> None:
        """Stop being the writer (another process may take over, e.g. a restarted stage)."""
        ring = self._ring
        if ring._closed:
            return
        with ring._locked:
            if ring._ctl[_WRITER_PID] == os.getpid():
                ring._ctl[_WRITER_PID] = 0


class SlotRef:
    """A published slot pinned by a reader: its views stay intact until ``release()``."""

    __slots__ = ("_reader", "_released", "index", "seq")

    def __init__(self, reader: RingReader, index: int, seq: int) -> None:
        self._reader = reader
        self.index = index
        self.seq = seq
        self._released = False

    def __getitem__(self, name: str) -> Any:
        """A read-only view of an array field, or the value of a scalar field."""
        if self._released:
            raise RingError(f"slot {self.index} (seq {self.seq}) was released; its views may be rewritten")
        value = self._reader._ring._ro_fields[name][self.index]
        return value if isinstance(value, np.ndarray) else value.item()

    @property
    def intact(self) -> bool:
        """Whether the slot still holds this sequence (always true while pinned)."""
        ring = self._reader._ring
        with ring._locked:
            return ring._slot_seq[self.index] == self.seq

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
        self._row = ring._rows[index]
        self._pins = ring._pin_rows[index]
        self._doorbell = ring.handle.doorbells[index]
        self._ref_class = ring.ref_class
        ring._take_endpoint(self._row, _READER_PID, f"reader {index}")

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
            with ring._locked:
                refs = self._take(max_count, need)
                if refs:
                    return refs
                if ring._ctl[_EOF] and ring._ctl[_W_SEQ] <= self._row[_CURSOR]:
                    raise EndOfStream(ring.name)
                if expired:
                    return []
                self._row[_WAITING] = 1
            self._doorbell.acquire(True, None if deadline is None else max(0.0, deadline - time.monotonic()))

    def _take(self, max_count: int, need: int) -> list[RefT]:
        ring = self._ring
        w_seq = ring._ctl[_W_SEQ]
        cursor = self._row[_CURSOR]
        available = w_seq - cursor
        if available <= 0:
            return []
        if ring.mode is RingMode.LOSSLESS:
            if need > 1 and available < min(need, self._fillable(cursor)) and not ring._ctl[_EOF]:
                return []
            seqs = range(cursor, cursor + min(available, max_count))
            slots = [seq % ring.slot_count for seq in seqs]
        else:
            first = max(cursor, w_seq - max_count)
            where = {seq: i for i, seq in enumerate(ring._slot_seq) if seq >= first}
            start = w_seq
            while start - 1 in where:
                start -= 1
            if start == w_seq:
                return []
            seqs = range(start, w_seq)
            slots = [where[seq] for seq in seqs]
            self._row[_DROPPED] += seqs.start - cursor
        for slot in slots:
            self._pins[slot] += 1
        self._row[_CURSOR] = seqs.stop
        self._row[_DELIVERED] += len(seqs)
        make = self._ref_class
        return [make(self, slot, seq) for slot, seq in zip(slots, seqs, strict=True)]

    def _fillable(self, cursor: int) -> int:
        """How many slots can ever be ready at once for this reader, given the slots it still pins.

        The producer cannot pass the oldest slot this reader pins, so waiting
        for more would only end at the timeout.
        """
        ring = self._ring
        pinned = [ring._slot_seq[slot] for slot, count in enumerate(self._pins) if count]
        held = cursor - min(pinned) if pinned else 0
        return max(1, ring.slot_count - held)

    def release(self, refs: Iterable[SlotRef]) -> None:
        """Unpin slots read earlier; their views must not be used afterwards."""
        ring = self._ring
        todo = [ref for ref in refs if not ref._released]
        if not todo:
            return
        with ring._locked:
            for ref in todo:
                if ref._reader is not self:
                    raise RingError(f"slot {ref.index} was read by reader {ref._reader.index}, not {self.index}")
                self._pins[ref.index] -= 1
                ref._released = True
            ring._wake_producer()

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
        target_pins, target_row = ring._pin_rows[to], ring._rows[to]
        with ring._locked:
            for ref in todo:
                if ref._reader is not self:
                    raise RingError(f"slot {ref.index} was read by reader {ref._reader.index}, not {self.index}")
                self._pins[ref.index] -= 1
                target_pins[ref.index] += 1
                target_row[_CURSOR] = max(target_row[_CURSOR], ref.seq + 1)
                target_row[_DELIVERED] += 1
                ref._released = True

    def adopt(self, index: int, seq: int) -> RefT:
        """Take a slot another reader handed over to this one; release it as usual."""
        ring = self._ring
        with ring._locked:
            if not 0 <= index < ring.slot_count or self._pins[index] <= 0:
                raise RingError(f"ring {ring.name!r}: slot {index} was not handed over to reader {self.index}")
            if ring._slot_seq[index] != seq:
                raise RingError(
                    f"ring {ring.name!r}: slot {index} holds seq {ring._slot_seq[index]}, not the handed-over {seq}"
                )
        return self._ref_class(self, index, seq)
