"""``detectord --source …``: the live daemon, capture -> inference -> publish, supervised.

The supervisor owns the rings and the stage processes. A stage that dies is
restarted with exponential backoff while the rings stay: its half-written
slot or its pins are released first, so the others carry on. If a ring cannot
be recovered (a stage died inside a ring operation, holding its lock), the
whole pipeline is rebuilt. SIGTERM and SIGINT stop the stages in order,
producers first, and unlink the shared memory. systemd hears READY, STATUS,
WATCHDOG (only while the pipeline makes progress) and STOPPING. Every
second the supervisor assembles the stats from what it owns and hands them
to the publisher, which publishes the newest every ``stats_interval_s``.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from detectord.ipc import RingError

from .config import DaemonConfig
from .pipeline import control
from .pipeline.job import Job, run_job
from .pipeline.notify import Notifier
from .pipeline.ringset import DOWNSTREAM_READER, INFERENCE_READER, RingSet
from .pipeline.supervisor import Stage, stop_signals
from .pipeline.telemetry import PipelineStats, StageRates, drops
from .stages.capture import run_live_capture
from .stages.inference import DetectorFactory, load_configured_detector, run_inference
from .stages.publish import run_publisher
from .stages.sources import LiveSource

log = logging.getLogger(__name__)

STATUS_EVERY_S = 1.0
"""How often systemd hears the rates and the publisher gets a fresh stats snapshot."""
STALE_S = 5.0
"""A stage whose last report is older than this is stuck (stages report at least twice a second)."""
BACKOFF_MIN_S = 1.0
BACKOFF_MAX_S = 30.0
STABLE_S = 60.0
"""A stage that has run this long since its last restart starts again from the shortest backoff."""


@dataclass
class _Restart:
    count: int = 0
    backoff_s: float = BACKOFF_MIN_S
    due: float | None = None
    started: float = field(default_factory=time.monotonic)


class Daemon(Job):
    stages = ("capture", "inference", "publish")
    shutdown_grace_s = 5.0

    def __init__(self, config: DaemonConfig, detector_factory: DetectorFactory, log_level: int) -> None:
        super().__init__(log_level)
        self.config = config
        self.detector_factory = detector_factory
        self.notifier = Notifier()
        self.restarts = {name: _Restart() for name in self.stages}
        self.rates = StageRates()
        self.ready = False
        self.started = time.monotonic()
        self._watchdog_due = 0.0
        self._watched: dict[str, tuple[int, int]] = {}
        self._last_status = time.monotonic()
        self._last_frames: dict[str, int] = {}

    # -- rings and stages -----------------------------------------------------------

    def make_rings(self) -> RingSet:
        cfg = self.config
        return RingSet(
            cfg.camera, cfg.frame.shape, cfg.model.max_detections, live=True, batch=1, ctx=self.supervisor.ctx
        )

    def start(self, name: str) -> Stage:
        cfg, handles = self.config, self.rings.handles
        self.restarts[name].started = time.monotonic()
        if name == "capture":
            return self.supervisor.start(name, run_live_capture, handles, cfg.source)
        if name == "inference":
            return self.supervisor.start(
                name, run_inference, handles, cfg.model, cfg.main_person, 1, self.detector_factory
            )
        self.downstream_restarted()
        return self.supervisor.start(name, run_publisher, handles, cfg.camera, cfg.mqtt, self.control_receive)

    def _release(self, name: str) -> None:
        """Undo what a dead stage held in the rings, so the others and its successor can go on."""
        frames, results = self.rings.frames, self.rings.results
        if name == "capture":
            frames.reset_writer()
        elif name == "inference":
            frames.reset_reader(INFERENCE_READER)
            results.reset_writer()
        else:
            frames.reset_reader(DOWNSTREAM_READER)
            results.reset_reader(0)

    def _rebuild(self, reason: str) -> None:
        log.error("%s; rebuilding the whole pipeline", reason)
        self.supervisor.shutdown(grace_s=5.0)
        self.rings.close()
        self.open()
        for name in self.stages:
            self.start(name)

    # -- one round -----------------------------------------------------------------

    def step(self, now: float, stop: threading.Event) -> bool:
        if stop.is_set():
            return True
        if self._handle_exits(now):
            log.info("the source ended and every stage finished")
            return True
        self.relay_model()
        self._notify(now)
        if now - self._last_status >= STATUS_EVERY_S:
            self.notifier.send(f"STATUS={self._status(now - self._last_status)}")
            control.send(self.control_send, control.STATS, self._stats())
            self._last_status = now
        return False

    def finish(self) -> None:
        """Nothing to wait for: the stages have ended (the source ended) or are stopped next."""

    def stopping(self) -> None:
        self.notifier.send("STOPPING=1")
        if self.supervisor.stages.get("publish") is not None:
            control.send(self.control_send, control.STATS, self._stats())

    def _handle_exits(self, now: float) -> bool:
        """Schedule restarts of crashed stages; True once every stage has ended cleanly."""
        stages = self.supervisor.stages
        if all(not stages[n].alive and stages[n].process.exitcode == 0 for n in self.stages):
            return True
        for name in self.stages:
            stage, restart = stages[name], self.restarts[name]
            if stage.alive or restart.due is not None or stage.process.exitcode == 0:
                continue
            if now - restart.started >= STABLE_S:
                restart.backoff_s = BACKOFF_MIN_S
            restart.due = now + restart.backoff_s
            restart.count += 1
            log.error(
                "%s; restarting it in %.0f s (restart %d)",
                stage.failure() or f"the {name} stage failed",
                restart.backoff_s,
                restart.count,
            )
            restart.backoff_s = min(2 * restart.backoff_s, BACKOFF_MAX_S)
            try:
                self._release(name)
            except RingError as exc:
                self._rebuild(f"cannot recover the rings after the {name} stage died ({exc})")
                for other in self.restarts.values():
                    other.due = None
                return False
        for name in self.stages:
            restart = self.restarts[name]
            if restart.due is not None and now >= restart.due:
                restart.due = None
                self.start(name)
        return False

    def _stage_info(self) -> dict[str, dict[str, Any]]:
        reports = self.supervisor.reports
        info = {}
        for name in self.stages:
            report = reports.get(name)
            stage = self.supervisor.stages[name]
            info[name] = {
                "pid": stage.process.pid if stage.alive else None,
                "restarts": self.restarts[name].count,
                "frames": report.frames if report else 0,
                "status": report.status if report else "starting",
            }
        return info

    def _stats(self) -> PipelineStats:
        info = self._stage_info()
        return PipelineStats(
            uptime_s=time.monotonic() - self.started,
            source_status=info["capture"]["status"],
            stages=self.rates.describe(info),
            drops=drops(self.rings.frames.stats(), self.rings.results.stats()),
        )

    def _progressing(self, now: float) -> bool:
        """Whether the pipeline is alive: every running stage reports, and inference keeps up with capture.

        A source that is down is not a stuck pipeline (capture is reopening
        it and says so); capture delivering frames that inference does not
        take is.
        """
        reports = self.supervisor.reports
        for name in self.stages:
            report, stage = reports.get(name), self.supervisor.stages[name]
            if stage.alive and report is not None and report.ready and now - report.sent_at > STALE_S:
                return False
        moved = {}
        for name in ("capture", "inference"):
            report = reports.get(name)
            now_at = (report.pid, report.frames) if report else (0, 0)
            before = self._watched.get(name)
            # a restarted stage counts from zero again: any frame of a new process is progress
            moved[name] = before is None or (now_at[0] != before[0] and now_at[1] > 0) or now_at[1] > before[1]
            self._watched[name] = now_at
        return moved["inference"] or not moved["capture"]

    def _notify(self, now: float) -> None:
        reports = self.supervisor.reports
        if not self.ready and "publish" in reports and reports["publish"].frames > 0:
            self.ready = True
            self.notifier.send("READY=1", "STATUS=running")
            log.info("first result published; running")
        interval = self.notifier.watchdog_interval_s
        if interval is not None and now >= self._watchdog_due:
            self._watchdog_due = now + interval
            if self._progressing(now):
                self.notifier.send("WATCHDOG=1")
            else:
                log.warning("the pipeline makes no progress; withholding the watchdog ping")

    def _status(self, elapsed: float) -> str:
        reports = self.supervisor.reports
        rates = []
        for name in self.stages:
            frames = reports[name].frames if name in reports else 0
            rates.append(f"{name} {max(0, frames - self._last_frames.get(name, frames)) / elapsed:.1f} fps")
            self._last_frames[name] = frames
        source = reports["capture"].status if "capture" in reports else "starting"
        return ", ".join(rates) + (f"; source {source}" if source else "")


def run_daemon(
    config: DaemonConfig,
    *,
    log_level: int = logging.INFO,
    detector_factory: DetectorFactory = load_configured_detector,
) -> None:
    """Run until SIGTERM/SIGINT (or, for a file without loop, its end); bad config or source raise first."""
    config.model.check_runnable()
    LiveSource(config.source.uri, config.source.loop).check()
    daemon = Daemon(config, detector_factory, log_level)
    with stop_signals() as stop:
        run_job(daemon, stop)
