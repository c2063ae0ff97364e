"""Where ``detectord analyze`` writes: beside the files it was asked for, renamed into place at the end.

The writer stage fills temporary files in the target's directory; a target
is replaced only by a run that finished (every frame the video gave has its
line). A run that does not finish leaves the target exactly as it was, byte
for byte and mode for mode, and keeps its own lines in a sibling whose name
says what happened: ``OUT.partial`` when it was interrupted (Ctrl-C,
SIGTERM), ``OUT.failed`` after an error (a stage failed, the disk filled
up), never a half line. A new file gets the mode a plain ``open()`` gives
(the umask), a replaced one keeps its own. Creating the temporary files
first is also the check that the targets can be written at all, before any
model loads.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from pathlib import Path

INTERRUPTED = ".partial"
FAILED = ".failed"


class OutputError(RuntimeError):
    """A target cannot be written; the message says which and why."""


def _umask_mode() -> int:
    """The mode ``open()`` gives a new file here: 0o666 less the process's umask."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


class StagedFile:
    def __init__(self, target: Path) -> None:
        self.target = target
        if target.is_dir():
            raise OutputError(f"cannot write {target}: it is a directory")
        try:
            handle, name = tempfile.mkstemp(
                prefix=f".{target.name}.", suffix=f".partial{target.suffix}", dir=target.parent
            )
        except OSError as exc:
            raise OutputError(f"cannot write {target}: {exc.strerror or exc}") from None
        os.close(handle)
        self.path = Path(name)

    @property
    def empty(self) -> bool:
        return not self.path.exists() or self.path.stat().st_size == 0

    def _mode(self) -> int:
        """The target's own mode where it exists, else the umask's."""
        try:
            return stat.S_IMODE(self.target.stat().st_mode)
        except FileNotFoundError:
            return _umask_mode()

    def commit(self) -> Path:
        """Replace the target with what was written (the run finished)."""
        os.chmod(self.path, self._mode())
        os.replace(self.path, self.target)
        return self.target

    def keep_beside(self, suffix: str, whole_lines: bool = True) -> Path | None:
        """A run that did not finish: what it wrote becomes ``TARGET<suffix>`` (``INTERRUPTED`` or ``FAILED``),
        cut after its last whole line where ``whole_lines``; the target stays as it was. None when nothing
        was written (or the sibling cannot be made: the staged file is removed then too)."""
        if self.empty:
            self.discard()
            return None
        kept = self.target.with_name(self.target.name + suffix)
        try:
            if whole_lines:
                _cut_after_last_line(self.path)
            if self.empty:
                self.discard()
                return None
            os.chmod(self.path, self._mode())
            os.replace(self.path, kept)
        except OSError:
            self.discard()
            return None
        return kept

    def discard(self) -> None:
        """Nothing of this run stays (where a later run redoes the work)."""
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


def _cut_after_last_line(path: Path) -> None:
    """Drop a last line the writer did not finish (a full disk cuts a line anywhere)."""
    size = path.stat().st_size
    with path.open("rb+") as f:
        step = 64 * 1024
        end = size
        while end > 0:
            start = max(0, end - step)
            f.seek(start)
            block = f.read(end - start)
            newline = block.rfind(b"\n")
            if newline >= 0:
                f.truncate(start + newline + 1)
                return
            end = start
        f.truncate(0)
