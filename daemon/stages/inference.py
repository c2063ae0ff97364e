"""The inference stage: frames from every camera's frame ring, detections to this worker's result ring.

Live, each round takes the newest unprocessed frame of each camera that has
one (up to ``batch`` cameras, starting one camera further each round so
that none is favoured) and runs them through the model as one batch.
Workers compete for frames: a frame goes to one worker only. Offline
(``analyze``, one camera), rounds are ``batch`` consecutive frames.

Each frame's pin is handed to the downstream reader (publisher or writer)
before its result is published (``results.write_result``), so the frame the
boxes were computed on is the frame that gets encoded. Once its detector is
loaded the stage announces it (``LoadedModel``): the readers label and
describe the detections with what actually produced them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from threading import Event

from detectord.daemon.config import DetectConfig, ModelConfig
from detectord.daemon.frame_record import native_of, read_motion
from detectord.daemon.gating import Gate, Reason
from detectord.daemon.pipeline.ringset import WAIT_STEP_S, RingHandles, claim
from detectord.daemon.pipeline.telemetry import StageMeter
from detectord.daemon.results import LoadedModel, write_result
from detectord.detection import (
    PERSON,
    Detections,
    FrameDetector,
    MainPerson,
    MainPersonConfig,
    MainPersonTracker,
    regions,
    registry,
)
from detectord.ipc import EndOfStream, FrameRef, FrameRing, RingMode, RingReader, RingWriter, wait_any

log = logging.getLogger(__name__)

DetectorFactory = Callable[[ModelConfig, tuple[int, int]], FrameDetector]


def load_configured_detector(config: ModelConfig, frame_size: tuple[int, int]) -> FrameDetector:
    """The detector a configuration names; the only factory the command line uses.

    Its backend's heavy imports (torch for the torchvision detectors) happen here, in the inference process,
    and nowhere else.
    """
    return registry.load(config, frame_size)


class _Freshness:
    """Live sources: start the model on a frame as young as waiting a little can make it.

    When the model frees up, the newest frame is on average half a frame
    interval old. If it is older than that, the next frame is due sooner than
    the current one's age: waiting for it costs less idle time than it saves
    latency, and the detections describe a fresher scene. The interval is
    estimated from the frames themselves (ids and capture times).
    """

    def __init__(self) -> None:
        self.interval_s = 0.0
        self._last: tuple[int, float] | None = None

    def fresher(self, reader: RingReader[FrameRef], ref: FrameRef) -> list[FrameRef]:
        frame_id, captured = ref.frame_id, ref.capture_ts
        if self._last is not None and frame_id > self._last[0]:
            interval = (captured - self._last[1]) / (frame_id - self._last[0])
            self.interval_s = interval if not self.interval_s else 0.8 * self.interval_s + 0.2 * interval
        self._last = (frame_id, captured)
        if not self.interval_s or time.time() - captured <= self.interval_s / 2:
            return [ref]
        try:
            newer = reader.read(1, timeout=1.5 * self.interval_s)
        except EndOfStream:  # the source ended while we waited: the frame in hand is the last one
            return [ref]
        if not newer:
            return [ref]
        ref.release()
        self._last = (newer[0].frame_id, newer[0].capture_ts)
        return newer


@dataclass
class _Camera:
    index: int
    name: str
    ring: FrameRing
    reader: RingReader[FrameRef]
    size: tuple[int, int]
    """(width, height) of its frames: cameras may differ."""
    tracker: MainPersonTracker
    gate: Gate
    native: tuple[FrameRing, RingReader[FrameRef]] | None = None
    """The camera's full-frame ring and this worker's reader of it, when full frames are kept."""
    freshness: _Freshness = field(default_factory=_Freshness)
    ended: bool = False
    last: tuple[Detections, MainPerson | None] | None = None
    """The last model run's detections and main person, which a frame the model skips goes out with."""
    looked: int = 0
    moved: int = 0
    ran: int = 0
    area: float = 0.0
    """Newest frames looked at, those with motion, those the model ran on, and the frames' worth of pixels the
    model looked at (the stats' gating)."""


Taken = tuple[_Camera, FrameRef, Reason]
"""A frame of a round and why it goes downstream (``Reason.IDLE``: without a model call)."""


