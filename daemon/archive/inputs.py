"""Which videos an archive run analyses, and where each one's output goes.

Inputs are paths, globs (``cam*/2026-*.mp4``, ``**`` recursive), directories
(every video below them, by extension) and the lines of ``--inputs LIST``.
Each video's output mirrors its name relative to what named it: the
directory it was found in, else the current directory, else its absolute
path without the leading ``/``. An input that names nothing is one line of
``problems``; the videos found are still analysed.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePath

VIDEO_EXTENSIONS = frozenset(
    {".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".mpg", ".mpeg", ".ts", ".mts", ".m2ts", ".wmv", ".flv"}
)
"""What a directory's videos are called (case does not matter)."""


@dataclass(frozen=True)
class Video:
    path: Path
    """Absolute."""
    name: PurePath
    """Relative: where its output goes under ``--out-dir``."""


class InputError(ValueError):
    """The inputs as a whole cannot be run (two videos would write one output); the message says which."""


def is_video(path: Path) -> bool:
    return path.suffix.lower() in VIDEO_EXTENSIONS


def _relative(path: Path, base: Path | None) -> PurePath:
    if base is not None:
        return path.relative_to(base)
    try:
        return path.relative_to(Path.cwd())
    except ValueError:
        return PurePath(*path.parts[1:])


def _in_directory(directory: Path) -> list[Path]:
    found = []
    for root, dirs, files in os.walk(directory):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found += [Path(root, name) for name in sorted(files) if is_video(Path(name)) and not name.startswith(".")]
    return found


def read_list(path: Path) -> list[str]:
    """``--inputs LIST``: one path (or glob) per line; blank lines and ``#`` comments are skipped."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot read the list of inputs {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise InputError(f"{path}: the list of inputs is not UTF-8 text") from None
    return [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def find_videos(inputs: Iterable[str]) -> tuple[list[Video], list[str]]:
    """The videos ``inputs`` name, each once, in the order named; and one line per input that names none."""
    videos: dict[Path, Video] = {}
    problems: list[str] = []

    def add(path: Path, base: Path | None) -> None:
        path = path.resolve()
        videos.setdefault(path, Video(path, _relative(path, base.resolve() if base else None)))

    for item in inputs:
        path = Path(item).expanduser()
        if glob.has_magic(item):
            matches = sorted(Path(m) for m in glob.glob(str(path), recursive=True))
            files = [m for m in matches if m.is_file() and is_video(m)]
            for directory in (m for m in matches if m.is_dir()):
                files += _in_directory(directory)
            if not files:
                problems.append(f"{item}: matches no video")
            for found in files:
                add(found, None)
        elif path.is_dir():
            inside = _in_directory(path)
            if not inside:
                problems.append(f"{item}: a directory without videos ({', '.join(sorted(VIDEO_EXTENSIONS))})")
            for found in inside:
                add(found, path)
        elif path.is_file():
            if os.access(path, os.R_OK):
                add(path, None)
            else:
                problems.append(f"{item}: not readable (permission denied)")
        else:
            problems.append(f"{item}: no such file or directory")
    by_output: dict[PurePath, Path] = {}
    for video in videos.values():
        other = by_output.setdefault(video.name, video.path)
        if other != video.path:
            raise InputError(f"{other} and {video.path} would both write {video.name}: name them from one directory")
    return list(videos.values()), problems
