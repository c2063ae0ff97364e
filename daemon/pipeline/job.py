"""The one shape every job runs in: create the rings, start the stages, watch them, stop in order.

``detectord analyze`` and the live daemon differ only in their stages and in
what each round of the loop does (a progress bar and Ctrl-C handling;
restarts, systemd and statistics). ``run_job`` owns the order of things and
the cleanup on every exit path: stages stopped producers first, then the
rings closed (which unlinks the shared memory).
"""

from __future__ import annotations

import logging
import threading
import time
from abc import ABC, abstractmethod
from typing import Any

from detectord.detection.devices import cpu_description

from . import control
from .ringset import RingSet
from .supervisor import Stage, Supervisor

log = logging.getLogger(__name__)

POLL_S = 0.1


class Job(ABC):
    """A pipeline's stages around one ``RingSet``, with a control pipe to the downstream stage."""

    stages: tuple[str, ...]
    """Stage names, in start order (producers first): shutdown stops them in this order."""
    shutdown_grace_s = 10.0
    """How long a stage gets to leave after SIGTERM before it is killed."""

    def __init__(self, log_level: int) -> None:
        self.supervisor = Supervisor(log_level)
        self.control_receive, self.control_send = self.supervisor.ctx.Pipe(duplex=False)
        """The downstream stage reads ``control_receive`` (see ``control``); this process writes."""
        self.rings: RingSet
        self._model_sent: Any = None

    @abstractmethod
    def make_rings(self) -> RingSet:
        """The job's rings, created in (and owned by) the supervisor's process."""

    def open(self) -> None:
        self.rings = self.make_rings()

    def close(self) -> None:
        self.rings.close()
        self.control_send.close()
        self.control_receive.close()

    def relay_model(self) -> None:
        """Tell the downstream stage what inference loaded, once per announcement and per downstream process."""
        announced = self.supervisor.announcements
        model = next((announced[name] for name in sorted(announced) if name.startswith("inference")), None)
        if model is not None and model != self._model_sent:
            control.send(self.control_send, control.MODEL, model)
            self._model_sent = model

    def downstream_restarted(self) -> None:
        """A new downstream process has not heard of the model yet."""
        self._model_sent = None

    @abstractmethod
    def start(self, name: str) -> Stage:
        """Start (or restart) stage ``name``."""

    @abstractmethod
    def step(self, now: float, stop: threading.Event) -> bool:
        """One round, after the stages' reports were read; True when the job is done."""

    def wait(self) -> None:
        """Between rounds."""
        time.sleep(POLL_S)

    @abstractmethod
    def finish(self) -> None:
        """After the last round of a job that ended by itself (not on an error)."""

    @abstractmethod
    def stopping(self) -> None:
        """Before the stages are stopped, on every exit path."""


def run_job(job: Job, stop: threading.Event) -> None:
    """Run ``job`` until its ``step`` says it is done; ``stop`` is set by SIGTERM/SIGINT."""
    job.open()
    cpu, flags = cpu_description()
    log.info("running on %s (CPU features: %s)", cpu, ", ".join(flags) or "none of interest")
    try:
        for name in job.stages:
            job.start(name)
        while True:
            job.wait()
            job.supervisor.poll()
            if job.step(time.monotonic(), stop):
                break
        job.finish()
    finally:
        try:
            job.stopping()
            job.supervisor.shutdown(grace_s=job.shutdown_grace_s)
        finally:
            job.close()
