"""The archive job on an existing Ray cluster (``--ray ADDRESS``): videos cut into chunks, one model per worker.

Ray places and retries the work; this module only cuts it and joins the
results. A task is a video, or with ``--chunk-frames N`` a run of N
consecutive frames of a long one. Tasks go to ``ChunkAnalyzer`` actors, one
per CPU of the cluster, each loading the model once (``ray.util.ActorPool``;
why actors and not Ray Data: ARCHITECTURE.md). An actor decodes its chunk
from the keyframe before the chunk's first frame (OpenCV's seek), resizes,
detects and writes exactly the chunk's frames as the single-video pipeline
writes them, into a file of its own, renamed into place when the chunk is
complete. The driver joins a video's chunks, in order, into the final JSONL
(staged and renamed) and records it in the manifest. An actor that dies is
restarted by Ray and the chunk runs again (``max_task_retries``): what the
dead one wrote was never renamed, so it never reaches an output.

Outputs go to ``--out-dir``, which every node must see at the same path (a
shared filesystem: NFS, CephFS, a cloud bucket mounted with FUSE; a local
directory when the cluster is one machine).
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import cv2

from detectord.daemon.analyze import ended_early
from detectord.daemon.cli.progress import Progress
from detectord.daemon.config import AnalysisSettings, ArchiveConfig, ConfigError
from detectord.daemon.gating import Reason
from detectord.daemon.output_files import StagedFile
from detectord.daemon.results import FrameResult
from detectord.daemon.stages.output import jsonl_line
from detectord.daemon.stages.sources import SourceError, probe_video
from detectord.detection import MainPersonTracker, registry

from .inputs import Video
from .local import ArchiveSummary, Outcome, outputs_of, plan_inputs, record
from .manifest import DONE, FAILED, PARTIAL, Manifest

log = logging.getLogger(__name__)

INSTALL = "--ray needs Ray: pip install 'detectord[cluster]' (or pip install 'ray==2.60.0')"
TASK_RETRIES = 3
"""A chunk whose actor died runs again this many times (on a restarted actor, wherever Ray puts it)."""


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
    """Where the chunk's lines go once complete (under the output directory: every node sees it)."""


@dataclass(frozen=True)
class ChunkDone:
    chunk: Chunk
    frames: int
    seconds: float
    precision: str
    node: str


class ChunkAnalyzer:
    """A Ray actor: the model, loaded once, for every chunk Ray gives this worker."""

    def __init__(self, settings: AnalysisSettings) -> None:
        self.settings = settings
        self.detector = registry.load(settings.model, settings.frame.size)
        self.scores = registry.scores_of(settings.model.name)

    def run(self, chunk: Chunk) -> ChunkDone:
        started = time.monotonic()
        staged = Path(chunk.path + ".partial")
        capture = cv2.VideoCapture(chunk.video)
        tracker = MainPersonTracker(self.settings.main_person, self.scores)
        categories = tuple(self.detector.categories)
        written = 0
        try:
            if chunk.start:
                capture.set(cv2.CAP_PROP_POS_FRAMES, chunk.start)  # FFmpeg: from the keyframe before, decoded on
            with staged.open("w", encoding="utf-8") as out:
                frame_id = chunk.start
                while chunk.stop < 0 or frame_id < chunk.stop:
                    batch = self._read(capture, frame_id, chunk.stop)
                    if not batch:
                        break
                    for detections in self.detector(batch):
                        pts = frame_id / chunk.fps
                        main = tracker.update(detections, pts)
                        out.write(_line(frame_id, pts, detections, main, categories))
                        frame_id += 1
                        written += 1
        finally:
            capture.release()
        os.replace(staged, chunk.path)
        import ray

        node = ray.get_runtime_context().get_node_id()
        return ChunkDone(chunk, written, time.monotonic() - started, self.detector.info.precision, node)

    def _read(self, capture: cv2.VideoCapture, frame_id: int, stop: int) -> list[Any]:
        count = self.settings.batch if stop < 0 else min(self.settings.batch, stop - frame_id)
        size = self.settings.frame.size
        batch = []
        for _ in range(count):
            ok, image = capture.read()
            if not ok or image is None:
                break
            batch.append(cv2.resize(image, size, interpolation=cv2.INTER_AREA))
        return batch


def _line(frame_id: int, pts: float, detections: Any, main: Any, categories: tuple[str, ...]) -> str:
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
        raise ConfigError(f"--ray {address}: cannot reach the cluster: {str(exc).splitlines()[0]}") from None
    return ray


