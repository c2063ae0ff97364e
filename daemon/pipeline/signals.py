"""Stop signals that set a ``threading.Event`` without ever deadlocking the process they stop.

A Python signal handler runs in the main thread between two bytecodes, so a
handler that calls ``Event.set()`` can interrupt the main thread while it holds
that very event's lock (inside ``Event.wait`` or ``Event.set``) and then wait
for the lock forever. It happened: stages that got two or three SIGTERMs in a
row after their supervisor was killed hung there.
Here the C-level handler only writes the signal's number to a pipe
(``signal.set_wakeup_fd``, async-signal-safe) and a small thread that reads it
sets the event, like any other thread would.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

STOP = (signal.SIGINT, signal.SIGTERM)


@contextmanager
def stop_signals(*signals: signal.Signals) -> Iterator[threading.Event]:
    """An event that ``signals`` (SIGINT and SIGTERM unless named) set while the block runs; the earlier
    handlers come back after it. Only the main thread can install handlers: elsewhere the event is only
    the caller's to set."""
    event = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield event
        return
    wanted = {int(sig) for sig in signals or STOP}
    read, write = os.pipe()
    os.set_blocking(write, False)
    previous_fd = signal.set_wakeup_fd(write, warn_on_full_buffer=False)
    previous = {sig: signal.signal(sig, _noted) for sig in wanted}
    watcher = threading.Thread(target=_watch, args=(read, wanted, event), name="stop-signals", daemon=True)
    watcher.start()
    try:
        yield event
    finally:
        for sig, handler in previous.items():
            if handler is not None:  # None: installed from outside Python, nothing to give back
                signal.signal(sig, handler)
        signal.set_wakeup_fd(previous_fd)
        os.close(write)
        watcher.join()
        os.close(read)


def _noted(signum: int, frame: object) -> None:
    """The Python-level handler: nothing to do, the wakeup pipe already carried the signal."""


def _watch(read: int, wanted: set[int], event: threading.Event) -> None:
    while chunk := os.read(read, 64):
        if wanted.intersection(chunk):
            event.set()