class _Worker:
    """One inference process: its detector, its cameras, its result ring."""

    def __init__(
        self,
        worker: int,
        rings: RingHandles,
        settings: InferenceSettings,
        detector: FrameDetector,
        meter: StageMeter,
    ) -> None:
        self.worker = worker
        self.rings = rings
        self.batch = settings.batch
        self.skip_still = settings.skip_still
        self.detector = detector
        self.meter = meter
        self.cameras: list[_Camera] = []
        scores = registry.scores_of(settings.model.name)
        threshold = scores.threshold(settings.person_threshold, scores.events)
        self.person_threshold = threshold
        self.crops = getattr(detector, "detect_crops", None) if settings.detect.regions else None
        """The detector's ``detect_crops`` where regions are on and it has one: gated frames are then looked at
        where they moved (``detection/regions.py``)."""
        for index, camera in enumerate(rings.cameras):
            ring = camera.attach()
            tracker = MainPersonTracker(settings.main_person[index], scores)
            gate = Gate(settings.detect, threshold, settings.confirm_runs or scores.event_frames)
            full = camera.attach_native()
            native = (full, full.reader(worker)) if full is not None else None
            self.cameras.append(
                _Camera(index, camera.name, ring, ring.reader(worker), camera.frame_size, tracker, gate, native)
            )
        self.result_ring = rings.attach_results(worker)
        self.writer: RingWriter = self.result_ring.writer()
        self.lossless = self.cameras[0].ring.mode is RingMode.LOSSLESS
        self._next = 0
        self.natives: dict[int, FrameRef] = {}
        """Full frames pinned, by ``id`` of the small frame taken."""

    def take(self) -> list[Taken] | None:
        """The frames of one round; [] when none is ready within a wait step, None once every stream ended."""
        if self.lossless:
            camera = self.cameras[0]
            try:
                refs = camera.reader.read(self.batch, timeout=WAIT_STEP_S, fill=True)
            except EndOfStream:
                return None
            return [(camera, ref, self._offline_reason(camera, ref)) for ref in refs]
        taken = self._poll()
        if not taken:
            live = [camera.reader for camera in self.cameras if not camera.ended]
            if not live:
                return None
            wait_any(live, self.rings.inference_wake[self.worker], WAIT_STEP_S)
            taken = self._poll()
        if len(self.cameras) == 1 and len(taken) == 1 and taken[0][2].model_ran:
            camera, ref, reason = taken[0]
            taken = [(camera, fresher, reason) for fresher in camera.freshness.fresher(camera.reader, ref)]
        for camera, ref, _ in taken:
            self._pin_native(camera, ref)
        return taken

    def _pin_native(self, camera: _Camera, ref: FrameRef) -> None:
        """Pin the full frame of a small frame just taken, while it is still in its ring (a frame interval or
        so): the publisher renders the very same frame at full size."""
        named = native_of(ref)
        if camera.native is None or named is None:
            return
        pinned = camera.native[1].pin(*named)
        if pinned is not None:
            self.natives[id(ref)] = pinned

    def _offline_reason(self, camera: _Camera, ref: FrameRef) -> Reason:
        """``analyze --skip-still``: a frame where nothing moved reuses the last run's detections."""
        motion = read_motion(ref)
        if not motion.computed:
            return Reason.UNGATED
        return Reason.MOTION if motion.moved or camera.last is None else Reason.IDLE

    def _poll(self) -> list[Taken]:
        """The newest unprocessed frame of each camera, the first camera turning each round: those the model
        must see (up to ``batch`` cameras), and the idle ones due downstream; other idle frames are let go."""
        count = len(self.cameras)
        order = [self.cameras[(self._next + i) % count] for i in range(count)]
        self._next = (self._next + 1) % count
        taken: list[Taken] = []
        for camera in order:
            if camera.ended or sum(reason.model_ran for _, _, reason in taken) >= self.batch:
                continue
            try:
                refs = camera.reader.read(1, timeout=0)
            except EndOfStream:
                camera.ended = True
                continue
            for ref in refs:
                motion = read_motion(ref)
                camera.looked += 1
                camera.moved += motion.moved
                reason = camera.gate.reason(motion, ref.capture_ts)
                if reason.model_ran or (camera.last is not None and camera.gate.idle_frame_due(ref.capture_ts)):
                    taken.append((camera, ref, reason))
                else:
                    camera.reader.release([ref])
        return taken

    def run(self, stop: Event, taken: list[Taken]) -> None:
        """Detect on the frames that need the model (whole frames one call per frame size, regions one call
        per frame), then hand every frame on with its result, in order; a frame the model skips goes with the
        last run's detections."""
        started, clock = time.time(), time.perf_counter()
        found: dict[int, tuple[Detections, list[regions.Region] | None]] = {}
        to_model = [(camera, ref) for camera, ref, reason in taken if reason.model_ran]
        whole = []
        for camera, ref, reason in taken:
            if not reason.model_ran:
                continue
            in_regions = self._in_regions(camera, ref, reason)
            if in_regions is None:
                whole.append((camera, ref))
            else:
                found[id(ref)] = in_regions
        for size, group in _by_size(whole).items():
            set_size = getattr(self.detector, "set_frame_size", None)
            if set_size is not None:
                set_size(size)
            for (_, ref), detections in zip(group, self.detector([ref.pixels for _, ref in group]), strict=True):
                found[id(ref)] = (detections, None)
        finished, busy = time.time(), time.perf_counter() - clock
        for camera, ref, reason in taken:
            now = ref.pts if self.lossless else ref.capture_ts
            looked: list[regions.Region] | None = None
            if reason.model_ran:
                detections, looked = found[id(ref)]
                camera.last = (detections, camera.tracker.update(detections, now))
                camera.gate.ran(now, detections, read_motion(ref).seq)
                camera.ran += 1
                camera.area += _share(looked, camera.size)
                timing = (started, finished)
            else:
                camera.gate.sent(now)
                timing = (ref.capture_ts, ref.capture_ts)
            assert camera.last is not None
            slot = claim(self.writer, stop, self.lossless)
            full = self.natives.pop(id(ref), None)
            if slot is None:
                camera.reader.release([ref])
                if full is not None:
                    full.release()
                continue
            if full is not None and camera.native is not None:
                camera.native[1].hand_over([full], to=self.rings.downstream)
            handover = (camera.reader, self.rings.downstream)
            write_result(self.writer, slot, camera.index, ref, handover, *camera.last, timing, reason, full, looked)
        ran = [camera.name for camera, _ in to_model]
        self.meter.add(len(ran), busy, ran)
        self.meter.gating = {c.name: (c.looked, c.moved, c.ran, c.area) for c in self.cameras}

    def _in_regions(
        self, camera: _Camera, ref: FrameRef, reason: Reason
    ) -> tuple[Detections, list[regions.Region]] | None:
        """A gated frame looked at where it moved (``MOTION``) or around the people the last run found
        (``TRACKING``): its detections and the regions; None: look at the whole frame (a keep-alive, no motion
        in this very frame, too much, offline, or a detector that cannot look at parts)."""
        if self.crops is None or camera.last is None or self.lossless:  # offline: the full run's boxes, reused
            return None
        last = camera.last[0]
        if reason is Reason.MOTION:
            moved = read_motion(ref).boxes
        elif reason is Reason.TRACKING:
            moved = last.boxes[(last.labels == PERSON) & (last.scores >= self.person_threshold)]
        else:
            return None
        planned = regions.plan(camera.size, moved, last.boxes)
        if planned is None:
            return None
        crops = [ref.pixels[y1:y2, x1:x2] for x1, y1, x2, y2 in planned]
        return regions.combine(self.crops(crops, camera.size), planned, last), planned

    def release(self, taken: list[Taken]) -> None:
        for camera, ref, _ in taken:
            camera.reader.release([ref])
        for full in self.natives.values():
            full.release()
        self.natives.clear()

    def close(self) -> None:
        self.result_ring.close()
        for camera in self.cameras:
            camera.ring.close()
            if camera.native is not None:
                camera.native[0].close()


