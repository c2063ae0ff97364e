"""Detection records between inference and its readers: into a ResultRing slot and back out.

The slot layout is defined once in ``detectord.ipc.layout``; this module is the
only place that knows what inference puts in it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from detectord.detection import Detections, MainPerson, label_name
from detectord.ipc import SlotRef, WriteSlot


@dataclass(frozen=True)
class FrameResult:
    """One processed frame, copied out of the ring (so the slot can be released)."""

    frame_id: int
    frame_seq: int
    frame_slot: int
    pts: float
    capture_ts: float
    inference_start: float
    inference_end: float
    detections: Detections
    main_index: int
    track_id: int

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


def write_result(slot: WriteSlot, detections: Detections, main: MainPerson | None, capacity: int) -> dict[str, Any]:
    """Fill a claimed result slot's arrays; returns the scalar fields for ``publish``.

    Detections come best first, so keeping the first ``capacity`` keeps the best.
    """
    count = min(len(detections), capacity)
    slot["boxes"][:count] = detections.boxes[:count]
    slot["scores"][:count] = detections.scores[:count]
    slot["labels"][:count] = detections.labels[:count]
    main_index = main.index if main is not None and main.index < count else -1
    return {
        "count": count,
        "main_index": main_index,
        "track_id": main.track_id if main_index >= 0 and main is not None else -1,
    }


def read_result(ref: SlotRef) -> FrameResult:
    count = ref["count"]
    return FrameResult(
        frame_id=ref["frame_id"],
        frame_seq=ref["frame_seq"],
        frame_slot=ref["frame_slot"],
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
    )


def _box(box: Any) -> list[float]:
    return [round(float(v), 2) for v in box]


def detections_json(detections: Detections, categories: tuple[str, ...]) -> list[dict[str, Any]]:
    return [
        {
            "label": label_name(int(label), categories),
            "class_id": int(label),
            "score": round(float(score), 4),
            "box": _box(box),
        }
        for box, score, label in zip(detections.boxes, detections.scores, detections.labels, strict=True)
    ]


def main_person_json(main: MainPerson | None) -> dict[str, Any] | None:
    if main is None:
        return None
    return {"box": _box(main.box), "score": round(main.score, 4), "track_id": main.track_id}


def jsonl_record(result: FrameResult, categories: tuple[str, ...]) -> dict[str, Any]:
    """One line of ``detectord analyze`` output; boxes in pixels of the analysed frame."""
    return {
        "frame": result.frame_id,
        "time_s": round(result.pts, 4),
        "main_person": main_person_json(result.main_person),
        "detections": detections_json(result.detections, categories),
    }


def detections_message(
    result: FrameResult,
    camera: str,
    size: tuple[int, int],
    model: dict[str, str],
    published: float,
    categories: tuple[str, ...],
) -> dict[str, Any]:
    """The ``<prefix>/<camera>/detections`` payload of the MQTT contract (DESIGN.md), version 1."""
    return {
        "v": 1,
        "camera": camera,
        "frame_id": result.frame_id,
        "size": list(size),
        "ts": {
            "capture": result.capture_ts,
            "inference_start": result.inference_start,
            "inference_end": result.inference_end,
            "publish": published,
        },
        "model": model,
        "detections": detections_json(result.detections, categories),
        "main_person": main_person_json(result.main_person),
    }
