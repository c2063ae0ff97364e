"""Drawing detections on a frame, for the annotated video."""

from __future__ import annotations

import cv2
import numpy as np

from detectord.daemon.results import FrameResult
from detectord.detection import label_name

MAIN_COLOR = (0, 220, 0)  # BGR
OTHER_COLOR = (200, 160, 40)


def _label(image: np.ndarray, text: str, x: int, y: int, color: tuple[int, int, int]) -> None:
    (w, h), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.4, 1)
    y = max(y, h + base)
    cv2.rectangle(image, (x, y - h - base), (x + w, y), color, cv2.FILLED)
    cv2.putText(image, text, (x, y - base), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1, cv2.LINE_AA)


def annotate(frame: np.ndarray, result: FrameResult, categories: tuple[str, ...]) -> np.ndarray:
    """A copy of ``frame`` (BGR) with every detection boxed and the main person highlighted."""
    image = frame.copy()
    dets = result.detections
    for i in range(len(dets)):
        if i == result.main_index:
            continue
        x1, y1, x2, y2 = (round(v) for v in dets.boxes[i])
        cv2.rectangle(image, (x1, y1), (x2, y2), OTHER_COLOR, 1)
        _label(image, f"{label_name(int(dets.labels[i]), categories)} {dets.scores[i]:.2f}", x1, y1, OTHER_COLOR)
    main = result.main_person
    if main is not None:
        x1, y1, x2, y2 = (round(v) for v in main.box)
        cv2.rectangle(image, (x1, y1), (x2, y2), MAIN_COLOR, 2)
        _label(image, f"main #{main.track_id} {main.score:.2f}", x1, y1, MAIN_COLOR)
    return image
