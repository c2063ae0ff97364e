"""Many videos on this machine's cores: several analyses at once, the model's threads split between them.

Each video is one ``analyze`` (its own capture -> inference -> writer
pipeline, every frame once, in order) in a worker process of a
``ProcessPoolExecutor``: no scheduler of ours, and a video's output is
staged and renamed into place only when the video is done, as for a single
video, so a killed run leaves no half-written file; the manifest says what
is done, and the next run does the rest. A worker dies with this process
(``die_with``): its analysis is interrupted and its staged output dropped.
"""

from __future__ import annotations

import logging
import os
import platform
import signal
import threading
import time
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from multiprocessing import get_context
from multiprocessing.queues import SimpleQueue
from pathlib import Path

from detectord.daemon.analyze import AnalysisFailed, analyze
from detectord.daemon.cli.progress import Progress
from detectord.daemon.config import AnalyzeConfig, ArchiveConfig, ConfigError
from detectord.daemon.logs import configure_logging
from detectord.daemon.output_files import OutputError
from detectord.daemon.pipeline.signals import stop_signals
from detectord.daemon.pipeline.stage import die_with, set_process_name
from detectord.daemon.stages.inference import DetectorFactory, load_configured_detector
from detectord.daemon.stages.sources import SourceError, probe_video

from .inputs import InputError, Video, find_videos, read_list
from .manifest import DONE, FAILED, PARTIAL, Entry, Manifest

log = logging.getLogger(__name__)

THREADS_PER_JOB = 2
"""Model threads per video by default. ``bench/cluster.py`` on 2 cores (hog-people, 9 clips): one video at a
time with 2 threads 6.9 frames/s, two at a time with 1 thread each 6.1: each video's pipeline has its own
capture and writer processes beside the model, so a video per core oversubscribes the cores."""
INTERRUPTED = "interrupted"


@dataclass(frozen=True)
class Plan:
    jobs: int
    """Videos analysed at once."""
    threads: int
    """Model threads of each (0: every core, the libraries' default)."""


