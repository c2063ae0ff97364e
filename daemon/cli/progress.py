"""A one-line progress bar on a terminal; nothing when stderr is not one."""

from __future__ import annotations

import sys
import time
from typing import TextIO


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class Progress:
    def __init__(self, total: int, enabled: bool | None = None, stream: TextIO = sys.stderr) -> None:
        self.total = total
        self.stream = stream
        self.enabled = stream.isatty() if enabled is None else enabled
        self._drawn = 0.0
        self._width = 0

    def update(self, done: int, elapsed_s: float, fps: float) -> None:
        if not self.enabled or time.monotonic() - self._drawn < 0.2:
            return
        self._drawn = time.monotonic()
        if self.total > 0:
            fraction = min(1.0, done / self.total)
            bar = "#" * int(fraction * 30)
            eta = _clock((self.total - done) / fps) if fps > 0 and done < self.total else "--:--"
            text = f"[{bar:<30}] {done}/{self.total} frames  {fps:5.2f} fps  ETA {eta}"
        else:
            text = f"{done} frames  {fps:5.2f} fps  {_clock(elapsed_s)}"
        self.stream.write("\r" + text.ljust(self._width))
        self.stream.flush()
        self._width = len(text)

    def close(self) -> None:
        if self.enabled and self._width:
            self.stream.write("\r" + " " * self._width + "\r")
            self.stream.flush()
