"""Where ``detectord analyze`` writes: beside the files it was asked for, renamed into place at the end.

The writer stage fills temporary files in the target's directory; the
targets are replaced only once the run has an outcome worth keeping
(finished, interrupted or cut short by a truncated video, which keep every
line written). A run that fails leaves the targets as they were, so no
failure destroys a file the user had; the lines it did write are kept beside
them, under a name that says so. Creating the temporary files first is also
the check that the targets can be written at all, before any model loads.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


class OutputError(RuntimeError):
    """A target cannot be written; the message says which and why."""


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

    def commit(self) -> Path:
        """Replace the target with what was written."""
        os.replace(self.path, self.target)
        return self.target

    def salvage(self) -> Path | None:
        """After a failure: the lines written, kept beside the target (which stays as it was); None if none."""
        if self.empty:
            self.discard()
            return None
        if not self.target.exists():
            return self.commit()
        kept = self.target.with_name(self.target.name + ".failed")
        with contextlib.suppress(OSError):
            os.replace(self.path, kept)
            return kept
        return self.path

    def discard(self) -> None:
        """Nothing of this run stays (``salvage``'s counterpart where a later run redoes the work)."""
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