def plan(config: ArchiveConfig, videos: int, cores: int | None = None) -> Plan:
    """How to split this machine's cores: ``jobs`` (0: as many as the cores allow at ``THREADS_PER_JOB``) and the
    model's ``threads`` (0: the cores divided between the jobs)."""
    cores = cores or os.cpu_count() or 1
    threads = config.model.threads
    jobs = config.jobs or max(1, cores // (threads or THREADS_PER_JOB))
    jobs = max(1, min(jobs, videos))
    return Plan(jobs, threads or max(1, cores // jobs))


@dataclass
class ArchiveSummary:
    done: int = 0
    partial: int = 0
    failed: int = 0
    skipped: int = 0
    """Done before and unchanged."""
    problems: list[str] = field(default_factory=list)
    """Inputs that named no video, one line each."""
    interrupted: bool = False
    frames: int = 0
    wall_s: float = 0.0
    plan: Plan | None = None

    def line(self) -> str:
        how = f" ({self.plan.jobs} at once, {self.plan.threads} model threads each)" if self.plan else ""
        fps = self.frames / self.wall_s if self.wall_s > 0 else 0.0
        head = "interrupted: " if self.interrupted else ""
        return (
            f"{head}{self.done} videos done, {self.partial} partial, {self.failed} failed, {self.skipped} skipped "
            f"(done before){how}; {self.frames} frames in {self.wall_s:.1f} s ({fps:.2f} fps)"
        )


@dataclass(frozen=True)
class Outcome:
    status: str
    frames: int = 0
    declared: int = 0
    seconds: float = 0.0
    reason: str | None = None
    precision: str = ""


# -- in a worker process ---------------------------------------------------------------------------


@dataclass
class _WorkerState:
    progress: SimpleQueue[tuple[int, int]] | None = None
    """(video index, frames written): the driver's progress bar (set once per worker process)."""
    driver: int = 0

    def orphaned(self) -> bool:
        """The driver died: nobody will record what this worker does (its queues stay open while any worker
        holds them, so the pool would go on taking the calls already queued)."""
        return bool(self.driver) and os.getppid() != self.driver


_worker = _WorkerState()


def _start_worker(parent: int, progress: SimpleQueue[tuple[int, int]], log_level: int) -> None:
    _worker.progress, _worker.driver = progress, parent
    set_process_name("detectord-video")
    configure_logging(log_level)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # between videos; analyze handles it during one
    die_with(parent)


def analyze_one(config: AnalyzeConfig, index: int, log_level: int, factory: DetectorFactory) -> Outcome:
    """One video, in a worker; its frames written so far go to the driver's progress bar."""
    if _worker.orphaned():
        os._exit(1)
    started = time.monotonic()
    last = [0.0]

    def report(done: int) -> None:
        if _worker.progress is not None and time.monotonic() - last[0] >= 0.5:
            last[0] = time.monotonic()
            _worker.progress.put((index, done))

    try:
        summary = analyze(
            config,
            log_level=log_level,
            progress=False,
            detector_factory=factory,
            keep_incomplete=False,
            on_progress=report,
        )
    except (SourceError, AnalysisFailed, OutputError, ConfigError) as exc:
        return Outcome(FAILED, seconds=time.monotonic() - started, reason=first_line(exc))
    if _worker.orphaned():  # interrupted by the driver's death (die_with): its output was dropped
        os._exit(1)
    if _worker.progress is not None:
        _worker.progress.put((index, summary.frames))
    status = INTERRUPTED if summary.interrupted else PARTIAL if summary.partial else DONE
    seconds = time.monotonic() - started
    return Outcome(status, summary.frames, summary.expected_frames, seconds, precision=summary.precision)


# -- the driver ------------------------------------------------------------------------------------


def first_line(exc: BaseException) -> str:
    """An error's first non-blank line, the manifest's one-line ``reason`` (its type where it says nothing)."""
    return next((line for line in str(exc).splitlines() if line.strip()), type(exc).__name__)


def outputs_of(config: ArchiveConfig, video: Video) -> tuple[Path, Path | None]:
    """Where ``video``'s JSONL (and annotated MP4) go: its name mirrored under ``out_dir``."""
    base = config.out_dir / video.name
    annotated = base.with_name(base.name + ".annotated.mp4") if config.annotated else None
    return base.with_name(base.name + ".jsonl"), annotated


def video_config(config: ArchiveConfig, video: Video, threads: int) -> AnalyzeConfig:
    out, annotated = outputs_of(config, video)
    out.parent.mkdir(parents=True, exist_ok=True)
    settings = {name: getattr(config, name) for name in ("batch", "max_frames", "skip_still", "frame", "main_person")}
    model = replace(config.model, threads=threads)
    return AnalyzeConfig(video=video.path, out=out, annotated=annotated, model=model, **settings)


def machine() -> str:
    return f"{platform.node()} ({platform.machine()}, {os.cpu_count()} CPUs)"


class _Bar:
    """One progress bar over every frame of every video, fed by the workers' reports."""

    def __init__(self, totals: list[int], enabled: bool | None) -> None:
        self.done = [0] * len(totals)
        self.bar = Progress(sum(totals), enabled=enabled)
        self.started = time.monotonic()

    def follow(self, queue: SimpleQueue[tuple[int, int]], stop: threading.Event) -> None:
        while not stop.is_set():
            while not queue.empty():
                index, done = queue.get()
                self.done[index] = max(self.done[index], done)
            elapsed = time.monotonic() - self.started
            total = sum(self.done)
            self.bar.update(total, elapsed, total / elapsed if elapsed > 0 else 0.0)
            stop.wait(0.25)
        self.bar.close()


@contextmanager
def _following(bar: _Bar, queue: SimpleQueue[tuple[int, int]]) -> Iterator[None]:
    stop = threading.Event()
    thread = threading.Thread(target=bar.follow, args=(queue, stop), name="archive-progress", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(5)


def run_archive(
    config: ArchiveConfig,
    *,
    log_level: int = logging.WARNING,
    progress: bool | None = None,
    detector_factory: DetectorFactory = load_configured_detector,
) -> ArchiveSummary:
    """Every video the inputs name that the manifest does not mark done (all with ``force``), on this machine.

    Raises ConfigError for inputs that cannot run as a whole (two videos writing one output, an unreadable
    list); an input that names nothing is one line of the summary's ``problems``, the others still run.
    """
    config.model.check_runnable()
    started = time.monotonic()
    videos, summary, manifest = plan_inputs(config)
    todo: list[tuple[Video, int]] = []
    for video in videos:
        try:
            todo.append((video, probe_video(video.path).frames))
        except SourceError as exc:
            record(manifest, config, video, Outcome(FAILED, reason=str(exc)), summary)
    if todo:
        summary.plan = plan(config, len(todo))
        _run(config, todo, summary, manifest, log_level, progress, detector_factory)
    summary.wall_s = time.monotonic() - started
    return summary


def plan_inputs(config: ArchiveConfig) -> tuple[list[Video], ArchiveSummary, Manifest]:
    """The videos to analyse (named by the inputs, not done unless ``force``), a summary with the inputs that
    named nothing and the videos skipped, and the output directory's manifest."""
    try:
        named = [*config.inputs, *(read_list(config.inputs_file) if config.inputs_file is not None else [])]
        videos, problems = find_videos(named)
    except InputError as exc:
        raise ConfigError(str(exc)) from None
    summary = ArchiveSummary(problems=problems)
    for problem in problems:
        log.error("%s", problem)
    config.out_dir.mkdir(parents=True, exist_ok=True)
    manifest = Manifest(config.out_dir)
    todo = [video for video in videos if config.force or manifest.done(video.path) is None]
    summary.skipped = len(videos) - len(todo)
    return todo, summary, manifest


def _run(
    config: ArchiveConfig,
    todo: list[tuple[Video, int]],
    summary: ArchiveSummary,
    manifest: Manifest,
    log_level: int,
    progress: bool | None,
    factory: DetectorFactory,
) -> None:
    assert summary.plan is not None
    ctx = get_context("spawn")
    queue: SimpleQueue[tuple[int, int]] = ctx.SimpleQueue()
    bar = _Bar([frames for _, frames in todo], progress)
    initargs = (os.getpid(), queue, log_level)
    pool = ProcessPoolExecutor(summary.plan.jobs, mp_context=ctx, initializer=_start_worker, initargs=initargs)
    pending: dict[Future[Outcome], Video] = {}
    with pool, _following(bar, queue), stop_signals() as interrupt:
        for index, (video, _) in enumerate(todo):
            analysis = video_config(config, video, summary.plan.threads)
            pending[pool.submit(analyze_one, analysis, index, log_level, factory)] = video
        while pending:
            finished, _ = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
            if interrupt.is_set() and not summary.interrupted:
                summary.interrupted = True
                log.warning("interrupted: the videos under way stop after their frames in flight; run again to go on")
                for future in pending:
                    future.cancel()
            for future in finished:
                video = pending.pop(future)
                if not future.cancelled():
                    record(manifest, config, video, _outcome(future), summary)
            pending = {future: video for future, video in pending.items() if not future.cancelled()}


def _outcome(future: Future[Outcome]) -> Outcome:
    try:
        return future.result()
    except Exception as exc:  # the worker died (killed, out of memory): the video is done again next time
        return Outcome(FAILED, reason=f"its worker process died: {exc or type(exc).__name__}")


def record(manifest: Manifest, config: ArchiveConfig, video: Video, outcome: Outcome, summary: ArchiveSummary) -> None:
    if outcome.status == INTERRUPTED:
        summary.interrupted = True
        return
    stat = video.path.stat()
    out, _ = outputs_of(config, video)
    entry = Entry(
        path=str(video.path),
        output=str(out.relative_to(config.out_dir)),
        size=stat.st_size,
        mtime_ns=stat.st_mtime_ns,
        status=outcome.status,
        frames_declared=outcome.declared,
        frames_written=outcome.frames,
        reason=outcome.reason,
        seconds=round(outcome.seconds, 2),
        model=config.model.name,
        precision=outcome.precision or config.model.precision,
        machine=machine(),
    )
    manifest.record(entry)
    summary.frames += outcome.frames
    if outcome.status == DONE:
        summary.done += 1
        log.info("%s: %d frames in %.1f s", video.name, outcome.frames, outcome.seconds)
    elif outcome.status == PARTIAL:
        summary.partial += 1
        log.error(
            "%s ended after %d of the %d frames it announces (truncated or corrupt?)",
            video.path,
            outcome.frames,
            outcome.declared,
        )
    else:
        summary.failed += 1
        log.error("%s: %s", video.path, outcome.reason)
