"""What every stage process does before and after its work: the same for every stage.

A stage runs in its own spawned process. Its entry is ``run_stage``, which
names the process, enables faulthandler, sets up logging, leaves SIGINT to the
supervisor (Ctrl-C in a terminal reaches the whole process group, and the
supervisor decides the order of shutdown), turns SIGTERM into the stage's stop
event, and turns an error into one logged line and a distinctive exit code.

The supervisor stops a stage with SIGTERM and hears from it through a pipe of
its own, so no named semaphore exists besides the rings' (which a restart
reclaims after a SIGKILL of the whole group).
"""

from __future__ import annotations

import ctypes
import faulthandler
import logging
import os
import signal
import sys
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

from detectord.daemon.logs import configure_logging
from detectord.detection import CalibrationError, PrecisionError, WeightsError

from .signals import stop_signals

log = logging.getLogger(__name__)

EXIT_REPORTED = 3
"""A stage exits with this after it has logged why; the supervisor adds nothing."""


PR_SET_NAME = 15
PR_SET_PDEATHSIG = 1


def _prctl(option: int, value: int | bytes) -> bool:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return bool(libc.prctl(option, value, 0, 0, 0) == 0)
    except (OSError, AttributeError):
        return False


def set_process_name(name: str) -> None:
    """Name the process as ps/top show it (Linux keeps the first 15 bytes)."""
    if not _prctl(PR_SET_NAME, name.encode()[:15]):
        log.debug("cannot set the process name on this platform")


def die_with(parent: int) -> None:
    """SIGTERM this process when ``parent`` (the supervisor) dies, however it dies (even by SIGKILL).

    Without it, stages outlive a killed supervisor: they keep publishing, the
    broker never sends their will, and the next start finds their segments in
    use. The check after the call closes the race where the parent died
    before the request was made.
    """
    if not _prctl(PR_SET_PDEATHSIG, signal.SIGTERM):
        log.debug("cannot ask to die with the parent on this platform")
    if os.getppid() != parent:
        sys.exit(EXIT_REPORTED)


def run_stage(
    name: str, log_level: int, parent: int, reports: Connection, target: Callable[..., None], *args: Any
) -> None:
    """Process entry of every stage: ``target(stop, reports, *args)`` with the process set up."""
    set_process_name(f"detectord-{name}")
    faulthandler.enable()
    configure_logging(log_level, stage=name)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with stop_signals(signal.SIGTERM) as stop:
            die_with(parent)
            target(stop, reports, *args)
    except Exception as exc:
        log.error("%s", exc if isinstance(exc, EXPECTED_ERRORS) else f"{type(exc).__name__}: {exc}")
        log.debug("traceback", exc_info=True)
        sys.exit(EXIT_REPORTED)


class StageError(RuntimeError):
    """An expected failure of a stage (a bad source, say): logged as its message alone."""


EXPECTED_ERRORS = (StageError, WeightsError, CalibrationError, PrecisionError)
"""Failures whose message says it all; anything else is logged with its type."""
