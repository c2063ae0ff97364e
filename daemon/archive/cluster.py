"""The archive job on an existing Ray cluster (``--ray ADDRESS``): videos cut into chunks, one model per worker.

Ray places, balances and retries the work; this module only cuts it and
joins the results. A task is a run of consecutive frames of one video: a
whole video, or a chunk of a long one (``--chunk-frames N``; by default the
videos longer than the job's share per task are cut so that no CPU waits at
the end for one long video). A task decodes its frames from the keyframe
before the first (OpenCV's seek), resizes them, runs the model and writes
their detections, unrounded, into a file of its own, renamed into place
when complete. The model is loaded once per Ray worker process and kept for
the next task that worker runs (why tasks and not actors: ARCHITECTURE.md).
The driver joins a video's chunks in order: it follows the main person over
all their frames with one tracker, as the single-video pipeline does, and
writes the JSONL (staged and renamed), so a chunked video's output is the
single pipeline's line for line; then it records it in the manifest. A task
whose worker or whole node dies runs again elsewhere (``TASK_RETRIES``):
what the dead one wrote was never renamed, so it never reaches an output.

Outputs go to ``--out-dir``, which every node must see at the same path (a
shared filesystem: NFS, CephFS, a cloud bucket mounted with FUSE; a local
directory when the cluster is one machine).
"""

from __future__ import annotations

import logging
import math
import os
import shutil
import time
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from detectord.daemon.analyze import ended_early
from detectord.daemon.cli.progress import Progress
from detectord.daemon.config import AnalysisSettings, ArchiveConfig, ConfigError
from detectord.daemon.gating import Reason
from detectord.daemon.output_files import StagedFile
from detectord.daemon.results import FrameResult
from detectord.daemon.stages.output import jsonl_line
from detectord.daemon.stages.sources import SourceError, probe_video
from detectord.detection import Detections, MainPersonTracker, registry

from .inputs import Video
from .local import ArchiveSummary, Outcome, first_line, outputs_of, plan_inputs, record
from .manifest import DONE, FAILED, PARTIAL, Manifest

log = logging.getLogger(__name__)

INSTALL = "--ray needs Ray: pip install 'detectord[cluster]' (or pip install 'ray==2.60.0')"
TASK_RETRIES = 3
"""A chunk whose worker process or node died runs again this many times, wherever Ray finds a CPU."""
TASKS_PER_CPU = 4
"""By default a job is cut into about this many tasks per CPU of the cluster: a long video alone on one CPU at
the end leaves the others idle (a task per video ran at 0.82x the local default in ``bench/cluster.py``)."""
MIN_CHUNK_FRAMES = 50
"""... but never into chunks shorter than this: each chunk decodes from the keyframe before its start."""


@dataclass(frozen=True)
class Chunk:
    video: str
    index: int
    """The video's place in the job."""
    start: int
    stop: int
    """Frames [start, stop); -1: to the end of the video."""
    fps: float
    declared: int
    """Frames the video's container announces (0: unknown)."""
    path: str
    """Where the chunk's detections go once complete (under the output directory: every node sees it)."""

    @property
    def key(self) -> tuple[int, int]:
        return self.index, self.start


@dataclass(frozen=True)
class ChunkDone:
    chunk: Chunk
    frames: int
    seconds: float
    precision: str
    categories: tuple[str, ...]
    node: str
    worker: int
    """The worker's process id on ``node``."""
    loaded: bool
    """The model was loaded for this chunk (the worker's first); else the worker's model was reused."""


_models: dict[Any, Any] = {}
"""The model of this Ray worker process, by what it was loaded for: kept for the worker's next task."""


def _detector(settings: AnalysisSettings) -> tuple[Any, bool]:
    key = (settings.model, settings.frame.size)
    if key in _models:
        return _models[key], False
    _models.clear()
    _models[key] = registry.load(settings.model, settings.frame.size)
    return _models[key], True