def chunks_of(config: ArchiveConfig, video: Video, index: int, frames: int, fps: float, size: int) -> list[Chunk]:
    """The tasks of one video: chunks of ``size`` frames (0: the whole video); the last runs to the end, so a
    video longer than its container says is still read whole."""
    out, _ = outputs_of(config, video)
    folder = out.with_name(f".{out.name}.chunks")
    folder.mkdir(parents=True, exist_ok=True)
    declared = frames
    if config.max_frames:
        frames = min(frames, config.max_frames) if frames else config.max_frames
    starts = list(range(0, frames, size)) if size and frames > size else [0]
    stops = [*starts[1:], frames if config.max_frames else -1]
    return [
        Chunk(str(video.path), index, start, stop, fps, declared, str(folder / f"{start:012d}.jsonl"))
        for start, stop in zip(starts, stops, strict=True)
    ]


def run_on_ray(
    config: ArchiveConfig,
    address: str,
    chunk_frames: int = 0,
    node_ip: str | None = None,
    progress: bool | None = None,
) -> ArchiveSummary:
    """Every video the inputs name that the manifest does not mark done, on the Ray cluster at ``address``; one
    progress bar over all their frames, moved as chunks complete."""
    if config.skip_still or config.annotated:
        raise ConfigError("--ray: --skip-still and --annotated-videos run on this machine only (drop --ray)")
    ray = connect(address, node_ip)
    started = time.monotonic()
    videos, summary, manifest = plan_inputs(config)
    tasks: list[Chunk] = []
    todo: dict[int, Video] = {}
    total = 0
    for index, video in enumerate(videos):
        try:
            info = probe_video(video.path)
        except SourceError as exc:
            record(manifest, config, video, Outcome(FAILED, reason=str(exc)), summary)
            continue
        todo[index] = video
        total += info.frames
        tasks += chunks_of(config, video, index, info.frames, info.fps, chunk_frames)
    if tasks:
        _run(ray, config, tasks, todo, summary, manifest, Progress(total, enabled=progress))
    summary.wall_s = time.monotonic() - started
    ray.shutdown()
    return summary


def _run(
    ray: Any,
    config: ArchiveConfig,
    tasks: list[Chunk],
    todo: dict[int, Video],
    summary: ArchiveSummary,
    manifest: Manifest,
    bar: Progress,
) -> None:
    from ray.util import ActorPool

    started, written = time.monotonic(), 0
    cpus = max(1, int(ray.cluster_resources().get("CPU", 1)))
    settings = replace(config, model=replace(config.model, threads=1))
    remote = ray.remote(num_cpus=1, max_restarts=-1, max_task_retries=TASK_RETRIES)(ChunkAnalyzer)
    actors = [remote.remote(settings) for _ in range(min(cpus, len(tasks)))]
    pool = ActorPool(actors)
    for task in tasks:
        pool.submit(lambda actor, chunk: actor.run.remote(chunk), task)
    waiting = {index: [t for t in tasks if t.index == index] for index in todo}
    done: dict[int, list[ChunkDone]] = {index: [] for index in todo}
    while pool.has_next():
        try:
            finished: ChunkDone = pool.get_next_unordered()
        except ray.exceptions.RayError as exc:
            log.error("a chunk failed on the cluster: %s", str(exc).splitlines()[0])
            continue
        index = finished.chunk.index
        done[index].append(finished)
        written += finished.frames
        elapsed = time.monotonic() - started
        bar.update(written, elapsed, written / elapsed if elapsed > 0 else 0.0)
        chunk = finished.chunk
        last = "the end" if chunk.stop < 0 else str(chunk.stop - 1)
        log.info("%s frames %d to %s: %d written on node %s", todo[index].name, chunk.start, last, finished.frames,
                 finished.node[:8])  # fmt: skip
        if len(done[index]) == len(waiting[index]):
            _join(config, todo[index], sorted(done[index], key=lambda d: d.chunk.start), summary, manifest)
    bar.close()
    for index, video in todo.items():
        if len(done[index]) < len(waiting[index]):
            record(manifest, config, video, Outcome(FAILED, reason="a chunk failed on the cluster"), summary)


def _join(
    config: ArchiveConfig, video: Video, chunks: list[ChunkDone], summary: ArchiveSummary, manifest: Manifest
) -> None:
    """A video's chunks, complete, joined in order into its JSONL (staged, renamed)."""
    out, _ = outputs_of(config, video)
    staged = StagedFile(out)
    written = 0
    declared = chunks[0].chunk.declared
    with staged.path.open("wb") as target:
        for chunk in chunks:
            with open(chunk.chunk.path, "rb") as source:
                shutil.copyfileobj(source, target)
            written += chunk.frames
    staged.commit()
    shutil.rmtree(Path(chunks[0].chunk.path).parent, ignore_errors=True)
    short = ended_early(written, declared) and not config.max_frames
    seconds = sum(chunk.seconds for chunk in chunks)
    status = PARTIAL if short else DONE
    record(manifest, config, video, Outcome(status, written, declared, seconds, precision=chunks[0].precision), summary)
