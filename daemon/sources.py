"""Where frames come from. Offline: a video file, every frame, as fast as it decodes."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from .process import StageError

log = logging.getLogger(__name__)


class SourceError(StageError):
    """A source cannot be opened or read."""


@dataclass(frozen=True)
class VideoInfo:
    path: Path
    frames: int
    """Frame count the container states (0 when unknown; may be approximate)."""
    fps: float
    width: int
    height: int


def _open(path: Path) -> cv2.VideoCapture:
    if not path.exists():
        raise SourceError(f"no such file: {path}")
    if not path.is_file():
        raise SourceError(f"not a file: {path}")
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        capture.release()
        raise SourceError(f"cannot open {path}: not a video OpenCV can read")
    return capture


def probe_video(path: Path) -> VideoInfo:
    """Open the video and decode its first frame, so that a bad file fails before any process starts."""
    capture = _open(path)
    try:
        ok, frame = capture.read()
        if not ok or frame is None:
            raise SourceError(f"cannot decode {path}: no readable frame (corrupt or not a video?)")
        fps = capture.get(cv2.CAP_PROP_FPS)
        return VideoInfo(
            path=path,
            frames=max(0, int(capture.get(cv2.CAP_PROP_FRAME_COUNT))),
            fps=fps if fps and np.isfinite(fps) and fps > 0 else 25.0,
            width=frame.shape[1],
            height=frame.shape[0],
        )
    finally:
        capture.release()


class VideoFile:
    """Every frame of a file (or its first ``limit``), in order; ``read`` returns None at the end."""

    def __init__(self, info: VideoInfo, limit: int | None = None) -> None:
        self.info = info
        self.limit = limit
        self._capture = _open(info.path)
        self.frames_read = 0

    def read(self) -> np.ndarray | None:
        if self.limit is not None and self.frames_read >= self.limit:
            return None
        ok, frame = self._capture.read()
        if not ok or frame is None:
            if self.info.frames and self.frames_read < self.info.frames:
                log.warning(
                    "%s: decoding stopped after %d of %d frames (truncated or corrupt video?)",
                    self.info.path,
                    self.frames_read,
                    self.info.frames,
                )
            return None
        self.frames_read += 1
        return frame

    def sample(self, count: int, size: tuple[int, int]) -> list[np.ndarray]:
        """``count`` frames spread evenly over the video, resized as capture resizes them."""
        total = self.info.frames or count
        wanted = set(np.linspace(0, max(total - 1, 0), num=min(count, total)).round().astype(int).tolist())
        frames = []
        for index in range(total):
            if index in wanted:
                image = self.read()
                if image is None:
                    break
                frames.append(cv2.resize(image, size, interpolation=cv2.INTER_AREA))
            elif not self._capture.grab():
                break
            else:
                self.frames_read += 1
        return frames

    def pts(self, frame_id: int) -> float:
        """Position of a frame in the video, seconds (frame index over the stated rate)."""
        return frame_id / self.info.fps

    def close(self) -> None:
        self._capture.release()