def analyze_chunk(settings: AnalysisSettings, chunk: Chunk, counter: Any) -> ChunkDone:
    """A Ray task: the chunk's frames through the model; their detections in the chunk's file, renamed into place
    when every frame is in. ``counter`` (a ``FrameCounter`` actor) hears the frames done after each batch."""
    import ray

    started = time.monotonic()
    detector, loaded = _detector(settings)
    staged = Path(f"{chunk.path}.{os.getpid()}.partial")
    capture = cv2.VideoCapture(chunk.video)
    found: list[Detections] = []
    try:
        if chunk.start:
            capture.set(cv2.CAP_PROP_POS_FRAMES, chunk.start)  # FFmpeg: from the keyframe before, decoded on
        while chunk.stop < 0 or chunk.start + len(found) < chunk.stop:
            batch = _read(capture, settings, chunk.start + len(found), chunk.stop)
            if not batch:
                break
            found += detector(batch)
            counter.report.remote(chunk.key, len(found))
    finally:
        capture.release()
    write_chunk(staged, found)
    os.replace(staged, chunk.path)
    node = ray.get_runtime_context().get_node_id()
    categories = tuple(detector.categories)
    seconds = time.monotonic() - started
    return ChunkDone(chunk, len(found), seconds, detector.info.precision, categories, node, os.getpid(), loaded)


def _read(capture: cv2.VideoCapture, settings: AnalysisSettings, frame_id: int, stop: int) -> list[Any]:
    count = settings.batch if stop < 0 else min(settings.batch, stop - frame_id)
    batch = []
    for _ in range(count):
        ok, image = capture.read()
        if not ok or image is None:
            break
        batch.append(cv2.resize(image, settings.frame.size, interpolation=cv2.INTER_AREA))
    return batch


def write_chunk(path: Path, found: list[Detections]) -> None:
    """A chunk's detections as the model gave them (float32, unrounded), so the join follows the main person on
    the same numbers as the single pipeline."""
    with path.open("wb") as out:
        np.savez(
            out,
            boxes=np.concatenate([d.boxes for d in found]) if found else np.zeros((0, 4), np.float32),
            scores=np.concatenate([d.scores for d in found]) if found else np.zeros(0, np.float32),
            labels=np.concatenate([d.labels for d in found]) if found else np.zeros(0, np.int32),
            counts=np.array([len(d) for d in found], np.int64),
        )


def read_chunk(path: str | Path) -> list[Detections]:
    """A chunk's detections, frame by frame, as the model gave them."""
    with np.load(path) as data:
        boxes, scores, labels, counts = data["boxes"], data["scores"], data["labels"], data["counts"]
    starts = np.cumsum(counts) - counts
    runs = zip(starts, starts + counts, strict=True)
    return [Detections(boxes[a:b], scores[a:b], labels[a:b]) for a, b in runs]


class FrameCounter:
    """A Ray actor beside the driver: the frames each chunk has done so far, for one progress bar over all.
    A chunk run again reports from its start, so its latest report counts, not the sum."""

    def __init__(self) -> None:
        self.frames: dict[tuple[int, int], int] = {}

    def report(self, key: tuple[int, int], frames: int) -> None:
        self.frames[key] = frames

    def total(self) -> int:
        return sum(self.frames.values())


def _line(frame_id: int, pts: float, detections: Detections, main: Any, categories: tuple[str, ...]) -> str:
    """The line the writer stage writes for this frame (``stages/output.py jsonl_line``)."""
    result = FrameResult(
        camera=0, frame_id=frame_id, frame_seq=0, frame_slot=0, native=None, pts=pts, capture_ts=0.0,
        inference_start=0.0, inference_end=0.0, detections=detections,
        main_index=main.index if main is not None else -1, track_id=main.track_id if main is not None else -1,
        reason=Reason.UNGATED,
    )  # fmt: skip
    return jsonl_line(result, categories)


