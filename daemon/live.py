"""``detectord --source …`` or ``--config`` with ``[[cameras]]``: the live daemon, supervised.

One capture process per camera, one frame ring per camera (``latest``),
``inference.workers`` inference processes (one model each) sharing every
camera's frames, and one publisher holding one MQTT connection per camera.
The supervisor owns the rings and the stage processes. A stage that dies is
restarted with exponential backoff while the rings stay: its half-written
slot or its pins are released first, so the others carry on, and a camera
whose source fails only ever delays itself. If a ring cannot be recovered
(a stage died inside a ring operation, holding its lock), the whole pipeline
is rebuilt. SIGTERM and SIGINT stop the stages in order, producers first,
and unlink the shared memory. systemd hears READY, STATUS, WATCHDOG (only
while every camera whose source delivers makes progress through inference)
and STOPPING. Every ``stats_interval_s`` the supervisor assembles each
camera's stats from what it owns and hands them to the publisher, which
publishes the newest on its own ``stats_interval_s`` clock.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from typing import Any

from detectord.ipc import RingError

from .config import CameraConfig, ConfigError, DaemonConfig
from .pipeline import control
from .pipeline.job import Job, run_job
from .pipeline.notify import Notifier
from .pipeline.restarts import Restarts
from .pipeline.ringset import RingSet
from .pipeline.signals import stop_signals
from .pipeline.supervisor import Stage
from .pipeline.telemetry import GatingRates, PipelineStats, ProcessProbe, StageRates, drops
from .stages.capture import run_live_capture
from .stages.inference import DetectorFactory, InferenceSettings, load_configured_detector, run_inference
from .stages.publish import PUBLISHING, run_publisher
from .stages.sources import LiveSource, SourceError

log = logging.getLogger(__name__)

STATUS_EVERY_S = 1.0
"""How often systemd hears the rates."""
STALE_S = 5.0
"""A stage whose last report is older than this is stuck (stages report at least twice a second)."""


class Daemon(Job):
    shutdown_grace_s = 5.0

    def __init__(self, config: DaemonConfig, detector_factory: DetectorFactory, log_level: int) -> None:
        super().__init__(log_level)
        self.config = config
        self.detector_factory = detector_factory
        self.cameras: dict[str, CameraConfig] = {camera.name: camera for camera in config.live_cameras}
        solo = len(self.cameras) == 1
        self.capture_stages = {("capture" if solo else f"capture-{name}"): name for name in self.cameras}
        workers = config.inference.workers
        self.inference_stages = ["inference"] if workers == 1 else [f"inference-{k}" for k in range(workers)]
        self.stages = (*self.capture_stages, *self.inference_stages, "publish")
        self.notifier = Notifier()
        self.restarts = {name: Restarts() for name in self.stages}
        self.rates = {name: StageRates() for name in self.cameras}
        self.gating = {name: GatingRates() for name in self.cameras}
        self.probe = ProcessProbe()
        self.host = socket.gethostname()
        self.ready = False
        self.started = time.monotonic()
        self._watchdog_due = 0.0
        self._watched: dict[str, tuple[int, int]] = {}
        self._last_status = self._last_stats = time.monotonic()
        self._last_frames: dict[str, int] = {}

    # -- rings and stages -----------------------------------------------------------

    def make_rings(self) -> RingSet:
        cfg = self.config
        shapes = {name: cfg.frame_of(camera).shape for name, camera in self.cameras.items()}
        return RingSet(
            shapes,
            next(iter(self.cameras)),
            cfg.model.max_detections,
            live=True,
            batch=1,
            workers=cfg.inference.workers,
            ctx=self.supervisor.ctx,
            native_size=cfg.publish.native_size,
        )

    def start(self, name: str) -> Stage:
        cfg, handles = self.config, self.rings.handles
        self.restarts[name].ran_from(time.monotonic())
        if name in self.capture_stages:
            camera = self.cameras[self.capture_stages[name]]
            ring = next(ring for ring in handles.cameras if ring.name == camera.name)
            motion = cfg.motion_of(camera)
            gated = motion if motion.enabled else None
            return self.supervisor.start(name, run_live_capture, ring, camera.source, name, gated)
        if name in self.inference_stages:
            settings = InferenceSettings(
                cfg.model,
                tuple(cfg.main_person_of(camera) for camera in self.cameras.values()),
                cfg.inference.batch,
                cfg.detect,
                cfg.events.score_threshold,
                cfg.events.min_frames,
            )
            worker = self.inference_stages.index(name)
            return self.supervisor.start(name, run_inference, handles, worker, settings, self.detector_factory, name)
        self.downstream_restarted()
        return self.supervisor.start(name, run_publisher, handles, cfg, self.inference_stages, self.control_receive)

    def _release(self, name: str) -> None:
        """Undo what a dead stage held in the rings, so the others and its successor can go on."""
        frames, natives, results = self.rings.frames, self.rings.natives, self.rings.results
        if name in self.capture_stages:
            camera = self.capture_stages[name]
            frames[camera].reset_writer()
            if camera in natives:
                natives[camera].reset_writer()
        elif name in self.inference_stages:
            worker = self.inference_stages.index(name)
            for ring in (*frames.values(), *natives.values()):
                ring.reset_reader(worker)
            results[worker].reset_writer()
        else:
            downstream = self.rings.handles.downstream
            for frame_ring in (*frames.values(), *natives.values()):
                frame_ring.reset_reader(downstream)
            for result_ring in results:
                result_ring.reset_reader(0)

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
            log.info("every source ended and every stage finished")
            return True
        self.relay_model()
        self._notify(now)
        if now - self._last_status >= STATUS_EVERY_S:
            self.notifier.send(f"STATUS={self._status(now - self._last_status)}")
            self._last_status = now
        if now - self._last_stats >= self.config.mqtt.stats_interval_s:
            control.send(self.control_send, control.STATS, self._stats())
            self._last_stats = now
        return False

    def finish(self) -> None:
        """Nothing to wait for: the stages have ended (the sources ended) or are stopped next."""

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
            wait = restart.failed(now)
            log.error(
                "%s; restarting it in %.0f s (restart %d)",
                stage.failure() or f"the {name} stage failed",
                wait,
                restart.count,
            )
            try:
                self._release(name)
            except RingError as exc:
                self._rebuild(f"cannot recover the rings after the {name} stage died ({exc})")
                for other in self.restarts.values():
                    other.due = None
                return False
        for name in self.stages:
            if self.restarts[name].take_due(now):
                self.start(name)
        return False

    # -- statistics ----------------------------------------------------------------

    def _stage_info(self, name: str, camera: str) -> dict[str, Any]:
        """What the supervisor knows of stage ``name``, as camera ``camera`` sees it."""
        report = self.supervisor.reports.get(name)
        stage = self.supervisor.stages[name]
        shared = name not in self.capture_stages
        return {
            "pid": stage.process.pid if stage.alive else None,
            "restarts": self.restarts[name].count,
            "frames": (report.counts.get(camera, 0) if shared else report.frames) if report else 0,
            "status": report.status if report else "starting",
        }

    def _stats(self) -> dict[str, PipelineStats]:
        """Each camera's stats: its capture, and its share of inference and publishing."""
        captures = {camera: stage for stage, camera in self.capture_stages.items()}
        infos = {}
        for camera in self.cameras:
            names = {"capture": captures[camera], **{n: n for n in self.inference_stages}, "publish": "publish"}
            infos[camera] = {key: self._stage_info(name, camera) for key, name in names.items()}
        usage = self.probe.measure([os.getpid(), *(i["pid"] for info in infos.values() for i in info.values())])
        supervisor = {"pid": os.getpid(), **usage[os.getpid()]}
        results = [ring.stats() for ring in self.rings.results]
        out = {}
        for camera, rates in self.rates.items():
            info = infos[camera]
            out[camera] = PipelineStats(
                host=self.host,
                uptime_s=time.monotonic() - self.started,
                source_status=info["capture"]["status"],
                stages=rates.describe(info, usage),
                drops=drops(self.rings.frames[camera].stats(), results, len(self.inference_stages)),
                supervisor=supervisor,
                gating=self._gating(camera),
            )
        return out

    def _gating(self, camera: str) -> dict[str, Any] | None:
        """The camera's motion gating, summed over the inference workers; None where it is off."""
        if not self.config.motion_of(self.cameras[camera]).enabled:
            return None
        reports = [self.supervisor.reports[name] for name in self.inference_stages if name in self.supervisor.reports]
        counters = [r.gating.get(camera, (0, 0, 0, 0.0)) for r in reports]
        looked, moved, ran = (sum(int(c[i]) for c in counters) for i in range(3))
        frames, busy = sum(r.frames for r in reports), sum(r.busy_s for r in reports)
        summed = (looked, moved, ran, sum(c[3] for c in counters))
        return self.gating[camera].describe(summed, busy / frames if frames else 0.0)

    def _progressing(self, now: float) -> bool:
        """Whether the pipeline is alive: every running stage reports, and inference keeps up with every camera.

        A source that is down is not a stuck pipeline (capture is reopening
        it and says so); a camera delivering frames that inference does not
        take is.
        """
        reports = self.supervisor.reports
        for name in self.stages:
            report, stage = reports.get(name), self.supervisor.stages[name]
            if stage.alive and report is not None and report.ready and now - report.sent_at > STALE_S:
                return False
        progressing = True
        workers = len(self.inference_stages)
        for camera, ring in self.rings.frames.items():
            stats = ring.stats()
            now_at = (stats.published, sum(reader.delivered for reader in stats.readers[:workers]))
            before = self._watched.get(camera)
            self._watched[camera] = now_at
            if before is not None and now_at[0] > before[0] and now_at[1] == before[1]:
                progressing = False
        return progressing

    def _notify(self, now: float) -> None:
        reports = self.supervisor.reports
        if not self.ready and "publish" in reports and reports["publish"].frames > 0:
            self.ready = True
            self.notifier.send("READY=1", "STATUS=running")
            status = reports["publish"].status
            log.info("first result through the pipeline; running%s", "" if status == PUBLISHING else f" ({status})")
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
        sources = []
        for stage, camera in self.capture_stages.items():
            status = reports[stage].status if stage in reports else "starting"
            if status:
                sources.append(status if len(self.cameras) == 1 else f"{camera} {status}")
        return ", ".join(rates) + (f"; source {', '.join(sources)}" if sources else "")


def check_runnable(config: DaemonConfig) -> None:
    """What the daemon refuses before it starts anything, and ``--check-config`` with it (ConfigError): a model
    this machine cannot run, a source that cannot be right (a missing file; a missing device of a single
    camera: an unplugged camera of several is waited for)."""
    config.model.check_runnable()
    cameras = config.live_cameras
    for camera in cameras:
        source = LiveSource(camera.source.uri, camera.source.loop)
        if len(cameras) == 1 or source.kind == "file":
            try:
                source.check()
            except SourceError as exc:
                key = f"cameras.{camera.name}.source.uri" if config.cameras else "source.uri"
                raise ConfigError(f"{key}: {exc}") from None


def run_daemon(
    config: DaemonConfig,
    *,
    log_level: int = logging.INFO,
    detector_factory: DetectorFactory = load_configured_detector,
) -> None:
    """Run until SIGTERM/SIGINT (or, for files without loop, their end); bad config or sources raise first."""
    check_runnable(config)
    daemon = Daemon(config, detector_factory, log_level)
    with stop_signals() as stop:
        run_job(daemon, stop)
