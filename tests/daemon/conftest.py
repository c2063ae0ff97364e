from __future__ import annotations

import os
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest


@dataclass(frozen=True)
class SyntheticVideo:
    """A video whose frame i shows one white rectangle at a position derived from i."""

    path: Path
    frames: int
    fps: float
    width: int
    height: int

    def rectangle(self, i: int) -> tuple[int, int, int, int]:
        """x1, y1, x2, y2 of frame i's rectangle, in source pixels (x2, y2 exclusive)."""
        x1 = 20 + 12 * i
        return x1, 60, x1 + 100, 420

    def expected_box(self, i: int, size: tuple[int, int] = (427, 240)) -> np.ndarray:
        sx, sy = size[0] / self.width, size[1] / self.height
        x1, y1, x2, y2 = self.rectangle(i)
        return np.array([x1 * sx, y1 * sy, x2 * sx, y2 * sy])


def write_video(path: Path, frames: int, fps: float = 25.0, width: int = 854, height: int = 480) -> SyntheticVideo:
    video = SyntheticVideo(path, frames, fps, width, height)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
    assert writer.isOpened()
    for i in range(frames):
        image = np.full((height, width, 3), 40, np.uint8)
        x1, y1, x2, y2 = video.rectangle(i)
        image[y1:y2, x1:x2] = 255
        writer.write(image)
    writer.release()
    return video


def write_mjpeg_avi(path: Path, frames: int) -> Path:
    """An MJPEG AVI: its header announces the frame count, and a cut copy still decodes what is left."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), 25.0, (320, 240))
    assert writer.isOpened()
    for i in range(frames):
        image = np.full((240, 320, 3), 40, np.uint8)
        image[60:200, 10 + 4 * i : 60 + 4 * i] = 255
        writer.write(image)
    writer.release()
    return path


def write_bad_inputs(folder: Path) -> tuple[Path, Path, Path]:
    """Beside ``folder / "in"``: a cut MJPEG AVI (decodes about a third of its 60 announced frames) and a file that
    is no video at all in it, and a directory without videos; returns (cut, broken, empty)."""
    whole = write_mjpeg_avi(folder / "whole.avi", frames=60)
    cut = folder / "in" / "cut.avi"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 3])
    broken = folder / "in" / "broken.mp4"
    broken.write_bytes(b"not a video at all")
    empty = folder / "empty"
    empty.mkdir()
    return cut, broken, empty


@pytest.fixture
def clip(tmp_path: Path) -> SyntheticVideo:
    return write_video(tmp_path / "clip.mp4", frames=30)


def leftover_segments(pid: int) -> list[str]:
    return [f for f in os.listdir("/dev/shm") if f.startswith(f"detectord-analyze-{pid}-")]


def stop_group(process: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> int:
    """Signal a daemon started in a session of its own, and all it started; its exit status."""
    if process.poll() is None:
        os.killpg(process.pid, sig)
    return process.wait(30)
