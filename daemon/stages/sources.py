"""Where frames come from.

Offline (``VideoFile``): every frame of a file, as fast as it decodes.
Live (``LiveSource``): a camera, a stream or a paced file, which may fail and
be reopened.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from detectord.daemon.pipeline.stage import StageError

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


def sample_video(video: VideoInfo, count: int, size: tuple[int, int]) -> list[np.ndarray]:
    """``count`` frames spread evenly over ``video`` (``VideoFile.sample``), the file opened and closed here."""
    source = VideoFile(video)
    try:
        return source.sample(count, size)
    finally:
        source.close()


class LiveSource:
    """A camera, a stream, or a file played at its own rate; ``read`` returns None when it fails.

    ``uri`` is a V4L2 device path, a camera index, an rtsp:// or http(s)://
    URL, or a video file. Files are paced at their frame rate, so they behave
    like a camera; with ``loop`` they start again at the end, otherwise
    ``ended`` turns true. Network streams get FFmpeg open and read timeouts,
    so a dead stream fails a read instead of hanging it.
    """

    OPEN_TIMEOUT_MS = 5000
    READ_TIMEOUT_MS = 5000

    def __init__(self, uri: str, loop: bool = False) -> None:
        self.uri = uri
        self.loop = loop
        self.ended = False
        self._capture: cv2.VideoCapture | None = None
        self._fps = 0.0
        self._started = 0.0
        self._played = 0

    @property
    def kind(self) -> str:
        if self.uri.isdigit():
            return "index"
        if "://" in self.uri:
            return "url"
        if self.uri.startswith("/dev/"):
            return "device"
        return "file"

    def check(self) -> None:
        """Fail now, with the reason, for a source that cannot be right: a missing file or device node."""
        if self.kind in ("file", "device") and not Path(self.uri).exists():
            raise SourceError(f"no such {'device' if self.kind == 'device' else 'file'}: {self.uri}")
        if self.kind == "file" and not Path(self.uri).is_file():
            raise SourceError(f"not a file: {self.uri}")

    def open(self) -> None:
        self.close()
        kind = self.kind
        if kind == "index":
            capture = cv2.VideoCapture(int(self.uri))
        elif kind == "device":
            capture = cv2.VideoCapture(self.uri, cv2.CAP_V4L2)
        elif kind == "url":
            capture = cv2.VideoCapture(
                self.uri,
                cv2.CAP_FFMPEG,
                [
                    cv2.CAP_PROP_OPEN_TIMEOUT_MSEC,
                    self.OPEN_TIMEOUT_MS,
                    cv2.CAP_PROP_READ_TIMEOUT_MSEC,
                    self.READ_TIMEOUT_MS,
                ],
            )
        else:
            capture = cv2.VideoCapture(self.uri)
        if not capture.isOpened():
            capture.release()
            raise SourceError(f"cannot open {self.uri}")
        fps = capture.get(cv2.CAP_PROP_FPS)
        self._fps = fps if kind == "file" and fps and np.isfinite(fps) and fps > 0 else 0.0
        self._capture = capture
        self._started = time.monotonic()
        self._played = 0

    @property
    def fps(self) -> float:
        """The file's own rate (what it is paced at); 0 for cameras and streams."""
        return self._fps

    @property
    def is_open(self) -> bool:
        return self._capture is not None

    def read(self) -> np.ndarray | None:
        """The next frame; None if the source failed (or, for a file without loop, ended)."""
        if self._capture is None:
            return None
        if self._fps:
            delay = self._started + self._played / self._fps - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        ok, frame = self._capture.read()
        if (not ok or frame is None) and self.kind == "file":
            if not self.loop:
                self.ended = True
                return None
            self._capture.set(cv2.CAP_PROP_POS_FRAMES, 0)
            ok, frame = self._capture.read()
        if not ok or frame is None:
            return None
        self._played += 1
        return frame

    def close(self) -> None:
        if self._capture is not None:
            self._capture.release()
            self._capture = None