def connect(address: str, node_ip: str | None) -> Any:
    """Ray, connected to the cluster at ``address`` (``auto``: ``RAY_ADDRESS`` or the one started here)."""
    try:
        import ray
    except ImportError:
        raise ConfigError(INSTALL) from None
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    kwargs: dict[str, Any] = {"log_to_driver": False, "configure_logging": False}
    if node_ip:
        kwargs["_node_ip_address"] = node_ip
    try:
        ray.init(address=address, **kwargs)
    except (ConnectionError, ValueError, RuntimeError) as exc:
        raise ConfigError(f"--ray {address}: cannot reach the cluster: {first_line(exc)}") from None
    return ray


def chunk_size(chunk_frames: int | None, total: int, cpus: int) -> int:
    """Frames per task at most (0: a task per video): ``chunk_frames`` as asked, by default the job's frames in
    ``TASKS_PER_CPU`` tasks per CPU, at least ``MIN_CHUNK_FRAMES``."""
    if chunk_frames is not None:
        return chunk_frames
    return max(MIN_CHUNK_FRAMES, math.ceil(total / (max(1, cpus) * TASKS_PER_CPU)))


def chunks_of(config: ArchiveConfig, video: Video, index: int, frames: int, fps: float, size: int) -> list[Chunk]:
    """The tasks of one video: equal runs of at most ``size`` frames (0: the whole video); the last runs to the
    end, so a video longer than its container says is still read whole."""
    out, _ = outputs_of(config, video)
    folder = out.with_name(f".{out.name}.chunks")
    folder.mkdir(parents=True, exist_ok=True)
    declared = frames
    if config.max_frames:
        frames = min(frames, config.max_frames) if frames else config.max_frames
    parts = math.ceil(frames / size) if size and frames > size else 1
    starts = [part * frames // parts for part in range(parts)]
    stops = [*starts[1:], frames if config.max_frames else -1]
    return [
        Chunk(str(video.path), index, start, stop, fps, declared, str(folder / f"{start:012d}.npz"))
        for start, stop in zip(starts, stops, strict=True)
    ]


def run_on_ray(
    config: ArchiveConfig,
    address: str,
    chunk_frames: int | None = None,
    node_ip: str | None = None,
    progress: bool | None = None,
) -> ArchiveSummary:
    """Every video the inputs name that the manifest does not mark done, on the Ray cluster at ``address``; one
    progress bar over all their frames."""
    if config.skip_still or config.annotated:
        raise ConfigError("--ray: --skip-still and --annotated-videos run on this machine only (drop --ray)")
    ray = connect(address, node_ip)
    try:
        started = time.monotonic()
        videos, summary, manifest = plan_inputs(config)
        probed: list[tuple[int, Video, int, float]] = []
        for index, video in enumerate(videos):
            try:
                info = probe_video(video.path)
            except SourceError as exc:
                record(manifest, config, video, Outcome(FAILED, reason=str(exc)), summary)
                continue
            probed.append((index, video, info.frames, info.fps))
        total = sum(frames for _, _, frames, _ in probed)
        size = chunk_size(chunk_frames, total, int(ray.cluster_resources().get("CPU", 1)))
        tasks = [chunk for i, video, frames, fps in probed for chunk in chunks_of(config, video, i, frames, fps, size)]
        if tasks:
            todo = {index: video for index, video, _, _ in probed}
            _run(ray, config, tasks, todo, summary, manifest, Progress(total, enabled=progress))
        summary.wall_s = time.monotonic() - started
    finally:
        ray.shutdown()
    return summary


def _length(chunk: Chunk) -> int:
    return (chunk.stop if chunk.stop >= 0 else max(chunk.declared, chunk.start)) - chunk.start


def _run(
    ray: Any,
    config: ArchiveConfig,
    tasks: list[Chunk],
    todo: dict[int, Video],
    summary: ArchiveSummary,
    manifest: Manifest,
    bar: Progress,
) -> None:
    """The chunks as Ray tasks, longest first (so that none is left alone at the end); each video joined as soon
    as its last chunk is in."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    started = time.monotonic()
    here = NodeAffinitySchedulingStrategy(node_id=ray.get_runtime_context().get_node_id(), soft=False)
    counter = ray.remote(FrameCounter).options(num_cpus=0, scheduling_strategy=here).remote()
    settings = ray.put(replace(config, model=replace(config.model, threads=1)))
    task = ray.remote(analyze_chunk).options(num_cpus=1, max_retries=TASK_RETRIES)
    pending = {task.remote(settings, chunk, counter): chunk for chunk in sorted(tasks, key=_length, reverse=True)}
    expected = Counter(chunk.index for chunk in tasks)
    done: dict[int, list[ChunkDone]] = {index: [] for index in todo}
    failed: dict[int, str] = {}
    workers: set[tuple[str, int]] = set()
    loads = 0
    while pending:
        ready, _ = ray.wait(list(pending), num_returns=1, timeout=0.5)
        frames, elapsed = ray.get(counter.total.remote()), time.monotonic() - started
        bar.update(frames, elapsed, frames / elapsed if elapsed > 0 else 0.0)
        for ref in ready:
            chunk = pending.pop(ref)
            name, last = todo[chunk.index].name, "the end" if chunk.stop < 0 else str(chunk.stop - 1)
            try:
                finished: ChunkDone = ray.get(ref)
            except ray.exceptions.RayError as exc:
                failed[chunk.index] = f"frames {chunk.start} to {last} failed on the cluster: {first_line(exc)}"
                log.error("%s: %s", name, failed[chunk.index])
                continue
            workers.add((finished.node, finished.worker))
            loads += finished.loaded
            log.info("%s frames %d to %s: %d written on node %s (worker %d)", name, chunk.start, last,
                     finished.frames, finished.node[:8], finished.worker)  # fmt: skip
            done[chunk.index].append(finished)
            if len(done[chunk.index]) == expected[chunk.index]:
                _join(config, todo[chunk.index], sorted(done[chunk.index], key=lambda d: d.chunk.start), summary,
                      manifest)  # fmt: skip
    bar.close()
    log.info("%d tasks on %d Ray workers; the model loaded %d times", len(tasks), len(workers), loads)
    for index, reason in failed.items():
        record(manifest, config, todo[index], Outcome(FAILED, reason=reason), summary)
        shutil.rmtree(Path(next(t.path for t in tasks if t.index == index)).parent, ignore_errors=True)


def _join(
    config: ArchiveConfig, video: Video, chunks: list[ChunkDone], summary: ArchiveSummary, manifest: Manifest
) -> None:
    """A video's chunks, complete, into its JSONL (staged, renamed): the main person followed over all their
    frames by one tracker, in order, as in the single-video pipeline."""
    out, _ = outputs_of(config, video)
    staged = StagedFile(out)
    tracker = MainPersonTracker(config.main_person, registry.scores_of(config.model.name))
    categories, fps, written = chunks[0].categories, chunks[0].chunk.fps, 0
    with staged.path.open("w", encoding="utf-8") as target:
        for done in chunks:
            for frame_id, detections in enumerate(read_chunk(done.chunk.path), start=done.chunk.start):
                pts = frame_id / fps
                target.write(_line(frame_id, pts, detections, tracker.update(detections, pts), categories))
            written += done.frames
    staged.commit()
    shutil.rmtree(Path(chunks[0].chunk.path).parent, ignore_errors=True)
    short = ended_early(written, chunks[0].chunk.declared) and not config.max_frames
    seconds = sum(chunk.seconds for chunk in chunks)
    status = PARTIAL if short else DONE
    outcome = Outcome(status, written, chunks[0].chunk.declared, seconds, precision=chunks[0].precision)
    record(manifest, config, video, outcome, summary)
