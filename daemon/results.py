"""The result record: what inference hands its downstream stage for every frame, in one place.

The record's layout in the result ring, its typed accessors, how inference
writes it and how the publisher and the writer read it back all live here,
so a new field touches this file alone (and the contract, if it goes on the
wire). A record also locates its frame in the frame ring (``frame_seq``,
``frame_slot``): inference hands that frame's pin to the downstream reader
with the record, so the frame the boxes belong to is the frame that gets
encoded.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from multiprocessing.context import BaseContext
from multiprocessing.synchronize import Semaphore
from typing import Self

import numpy as np

from detectord.contract import Detection
from detectord.daemon.gating import Reason
from detectord.detection import Detections, MainPerson, ModelInfo, label_name
from detectord.detection.regions import MAX_REGIONS, Region
from detectord.ipc import (
    Field,
    FrameRef,
    Ring,
    RingHandle,
    RingReader,
    RingWriter,
    SlotLayout,
    SlotRef,
    WriteSlot,
)

_SCALARS = {
    "camera": "<i4",
    "frame_id": "<i8",
    "frame_seq": "<i8",
    "frame_slot": "<i4",
    "native_seq": "<i8",
    "native_slot": "<i4",
    "capture_ts": "<f8",
    "pts": "<f8",
    "inference_start": "<f8",
    "inference_end": "<f8",
    "count": "<i4",
    "main_index": "<i4",
    "track_id": "<i8",
    "reason": "|i1",
    "region_count": "<i4",
}


def result_layout(max_detections: int) -> SlotLayout:
    """Detections of one frame, and which frame.

    Boxes are x1, y1, x2, y2 in pixels of the frame in the frame ring; only
    the first ``count`` rows are meaningful. Timestamps are epoch seconds.
    """
    n = max_detections
    arrays = (
        Field("boxes", "<f4", (n, 4)),
        Field("scores", "<f4", (n,)),
        Field("labels", "<i4", (n,)),
        Field("regions", "<i4", (MAX_REGIONS, 4)),
    )
    return SlotLayout("results", tuple(Field(name, dtype) for name, dtype in _SCALARS.items()) + arrays)


@dataclass(frozen=True)
class FrameResult:
    """One processed frame, copied out of the ring (so the slot can be released)."""

    camera: int
    """Index of the camera in the daemon's list (0 for a single camera)."""
    frame_id: int
    """The frame's index in its source."""
    frame_seq: int
    frame_slot: int
    """Where the frame lies in the frame ring (its pin was handed over with this record)."""
    native: tuple[int, int] | None
    """(slot, seq) of the camera's full frame in its full-frame ring, pinned and handed over too; None: the
    frame has none (full frames off, or rewritten before inference could pin it)."""
    pts: float
    """Position in the source, seconds."""
    capture_ts: float
    inference_start: float
    inference_end: float
    """Epoch seconds."""
    detections: Detections
    main_index: int
    """Index of the main person in ``detections``; -1: none."""
    track_id: int
    reason: Reason
    """Why the frame came: the model ran on it (motion, tracking, keep-alive, ungated) or did not (idle: the
    detections are the last run's on this camera)."""
    regions: tuple[Region, ...] | None = None
    """Where in the frame the model looked (``detection/regions.py``); None: the whole frame, or nowhere."""

    @property
    def main_person(self) -> MainPerson | None:
        if self.main_index < 0:
            return None
        box = self.detections.boxes[self.main_index]
        return MainPerson(
            index=self.main_index,
            box=(float(box[0]), float(box[1]), float(box[2]), float(box[3])),
            score=float(self.detections.scores[self.main_index]),
            track_id=self.track_id,
        )

    def contract_detections(self, categories: Sequence[str]) -> list[Detection]:
        dets = self.detections
        return [
            Detection(
                label=label_name(int(label), tuple(categories)),
                class_id=int(label),
                score=float(score),
                box=(float(box[0]), float(box[1]), float(box[2]), float(box[3])),
            )
            for box, score, label in zip(dets.boxes, dets.scores, dets.labels, strict=True)
        ]

    def contract_main_person(self) -> tuple[int, int] | None:
        """(index, track id) of the main person, as the contract names it."""
        return None if self.main_index < 0 else (self.main_index, self.track_id)


