"""Stage telemetry: each stage reports how much it did and how long it was busy.

Reports are small dataclasses sent through a pipe per stage (never pixels):
cumulative counters, so only the newest report of a stage matters.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from dataclasses import dataclass
from multiprocessing.connection import Connection


@dataclass(frozen=True)
class StageReport:
    stage: str
    pid: int
    frames: int
    """Frames this stage has finished."""
    busy_s: float
    """Seconds spent working on them (waiting for input or for space excluded)."""
    ready: bool
    """The stage is set up (for inference: the model is loaded) and processing."""
    final: bool
    """Last report: the stage is leaving."""
    sent_at: float
    """time.monotonic() in the sender, comparable across processes on one machine."""
    status: str = ""
    """What the stage is doing, for people: "streaming", "reconnecting: cannot open …"."""


class StageMeter:
    """Counts a stage's frames and busy time, reporting at most every ``interval`` seconds."""

    def __init__(self, stage: str, reports: Connection, interval: float = 0.5) -> None:
        self.stage = stage
        self._reports = reports
        self._interval = interval
        self.frames = 0
        self.busy_s = 0.0
        self._ready = False
        self._last = 0.0
        self.status = ""

    def ready(self) -> None:
        self._ready = True
        self._send(final=False)

    def add(self, frames: int, busy_s: float) -> None:
        self.frames += frames
        self.busy_s += busy_s
        if time.monotonic() - self._last >= self._interval:
            self._send(final=False)

    def tick(self) -> None:
        """Report even without progress: a stage whose reports stop is stuck, not idle."""
        if time.monotonic() - self._last >= self._interval:
            self._send(final=False)

    def set_status(self, status: str) -> None:
        if status != self.status:
            self.status = status
            self._send(final=False)

    def close(self) -> None:
        self._send(final=True)

    def _send(self, final: bool) -> None:
        if self._reports.closed:
            return
        self._last = time.monotonic()
        report = StageReport(
            self.stage,
            os.getpid(),
            self.frames,
            self.busy_s,
            self._ready,
            final,
            self._last,
            self.status,
        )
        try:
            self._reports.send(report)
        except (BrokenPipeError, ConnectionResetError):
            self._reports.close()


def drain(pipes: Iterable[Connection], into: dict[str, StageReport]) -> None:
    """Keep the newest report of each stage; a closed pipe (stage gone) has nothing more."""
    for pipe in pipes:
        try:
            while not pipe.closed and pipe.poll():
                report = pipe.recv()
                into[report.stage] = report
        except (EOFError, OSError):
            pipe.close()
