"""The camera's full frame beside the small one the model sees: sharp snapshots and, on request, live frames.

The capture stage keeps every frame twice: resized to the detection size in
the camera's frame ring (what inference and motion work on), and at the
camera's own resolution (at most ``publish.native_max``) in a second ring,
``NativeRing``, in latest mode with few slots. The small frame's slot names
its full frame (``native_slot``, ``native_seq``, ``daemon/frame_record.py``);
inference pins that full frame as soon as it takes the small one
(``RingReader.pin``) and hands both pins to the publisher with the result,
so the picture published is exactly the frame the boxes were computed on.
A full frame rewritten before inference could pin it (every slot taken) is
simply absent: the publisher then uses the small frame, never another one.

Slots are sized for the largest frame allowed; a frame fills the start of
its slot, contiguous (``pixels_of``), so a 1280x720 camera touches, and the
kernel backs, only 2.8 MB of a 6.2 MB slot.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from detectord.ipc import Field, FrameRef, FrameRing, RingWriter

NATIVE_FIELDS = (Field("width", "<i4"), Field("height", "<i4"))
"""What a full-frame slot holds beside its pixels: the frame's own size."""


class NativeRing(FrameRing):
    """One camera's full-resolution frames (``detectord-<camera>-native``)."""

    purpose = "native"


def slots_for(workers: int) -> int:
    """Slots a camera's full-frame ring needs so that a frame inference takes is still there to pin: the one
    capture writes, the newest, one pinned by each inference worker, two with the publisher."""
    return workers + 4


def fit(size: tuple[int, int], box: tuple[int, int]) -> tuple[int, int]:
    """``size`` (width, height) scaled down, aspect kept, to fit in ``box``; never up."""
    width, height = size
    scale = min(1.0, box[0] / width, box[1] / height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def pixels_of(frame: FrameRef) -> np.ndarray:
    """The full frame in its slot: uint8[height, width, 3], a contiguous read-only view."""
    width, height = int(frame["width"]), int(frame["height"])
    return frame.pixels.reshape(-1)[: width * height * 3].reshape(height, width, 3)


def put(writer: RingWriter, image: np.ndarray, frame_id: int, captured: float, pts: float) -> dict[str, int]:
    """Write ``image`` (BGR, the camera's frame) into the full-frame ring, scaled to fit its slots; returns the
    small frame's fields naming it (``native_slot`` -1: every slot was pinned, the frame has none)."""
    slot = writer.claim()
    if slot is None:
        return {"native_slot": -1, "native_seq": -1}
    room = slot["pixels"]
    height, width = image.shape[:2]
    width, height = fit((width, height), (room.shape[1], room.shape[0]))
    view = room.reshape(-1)[: width * height * 3].reshape(height, width, 3)
    if view.shape == image.shape:
        np.copyto(view, image)
    else:
        cv2.resize(image, (width, height), dst=view, interpolation=cv2.INTER_AREA)
    seq = writer.publish(slot, frame_id=frame_id, capture_ts=captured, pts=pts, width=width, height=height)
    return {"native_slot": slot.index, "native_seq": seq}


def live_picture(small: np.ndarray, native: np.ndarray | None, box: tuple[int, int] | None) -> np.ndarray:
    """What goes out as the live frame: the small frame (``box`` None, or no full frame), the full frame (``box``
    (0, 0)), or the full frame scaled to fit ``box``."""
    if box is None or native is None:
        return small
    if box == (0, 0):
        return native
    size = fit((native.shape[1], native.shape[0]), box)
    if size == (native.shape[1], native.shape[0]):
        return native
    resized: Any = cv2.resize(native, size, interpolation=cv2.INTER_AREA)
    return np.asarray(resized)