class ResultRing(Ring[SlotRef]):
    """Fixed-size records of processed frames, in frame order."""

    purpose = "results"
    ref_class = SlotRef

    @classmethod
    def create(
        cls,
        instance: str,
        *,
        worker: int,
        max_detections: int,
        slots: int,
        doorbell: Semaphore,
        ctx: BaseContext | None = None,
    ) -> Self:
        """Inference worker ``worker``'s results: lossless, one reader, since every record pins a frame.

        ``doorbell`` wakes the reader; it may be shared with other result rings (``ipc.wait_any``).
        """
        return cls._create(
            instance,
            result_layout(max_detections),
            slots=slots,
            readers=1,
            mode="lossless",
            ctx=ctx,
            doorbells=(doorbell,),
            purpose="results" if worker == 0 else f"results{worker}",
        )

    @classmethod
    def attach(cls, handle: RingHandle, *, max_detections: int) -> Self:
        return cls._attach(handle, result_layout(max_detections))

    @property
    def max_detections(self) -> int:
        return int(self.layout.dtype["scores"].shape[0])


def write_result(
    writer: RingWriter,
    slot: WriteSlot,
    camera: int,
    frame: FrameRef,
    handover: tuple[RingReader[FrameRef], int],
    detections: Detections,
    main: MainPerson | None,
    inference: tuple[float, float],
    reason: Reason,
    native: FrameRef | None = None,
    regions: Sequence[Region] | None = None,
) -> int:
    """Fill a claimed slot with ``frame``'s detections, hand the frame's pin over, publish; returns the sequence.

    ``handover`` is the frame ring's reader holding ``frame`` and the reader
    index to give it to: the pin changes hands before the record becomes
    visible, so the downstream stage always finds the frame intact.
    Detections come best first, so keeping the first ``capacity`` keeps the
    best. ``inference`` is (start, end), epoch seconds; ``reason`` why the frame came (``gating.Reason``);
    ``native`` the frame's full frame, whose pin the caller handed over already; ``regions`` where the model
    looked (None: the whole frame).
    """
    capacity = slot["scores"].shape[0]
    count = min(len(detections), capacity)
    slot["boxes"][:count] = detections.boxes[:count]
    slot["scores"][:count] = detections.scores[:count]
    slot["labels"][:count] = detections.labels[:count]
    main_index = main.index if main is not None and main.index < count else -1
    if regions is not None:
        slot["regions"][: len(regions)] = regions
    fields = {
        "camera": camera,
        "frame_id": frame.frame_id,
        "frame_seq": frame.seq,
        "frame_slot": frame.index,
        "native_seq": native.seq if native is not None else -1,
        "native_slot": native.index if native is not None else -1,
        "capture_ts": frame.capture_ts,
        "pts": frame.pts,
        "inference_start": inference[0],
        "inference_end": inference[1],
        "count": count,
        "main_index": main_index,
        "track_id": main.track_id if main_index >= 0 and main is not None else -1,
        "reason": int(reason),
        "region_count": -1 if regions is None else len(regions),
    }
    reader, downstream = handover
    reader.hand_over([frame], to=downstream)
    return writer.publish(slot, **fields)


def read_result(ref: SlotRef) -> FrameResult:
    count = ref["count"]
    return FrameResult(
        camera=ref["camera"],
        frame_id=ref["frame_id"],
        frame_seq=ref["frame_seq"],
        frame_slot=ref["frame_slot"],
        native=(ref["native_slot"], ref["native_seq"]) if ref["native_slot"] >= 0 else None,
        pts=ref["pts"],
        capture_ts=ref["capture_ts"],
        inference_start=ref["inference_start"],
        inference_end=ref["inference_end"],
        detections=Detections(
            boxes=np.array(ref["boxes"][:count]),
            scores=np.array(ref["scores"][:count]),
            labels=np.array(ref["labels"][:count]),
        ),
        main_index=ref["main_index"],
        track_id=ref["track_id"],
        reason=Reason(int(ref["reason"])),
        regions=_regions(ref),
    )


def _regions(ref: SlotRef) -> tuple[Region, ...] | None:
    count = int(ref["region_count"])
    if count < 0:
        return None
    return tuple((int(x1), int(y1), int(x2), int(y2)) for x1, y1, x2, y2 in ref["regions"][:count])


@dataclass(frozen=True)
class LoadedModel:
    """What the inference stage announces once its detector is loaded: the readers label with it."""

    info: ModelInfo
    """What the payload's ``model`` field names."""
    categories: tuple[str, ...]
    """Label names by class id."""
