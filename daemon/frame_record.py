"""What capture adds to each frame in its ring slot: the motion it found there.

The frame ring's slot holds the pixels and their provenance (``ipc``); the
pipeline adds these fields (``FRAME_FIELDS``, passed to ``FrameRing.create``
and ``attach``), so that inference, which decides whether the model runs on
a frame, and the publisher see each frame's motion without a copy.
``motion_count`` is the number of motion boxes, -1 when motion is not
computed for the camera (every frame goes to the model); ``motion_seq`` the
number of the camera's frames with motion up to this one, so that a reader
of the newest frames (live inference) knows whether something moved in the
frames the ring dropped or it let go: a person who steps in and stands
still moves in one or two frames only. ``native_slot`` and ``native_seq``
name the camera's full frame for this frame in its full-frame ring
(``daemon/native.py``; -1: none).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from detectord.detection.motion import MAX_BOXES, Motion
from detectord.ipc import Field, FrameRef, WriteSlot

NOT_COMPUTED = -1

FRAME_FIELDS = (
    Field("native_slot", "<i4"),
    Field("native_seq", "<i8"),
    Field("motion_count", "<i4"),
    Field("motion_seq", "<i8"),
    Field("recalibrated", "|u1"),
    Field("motion_boxes", "<f4", (MAX_BOXES, 4)),
)


def motion_fields(slot: WriteSlot, motion: Motion | None, seq: int = 0) -> dict[str, int]:
    """Write ``motion``'s boxes into a claimed frame slot; returns the scalar fields for ``publish``.
    ``None``: motion is not computed for this camera; ``seq``: the camera's frames with motion so far."""
    if motion is None:
        return {"motion_count": NOT_COMPUTED, "motion_seq": 0, "recalibrated": 0}
    count = min(len(motion.boxes), MAX_BOXES)
    slot["motion_boxes"][:count] = motion.boxes[:count]
    return {"motion_count": count, "motion_seq": seq, "recalibrated": int(motion.recalibrated)}


@dataclass(frozen=True)
class FrameMotion:
    """A frame's motion as inference reads it from the slot."""

    computed: bool
    boxes: np.ndarray
    """float32[N, 4], pixels of the frame (a copy)."""
    seq: int = 0
    """The camera's frames with motion up to this one."""

    @property
    def moved(self) -> bool:
        return len(self.boxes) > 0


NO_NATIVE = {"native_slot": -1, "native_seq": -1}


def native_of(frame: FrameRef) -> tuple[int, int] | None:
    """(slot, seq) of ``frame``'s full frame in the camera's full-frame ring, or None."""
    slot = int(frame["native_slot"])
    return (slot, int(frame["native_seq"])) if slot >= 0 else None


def read_motion(frame: FrameRef) -> FrameMotion:
    count = int(frame["motion_count"])
    if count == NOT_COMPUTED:
        return FrameMotion(False, np.zeros((0, 4), np.float32))
    return FrameMotion(True, np.array(frame["motion_boxes"][:count]), int(frame["motion_seq"]))