def _share(looked: list[regions.Region] | None, size: tuple[int, int]) -> float:
    """The share of a frame of ``size`` the model looked at: its regions', or all of it."""
    if looked is None:
        return 1.0
    return regions.covered(looked) / (size[0] * size[1])


def _by_size(taken: list[tuple[_Camera, FrameRef]]) -> dict[tuple[int, int], list[tuple[_Camera, FrameRef]]]:
    groups: dict[tuple[int, int], list[tuple[_Camera, FrameRef]]] = {}
    for camera, ref in taken:
        groups.setdefault(camera.size, []).append((camera, ref))
    return groups


@dataclass(frozen=True)
class InferenceSettings:
    """What an inference process needs of the configuration, beside its rings."""

    model: ModelConfig
    main_person: tuple[MainPersonConfig, ...]
    """Per camera, in ring order."""
    batch: int
    detect: DetectConfig = field(default_factory=DetectConfig)
    person_threshold: float | None = None
    """``events.score_threshold``: a person this confident is re-checked while still (None: the detector's)."""
    confirm_runs: int | None = None
    """``events.min_frames``: a person just found is looked at in this many runs in a row, still or not, so that
    their event starts at once (None: the detector family's, ``Scores.event_frames``)."""
    skip_still: bool = False
    """Offline: a frame without motion reuses the last run's detections (``analyze --skip-still``)."""


def run_inference(
    stop: Event,
    reports: Connection,
    rings: RingHandles,
    worker: int,
    settings: InferenceSettings,
    detector_factory: DetectorFactory = load_configured_detector,
    stage_name: str = "inference",
) -> None:
    """Worker ``worker``: rounds of frames through one model until every stream ends or ``stop``."""
    meter = StageMeter(stage_name, reports)
    stage: _Worker | None = None
    taken: list[Taken] = []
    try:
        detector = detector_factory(settings.model, rings.cameras[0].frame_size)
        stage = _Worker(worker, rings, settings, detector, meter)
        meter.ready(LoadedModel(detector.info, tuple(detector.categories)))
        while not stop.is_set():
            round_ = stage.take()
            if round_ is None:
                break
            taken = round_
            if not taken:
                meter.tick()
                continue
            stage.run(stop, taken)
            taken = []
        stage.writer.finish()
    finally:
        if stage is not None:
            stage.release(taken)
            stage.close()
        meter.close()
