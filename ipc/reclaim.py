"""Creating a ring's segment, taking over one that a dead run left behind.

A segment whose owner (pid and start time in its header) is gone is stale:
its semaphores and the segment itself are unlinked and a fresh one is made.
A segment whose owner still runs belongs to another daemon instance and is
never touched.
"""

from __future__ import annotations

import contextlib
import logging
from multiprocessing.shared_memory import SharedMemory
from multiprocessing.synchronize import Lock, Semaphore
from typing import Any

from . import segment
from .handle import RingInUseError
from .header import (
    CONTROL_WORDS,
    HEADER_BYTES,
    READER_PID,
    READER_START_US,
    READER_WORDS,
    WRITER_PID,
    WRITER_START_US,
    control_bytes,
    read_header,
)

log = logging.getLogger(__name__)


def semaphore_names(*semaphores: Lock | Semaphore) -> list[str]:
    """Names of the POSIX semaphores behind multiprocessing's objects, so a reclaim can remove them too."""
    names = []
    for sem in semaphores:
        name = getattr(getattr(sem, "_semlock", None), "name", None)
        if name:
            names.append(str(name))
    return names


def _unlink_semaphore(name: str) -> None:
    from _multiprocessing import sem_unlink

    with contextlib.suppress(FileNotFoundError):
        sem_unlink(name)


def _live_endpoints(buf: memoryview, meta: dict[str, Any]) -> list[int]:
    """The pids of the writer and readers recorded in the control block that still run."""
    try:
        readers = int(meta["readers"])
        words = buf[HEADER_BYTES : HEADER_BYTES + control_bytes(int(meta["slots"]), readers)].cast("q")
    except (KeyError, ValueError, TypeError):
        return []
    holders = [(words[WRITER_PID], words[WRITER_START_US])]
    for reader in range(readers):
        row = CONTROL_WORDS + reader * READER_WORDS
        holders.append((words[row + READER_PID], words[row + READER_START_US]))
    alive = sorted({pid for pid, start in holders if pid > 0 and segment.process_alive(pid, start / 1e6)})
    words.release()
    return alive


def create_or_reclaim(name: str, size: int) -> SharedMemory:
    """A new segment called ``name``; a stale one of that name is removed first."""
    try:
        return segment.create(name, size)
    except FileExistsError:
        pass
    old = segment.attach(name)
    try:
        meta = read_header(segment.buffer(old))
        attached = _live_endpoints(segment.buffer(old), meta) if meta is not None else []
    finally:
        old.close()
    if meta is None:
        raise RingInUseError(
            f"shared-memory segment {name!r} exists but is not a detectord ring; "
            f"if nothing uses it, remove /dev/shm/{name}"
        )
    pid, start = int(meta.get("owner_pid", 0)), float(meta.get("owner_start", 0.0))
    if segment.process_alive(pid, start):
        raise RingInUseError(
            f"shared-memory segment {name!r} belongs to running process {pid}; "
            "is another detectord running with the same instance name?"
        )
    if attached:
        raise RingInUseError(
            f"shared-memory segment {name!r} is still used by running process{'es' if len(attached) > 1 else ''} "
            f"{', '.join(str(p) for p in attached)}, though its owner {pid} is gone; stop "
            f"{'them' if len(attached) > 1 else 'it'} first"
        )
    log.warning("reclaiming stale shared-memory segment %s left by dead process %d", name, pid)
    for sem in meta.get("semaphores", []):
        _unlink_semaphore(str(sem))
    segment.unlink_stale(name)
    return segment.create(name, size)
