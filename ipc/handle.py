"""The vocabulary shared by a ring and its endpoints: modes, the handle, errors and statistics."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from multiprocessing.synchronize import Lock, Semaphore


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
    """One reader's counters, as ``Ring.stats`` reads them under the lock."""

    delivered: int
    """Slots this reader has taken (handed-over ones included)."""
    dropped: int
    """Latest mode: slots published while this reader was busy, which it never saw."""
    lag: int
    """Slots published that this reader has not reached yet."""
    pinned: int
    """Slots this reader holds now."""


@dataclass(frozen=True)
class RingStats:
    published: int
    producer_drops: int
    producer_waits: int
    producer_wait_s: float
    finished: bool
    readers: tuple[ReaderStats, ...]
