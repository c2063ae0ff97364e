"""``detectord --source …``: the live daemon, capture -> inference -> publish, supervised.

The supervisor owns the rings and the stage processes. A stage that dies is
restarted with exponential backoff while the rings stay: its half-written
slot or its pins are released first, so the others carry on. If a ring cannot
be recovered (a stage died inside a ring operation, holding its lock), the
whole pipeline is rebuilt. SIGTERM and SIGINT stop the stages in order,
producers first, and unlink the shared memory. systemd hears READY, STATUS,
WATCHDOG (only while the pipeline makes progress) and STOPPING.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from detectord.detection import resolve_device
from detectord.ipc import FrameRing, ResultRing, RingError

from .capture import run_live_capture
from .config import DaemonConfig
from .inference import DetectorFactory, load_configured_detector, run_inference
from .notify import Notifier
from .publish import run_publisher
from .rings import DOWNSTREAM_READER, INFERENCE_READER, PipelineRings, create_rings
from .sources import LiveSource
from .supervisor import Stage, Supervisor, stop_signals

log = logging.getLogger(__name__)

STAGES = ("capture", "inference", "publish")
POLL_S = 0.1
CONTROL_EVERY_S = 1.0
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


class Daemon:
    def __init__(self, config: DaemonConfig, detector_factory: DetectorFactory, log_level: int) -> None:
        self.config = config
        self.detector_factory = detector_factory
        self.supervisor = Supervisor(log_level)
        self.notifier = Notifier()
        self.model_info = {
            "name": config.model.name,
            "precision": config.model.precision,
            "device": str(resolve_device(config.model.device)),
        }
        self.control_receive, self.control_send = self.supervisor.ctx.Pipe(duplex=False)
        self.restarts = {name: _Restart() for name in STAGES}
        self.frames_ring: FrameRing
        self.results_ring: ResultRing
        self.rings: PipelineRings
        self.ready = False
        self._watchdog_due = 0.0
        self._watched: dict[str, tuple[int, int]] = {}

    # -- rings and stages -----------------------------------------------------------

    def _create_rings(self) -> None:
        cfg = self.config
        self.frames_ring, self.results_ring = create_rings(
            cfg.camera, cfg.frame.shape, cfg.model.max_detections, live=True, batch=1, ctx=self.supervisor.ctx
        )
        self.rings = PipelineRings(
            self.frames_ring.handle, self.results_ring.handle, cfg.frame.shape, cfg.model.max_detections
        )

    def _close_rings(self) -> None:
        self.results_ring.close()
        self.frames_ring.close()

    def _start(self, name: str) -> Stage:
        cfg = self.config
        self.restarts[name].started = time.monotonic()
        if name == "capture":
            return self.supervisor.start(name, run_live_capture, self.rings, cfg.source)
        if name == "inference":
            return self.supervisor.start(
                name, run_inference, self.rings, cfg.model, cfg.main_person, 1, self.detector_factory
            )
        return self.supervisor.start(
            name, run_publisher, self.rings, cfg.camera, cfg.mqtt, self.model_info, self.control_receive
        )

    def _release(self, name: str) -> None:
        """Undo what a dead stage held in the rings, so the others and its successor can go on."""
        if name == "capture":
            self.frames_ring.reset_writer()
        elif name == "inference":
            self.frames_ring.reset_reader(INFERENCE_READER)
            self.results_ring.reset_writer()
        else:
            self.frames_ring.reset_reader(DOWNSTREAM_READER)
            self.results_ring.reset_reader(0)

    def _rebuild(self, reason: str) -> None:
        log.error("%s; rebuilding the whole pipeline", reason)
        self.supervisor.shutdown(grace_s=5.0)
        self._close_rings()
        self._create_rings()
        for name in STAGES:
            self._start(name)

    # -- the loop ------------------------------------------------------------------

    def _handle_exits(self, now: float) -> bool:
        """Schedule restarts of crashed stages; True once every stage has ended cleanly."""
        stages = self.supervisor.stages
        if all(not stages[n].alive and stages[n].process.exitcode == 0 for n in STAGES):
            return True
        for name in STAGES:
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
        for name in STAGES:
            restart = self.restarts[name]
            if restart.due is not None and now >= restart.due:
                restart.due = None
                self._start(name)
        return False

    def _stage_info(self) -> dict[str, dict[str, Any]]:
        reports = self.supervisor.reports
        info = {}
        for name in STAGES:
            report = reports.get(name)
            stage = self.supervisor.stages[name]
            info[name] = {
                "pid": stage.process.pid if stage.alive else None,
                "restarts": self.restarts[name].count,
                "frames": report.frames if report else 0,
                "status": report.status if report else "starting",
            }
        return info

    def _progressing(self, now: float) -> bool:
        """Whether the pipeline is alive: every running stage reports, and inference keeps up with capture.

        A source that is down is not a stuck pipeline (capture is reopening
        it and says so); capture delivering frames that inference does not
        take is.
        """
        reports = self.supervisor.reports
        for name in STAGES:
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

    def _status(self, info: dict[str, dict[str, Any]], elapsed: float, last: dict[str, int]) -> str:
        rates = []
        for name in STAGES:
            frames = info[name]["frames"]
            rates.append(f"{name} {max(0, frames - last.get(name, frames)) / elapsed:.1f} fps")
            last[name] = frames
        source = info["capture"]["status"]
        return ", ".join(rates) + (f"; source {source}" if source else "")

    def run(self, stop: threading.Event) -> None:
        self._create_rings()
        last_control = time.monotonic()
        last_frames: dict[str, int] = {}
        try:
            for name in STAGES:
                self._start(name)
            while not stop.is_set():
                time.sleep(POLL_S)
                now = time.monotonic()
                self.supervisor.poll()
                if self._handle_exits(now):
                    log.info("the source ended and every stage finished")
                    break
                self._notify(now)
                if now - last_control >= CONTROL_EVERY_S:
                    info = self._stage_info()
                    self.control_send.send(info)
                    self.notifier.send(f"STATUS={self._status(info, now - last_control, last_frames)}")
                    last_control = now
        finally:
            self.notifier.send("STOPPING=1")
            self.supervisor.shutdown(grace_s=5.0)
            self._close_rings()
            self.control_send.close()
            self.control_receive.close()


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
        daemon.run(stop)
