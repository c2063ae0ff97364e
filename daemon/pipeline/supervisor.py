"""Starting, watching and stopping stage processes; which stages a job has lives with the job.

Stages are spawned (no fork after torch) with SIGINT ignored, so Ctrl-C in a
terminal reaches only the supervisor, which then stops the stages in order:
producers first, so every later stage can drain what is already in flight.
A stage is asked to stop with SIGTERM and reports through its own pipe.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.context import SpawnContext, SpawnProcess
from typing import Any

from detectord.ipc import Ring, RingError

from .stage import EXIT_REPORTED, run_stage
from .telemetry import StageReport, drain

log = logging.getLogger(__name__)


@dataclass
class Stage:
    name: str
    process: SpawnProcess
    reports: Connection
    stop_requested: bool = field(default=False)

    @property
    def alive(self) -> bool:
        return self.process.is_alive()

    @property
    def failed(self) -> bool:
        code = self.process.exitcode
        # A stage leaving on the SIGTERM we sent stopped as asked, even if it was
        # already past its handler (interpreter shutdown restores the default action).
        return code not in (None, 0) and not (self.stop_requested and code == -signal.SIGTERM)

    def failure(self) -> str | None:
        """Why the stage ended badly, if it did: None for a clean exit or one it explained itself."""
        code = self.process.exitcode
        if not self.failed or code == EXIT_REPORTED:
            return None
        assert code is not None
        if code < 0:
            return f"the {self.name} stage was killed by {signal.Signals(-code).name}"
        return f"the {self.name} stage exited with status {code}"

    def request_stop(self) -> None:
        """SIGTERM, once: the stage finishes the work in hand and leaves."""
        if not self.stop_requested and self.alive:
            self.stop_requested = True
            self.process.terminate()

    def stop_and_join(self, grace_s: float) -> None:
        """Ask the stage to stop; kill it if it has not left after ``grace_s``."""
        self.request_stop()
        self.process.join(grace_s)
        if self.process.is_alive():
            log.warning("the %s stage did not stop within %.0f s; killing it", self.name, grace_s)
            self.process.kill()
            self.process.join(2.0)


@contextmanager
def _sigint_ignored() -> Iterator[None]:
    """Children inherit an ignored SIGINT across exec, before any of their code runs."""
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


class Supervisor:
    def __init__(self, log_level: int, ctx: SpawnContext | None = None) -> None:
        self.log_level = log_level
        self.ctx = ctx or mp.get_context("spawn")
        self.stages: dict[str, Stage] = {}
        self.reports: dict[str, StageReport] = {}
        self.announcements: dict[str, Any] = {}
        """What each stage announced (inference: the model it loaded), newest first-hand."""

    def start(self, name: str, target: Callable[..., None], *args: Any) -> Stage:
        """Spawn a stage running ``target(stop, reports, *args)``."""
        receive, send = self.ctx.Pipe(duplex=False)
        process = self.ctx.Process(
            target=run_stage,
            args=(name, self.log_level, os.getpid(), send, target, *args),
            name=f"detectord-{name}",
        )
        with _sigint_ignored():
            process.start()
        send.close()
        if name in self.stages:  # a restart: the predecessor's pipe is done
            self.stages[name].reports.close()
        stage = Stage(name, process, receive)
        self.stages[name] = stage
        return stage

    def poll(self) -> dict[str, StageReport]:
        """The newest report of every stage."""
        drain((stage.reports for stage in self.stages.values()), self.reports, self.announcements)
        return self.reports

    def failures(self) -> list[Stage]:
        return [stage for stage in self.stages.values() if stage.failed]

    def kill(self, *names: str) -> None:
        """SIGKILL stages that cannot be interrupted (a model mid-batch); their rings are finished for them."""
        for name in names:
            stage = self.stages[name]
            if stage.alive:
                stage.process.kill()
                stage.process.join(2.0)

    def join(self, timeout_s: float) -> None:
        """Wait for stages that are leaving on their own (their stream ended), without signalling them.

        A stage that has failed may still be unwinding; signalling it now
        would replace its exit status (and the failure) with a SIGTERM.
        """
        for stage in self.stages.values():
            stage.process.join(timeout_s)

    def shutdown(self, grace_s: float = 10.0) -> None:
        """Stop every stage still running, in start order, and collect their last reports."""
        for stage in self.stages.values():
            if stage.alive:
                stage.stop_and_join(grace_s)
        self.poll()
        for stage in self.stages.values():
            stage.reports.close()


def finish_for(stage: Stage, ring: Ring[Any]) -> None:
    """End a dead producer's stream so its readers can drain and stop."""
    if stage.alive:
        return
    try:
        writer = ring.writer()
        writer.finish()
        writer.close()
    except RingError as exc:
        log.warning("cannot close the %s stage's stream: %s", stage.name, exc)
