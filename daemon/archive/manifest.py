"""``DIR/manifest.jsonl``: what an archive run did to each video, one line per attempt, appended.

The newest line of a video is its state. A line is written, flushed and
synced once its video has an outcome, so a run killed at any moment leaves
a manifest whose every line is true; a video without a ``done`` line, or
whose file changed since (size, modification time), is analysed again by
the next run. ``--force`` analyses every video again.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

NAME = "manifest.jsonl"
DONE, PARTIAL, FAILED = "done", "partial", "failed"
"""``partial``: the video ended well before the frames its container announced (truncated); every frame it
had was written. ``failed``: no output was kept (``reason`` says why)."""


@dataclass(frozen=True)
class Entry:
    path: str
    output: str
    """The JSONL, relative to the output directory."""
    size: int
    mtime_ns: int
    status: str
    frames_declared: int = 0
    frames_written: int = 0
    reason: str | None = None
    seconds: float = 0.0
    model: str = ""
    precision: str = ""
    machine: str = ""

    def unchanged(self, stat: os.stat_result) -> bool:
        return self.size == stat.st_size and self.mtime_ns == stat.st_mtime_ns


class Manifest:
    """The manifest of one output directory, read at start and appended to as videos finish."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / NAME
        self.entries: dict[str, Entry] = {}
        if not self.path.exists():
            return
        with self.path.open(encoding="utf-8") as f:
            for number, line in enumerate(f, 1):
                try:
                    data: dict[str, Any] = json.loads(line)
                    entry = Entry(**data)
                except (ValueError, TypeError):
                    # a line cut by a crash mid-write can only be the last; its video is simply done again
                    log.warning("%s:%d: not a manifest line; ignored", self.path, number)
                    continue
                self.entries[entry.path] = entry

    def done(self, path: Path) -> Entry | None:
        """The ``done`` entry of ``path`` if the file is unchanged since, else None."""
        entry = self.entries.get(str(path))
        if entry is None or entry.status != DONE:
            return None
        try:
            return entry if entry.unchanged(path.stat()) else None
        except OSError:
            return None

    def record(self, entry: Entry) -> None:
        self.entries[entry.path] = entry
        line = json.dumps(asdict(entry), separators=(",", ":")) + "\n"
        with self.path.open("a", encoding="utf-8") as f:
            f.write(line)
            f.flush()
            os.fsync(f.fileno())
