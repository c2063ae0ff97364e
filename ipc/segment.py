"""Named shared-memory segments with one owner.

The owner creates a segment and unlinks it; every other process attaches
*untracked*. On Python < 3.13 ``SharedMemory(name)`` registers the segment with
multiprocessing's resource tracker even when it only attaches, and the tracker
then unlinks it when that process exits, pulling the segment from under the
owner (CPython gh-82300). Spawned children share their parent's tracker, so
"register then unregister" would also drop the owner's own registration.
Attaching therefore bypasses the tracker entirely.
"""

from __future__ import annotations

import _posixshmem
import contextlib
import mmap
import os
import re
import sys
from multiprocessing import resource_tracker, shared_memory

import psutil

PREFIX = "detectord"
_PORTABLE = re.compile(r"^[A-Za-z0-9._][A-Za-z0-9._-]*$")
MAX_NAME_BYTES = 200
"""POSIX allows NAME_MAX (255) bytes for /dev/shm entries; semaphores take a few more."""


class SegmentError(RuntimeError):
    """A shared-memory segment cannot be created or attached."""


def segment_name(instance: str, purpose: str) -> str:
    """Name a segment after its instance so that two instances never collide.

    Names are POSIX portable file names (letters, digits, '.', '_', '-', no
    leading '-'), so they are safe in /dev/shm and in any shell; which names
    an application allows on top of that is its own rule.
    """
    name = f"{PREFIX}-{instance}-{purpose}"
    for label, value in (("instance", instance), ("segment purpose", purpose)):
        if not _PORTABLE.match(value):
            raise SegmentError(
                f"invalid {label} {value!r} for a shared-memory name: use letters, digits, '.', '_' and '-', "
                "not starting with '-'"
            )
    if len(name.encode()) > MAX_NAME_BYTES:
        raise SegmentError(
            f"invalid instance {instance[:32]!r}...: the shared-memory name would be longer than {MAX_NAME_BYTES} bytes"
        )
    return name


def create(name: str, size: int) -> shared_memory.SharedMemory:
    """Create a new segment, untracked; raises FileExistsError if the name is taken.

    The owner unlinks its segments on every exit path, and a segment left by a killed owner is reclaimed
    by the next start (``reclaim.py``), which knows whether anyone still uses it. Multiprocessing's
    resource tracker would otherwise unlink them itself when the owner is SIGKILLed, with a "leaked
    shared_memory objects" warning in the daemon's log, pulling them from under stages still attached.
    """
    if sys.version_info >= (3, 13):
        return shared_memory.SharedMemory(name=name, create=True, size=size, track=False)
    shm = shared_memory.SharedMemory(name=name, create=True, size=size)
    resource_tracker.unregister(shm._name, "shared_memory")  # type: ignore[attr-defined]
    return shm


def unlink(shm: shared_memory.SharedMemory) -> None:
    """The owner removes a segment it created (untracked: ``SharedMemory.unlink`` would tell the tracker of a
    segment it never heard of, which it reports as an error)."""
    _posixshmem.shm_unlink("/" + shm.name)


if sys.version_info >= (3, 13):

    def attach(name: str) -> shared_memory.SharedMemory:
        """Attach to an existing segment without registering it with the resource tracker."""
        try:
            return shared_memory.SharedMemory(name=name, track=False)
        except FileNotFoundError:
            raise SegmentError(f"shared-memory segment {name!r} does not exist") from None

else:

    class _UntrackedSharedMemory(shared_memory.SharedMemory):
        """SharedMemory attached without the resource tracker (what 3.13 calls track=False)."""

        def __init__(self, name: str) -> None:
            # Deliberately not super().__init__(): that is what registers with the tracker.
            self._name = "/" + name
            self._fd = _posixshmem.shm_open(self._name, os.O_RDWR, mode=0o600)
            try:
                self._size = os.fstat(self._fd).st_size
                self._mmap = mmap.mmap(self._fd, self._size)
            except OSError:
                os.close(self._fd)
                self._fd = -1
                raise
            self._buf = memoryview(self._mmap)

        def unlink(self) -> None:
            raise SegmentError(f"{self.name!r} is attached, not owned: only its creator unlinks it")

    def attach(name: str) -> shared_memory.SharedMemory:
        """Attach to an existing segment without registering it with the resource tracker."""
        try:
            return _UntrackedSharedMemory(name)
        except FileNotFoundError:
            raise SegmentError(f"shared-memory segment {name!r} does not exist") from None


def buffer(shm: shared_memory.SharedMemory) -> memoryview:
    """The mapping of an open segment (``SharedMemory.buf`` is None only once closed)."""
    if shm.buf is None:
        raise SegmentError(f"shared-memory segment {shm.name!r} is closed")
    return shm.buf


def unlink_stale(name: str) -> None:
    """Remove a segment whose owner is gone, without touching the resource tracker."""
    with contextlib.suppress(FileNotFoundError):
        _posixshmem.shm_unlink("/" + name)


def process_start_time(pid: int) -> float:
    """Start time of a live process, used with its pid to recognise pid reuse."""
    return psutil.Process(pid).create_time()


def process_alive(pid: int, start_time: float) -> bool:
    """Whether the process that recorded (pid, start_time) still runs: the one liveness rule of ipc.

    The start time tells a recycled pid from the process that recorded it; a
    zombie (killed, not yet reaped) runs no more and holds no mapping.
    """
    if pid <= 0:
        return False
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return False
        return abs(process.create_time() - start_time) < 0.01
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return False
    except psutil.AccessDenied:
        return True
