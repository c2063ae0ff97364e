"""Starting, watching and stopping stage processes; the wiring of a job lives with the job.

Stages are spawned (no fork after torch) with SIGINT ignored, so Ctrl-C in a
terminal reaches only the supervisor, which then stops the stages in order:
producers first, so every later stage can drain what is already in flight.
Every stage target is called as ``target(stop, reports, *args)``.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing.context import SpawnContext, SpawnProcess
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Event
from typing import Any

from detectord.ipc import Ring, RingError

from .process import EXIT_REPORTED, run_stage

log = logging.getLogger(__name__)


@dataclass
class Stage:
    name: str
    process: SpawnProcess
    stop: Event

    @property
    def alive(self) -> bool:
        return self.process.is_alive()

    def failure(self) -> str | None:
        """Why the stage ended badly, if it did: None for a clean exit or one it explained itself."""
        code = self.process.exitcode
        if code in (None, 0, EXIT_REPORTED):
            return None
        if code < 0:
            return f"the {self.name} stage was killed by {signal.Signals(-code).name}"
        return f"the {self.name} stage exited with status {code}"

    @property
    def failed(self) -> bool:
        return self.process.exitcode not in (None, 0)

    def stop_and_join(self, grace_s: float) -> None:
        """Ask the stage to stop; terminate it after ``grace_s``, kill it if that is ignored."""
        self.stop.set()
        self.process.join(grace_s)
        if self.process.is_alive():
            log.warning("%s stage did not stop within %.0f s; terminating it", self.name, grace_s)
            self.process.terminate()
            self.process.join(2.0)
        if self.process.is_alive():
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
        self.reports: Queue[Any] = self.ctx.Queue()
        self.stages: dict[str, Stage] = {}

    def start(self, name: str, target: Callable[..., None], *args: Any) -> Stage:
        stop = self.ctx.Event()
        process = self.ctx.Process(
            target=run_stage,
            args=(name, stop, self.log_level, target, stop, self.reports, *args),
            name=f"detectord-{name}",
        )
        with _sigint_ignored():
            process.start()
        stage = Stage(name, process, stop)
        self.stages[name] = stage
        return stage

    def failures(self) -> list[Stage]:
        return [stage for stage in self.stages.values() if stage.failed]

    def kill(self, *names: str) -> None:
        """SIGKILL stages that cannot be interrupted (a model mid-batch); their rings are finished for them."""
        for name in names:
            stage = self.stages[name]
            if stage.alive:
                stage.process.kill()
                stage.process.join(2.0)

    def shutdown(self, grace_s: float = 10.0) -> None:
        """Stop every stage still running, in start order."""
        for stage in self.stages.values():
            if stage.alive:
                stage.stop_and_join(grace_s)

    def close(self) -> None:
        """Release the report queue; call after the last ``drain``."""
        self.reports.close()
        self.reports.join_thread()


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
