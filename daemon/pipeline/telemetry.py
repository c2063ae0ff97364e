"""Stage telemetry in, statistics out.

Each stage reports how much it did and how long it was busy: small
dataclasses sent through a pipe per stage (never pixels), cumulative
counters, so only the newest report of a stage matters. A report may also
carry an announcement, something the stage says once (inference: the model
it loaded). The supervisor, which owns the stages' pids, their reports and
the rings, turns all of it into one ``PipelineStats`` per camera
(``daemon/live.py Daemon._stats``); the publisher adds what it alone knows
(latency, the connection: ``stats.camera_stats``).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

import psutil

from detectord.ipc import RingStats

Gating = tuple[int, int, int, float]
"""One camera's gating counters since start: newest frames looked at, those with motion, those the model ran on,
and the frames' worth of pixels the model looked at in them."""


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
    sent_at: float
    """time.monotonic() in the sender, comparable across processes on one machine."""
    status: str = ""
    """What the stage is doing, for people: "streaming", "reconnecting: cannot open …"."""
    announcement: Any = None
    """Sent once, with the ready report: what the stage's readers need to know (picklable)."""
    counts: dict[str, int] = field(default_factory=dict)
    """Frames finished per camera, for a stage that serves several."""
    gating: dict[str, Gating] = field(default_factory=dict)
    """Inference, per camera: newest frames looked at, those with motion, those the model ran on, and the frames'
    worth of pixels it looked at in those (regions: less than one a run)."""


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
        self.counts: dict[str, int] = {}
        self.gating: dict[str, Gating] = {}

    def ready(self, announcement: Any = None) -> None:
        self._ready = True
        self._send(announcement)

    def add(self, frames: int, busy_s: float, cameras: Iterable[str] = ()) -> None:
        """``frames`` done in ``busy_s``; ``cameras`` names each frame's camera, if the stage serves several."""
        self.frames += frames
        self.busy_s += busy_s
        for camera in cameras:
            self.counts[camera] = self.counts.get(camera, 0) + 1
        if time.monotonic() - self._last >= self._interval:
            self._send()

    def tick(self) -> None:
        """Report even without progress: a stage whose reports stop is stuck, not idle."""
        if time.monotonic() - self._last >= self._interval:
            self._send()

    def set_status(self, status: str) -> None:
        if status != self.status:
            self.status = status
            self._send()

    def close(self) -> None:
        self._send()

    def _send(self, announcement: Any = None) -> None:
        if self._reports.closed:
            return
        self._last = time.monotonic()
        report = StageReport(
            self.stage,
            os.getpid(),
            self.frames,
            self.busy_s,
            self._ready,
            self._last,
            self.status,
            announcement,
            dict(self.counts),
            dict(self.gating),
        )
        try:
            self._reports.send(report)
        except (BrokenPipeError, ConnectionResetError):
            self._reports.close()


def drain(pipes: Iterable[Connection], into: dict[str, StageReport], announcements: dict[str, Any]) -> None:
    """Keep the newest report of each stage, and every announcement; a closed pipe has nothing more."""
    for pipe in pipes:
        try:
            while not pipe.closed and pipe.poll():
                report = pipe.recv()
                into[report.stage] = report
                if report.announcement is not None:
                    announcements[report.stage] = report.announcement
        except (EOFError, OSError):
            pipe.close()


NO_USAGE: dict[str, Any] = {"cpu_percent": None, "rss_mb": None, "uss_mb": None}


@dataclass
class ProcessProbe:
    """CPU and memory of the pipeline's processes, each measured once per snapshot.

    Stages shared by several cameras (inference, publish) appear in every
    camera's stats; reading a large process's memory map is not cheap, so a
    snapshot measures each pid once and every camera reads the same figures.
    """

    _processes: dict[int, psutil.Process] = field(default_factory=dict)

    def measure(self, pids: Iterable[int | None]) -> dict[int, dict[str, Any]]:
        return {pid: self._usage(pid) for pid in {pid for pid in pids if pid}}

    def _usage(self, pid: int) -> dict[str, Any]:
        """CPU percent since the last call, resident and unique memory (USS: what the process alone holds)."""
        try:
            process = self._processes.setdefault(pid, psutil.Process(pid))
            with process.oneshot():
                memory = process.memory_full_info()
                return {
                    "cpu_percent": round(process.cpu_percent(interval=None), 1),
                    "rss_mb": round(memory.rss / 2**20, 1),
                    "uss_mb": round(memory.uss / 2**20, 1),
                }
        except psutil.Error:
            self._processes.pop(pid, None)
            return dict(NO_USAGE)


@dataclass
class StageRates:
    """Frames per second of each stage between two stats snapshots (of one camera)."""

    _last: dict[str, tuple[float, int]] = field(default_factory=dict)

    def describe(
        self, stages: dict[str, dict[str, Any]], usage: dict[int, dict[str, Any]]
    ) -> dict[str, dict[str, Any]]:
        """Each stage's rate and counters, with its process's ``usage`` (from ``ProcessProbe.measure``)."""
        now = time.monotonic()
        out: dict[str, dict[str, Any]] = {}
        for name, info in stages.items():
            frames = int(info.get("frames", 0))
            then, before = self._last.get(name, (now, frames))
            fps = (frames - before) / (now - then) if now > then and frames >= before else 0.0
            self._last[name] = (now, frames)
            pid = info.get("pid")
            out[name] = {
                "fps": round(fps, 2),
                "frames": frames,
                "pid": pid,
                "restarts": info.get("restarts", 0),
                "status": info.get("status", ""),
                **usage.get(pid or 0, NO_USAGE),
            }
        return out


@dataclass
class GatingRates:
    """One camera's motion gating between two stats snapshots: what the model was spared, and at what rate
    the picture moved."""

    _last: tuple[float, int, int, int] | None = None

    def describe(self, counters: Gating, seconds_per_frame: float) -> dict[str, Any]:
        """From the counters since start (``Gating``) and the model's mean seconds a frame: the ``gating``
        section of the stats."""
        looked, moved, ran, area = counters
        now = time.monotonic()
        then, _, before, _ = self._last or (now, looked, moved, ran)
        self._last = (now, looked, moved, ran)
        return {
            "frames": looked,
            "motion_frames": moved,
            "model_frames": ran,
            "motion_fps": round((moved - before) / (now - then), 2) if now > then and moved >= before else 0.0,
            "model_share": round(ran / looked, 3) if looked else None,
            "model_s_saved": round(max(looked - ran, 0) * seconds_per_frame, 1),
            "model_area": round(area / ran, 3) if ran else None,
        }


@dataclass(frozen=True)
class PipelineStats:
    """The supervisor's part of a stats message, handed to the publisher as data."""

    host: str
    uptime_s: float
    source_status: str
    stages: dict[str, dict[str, Any]]
    drops: dict[str, int]
    supervisor: dict[str, Any]
    """The supervisor's own pid, CPU and memory."""
    gating: dict[str, Any] | None = None
    """Motion gating (``GatingRates``), None where the camera's motion is not computed."""


def drops(frames: RingStats, results: Sequence[RingStats], workers: int) -> dict[str, int]:
    """One camera's frames lost along the way, by where they were lost: ``frames`` is its frame ring's stats
    (readers 0..``workers``-1 are the inference workers), ``results`` every worker's result ring's."""
    return {
        "capture": frames.producer_drops,
        "inference": sum(reader.dropped for reader in frames.readers[:workers]),
        "publish": sum(ring.readers[0].dropped for ring in results),
    }
