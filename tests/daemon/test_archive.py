"""``detectord analyze … --out-dir``: many videos on this machine's cores, a manifest, resumable, each frame once.

Real processes throughout; the detector is hog-people on the command line and the bright-rectangle test double
from Python (where the test needs outputs it can predict)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from detectord.daemon.analyze import analyze
from detectord.daemon.archive.inputs import find_videos
from detectord.daemon.archive.local import Plan, plan, run_archive
from detectord.daemon.archive.manifest import NAME
from detectord.daemon.config import AnalyzeConfig, ArchiveConfig, ConfigError, ModelConfig

from .conftest import write_bad_inputs, write_video
from .fakes import bright_box_factory

DETECTORD = [sys.executable, "-m", "detectord.daemon", "analyze"]
HOG = ["--model", "hog-people"]


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _manifest(out_dir: Path) -> dict[str, dict[str, Any]]:
    """The newest line of each video."""
    return {entry["path"]: entry for entry in _lines(out_dir / NAME)}


def _footage(root: Path) -> list[Path]:
    """Three videos in two folders, of different lengths, and a file that is not a video."""
    (root / "cam2").mkdir(parents=True)
    videos = [root / "cam1.mp4", root / "cam2" / "morning.mp4", root / "cam2" / "evening.avi"]
    for count, path in enumerate(videos):
        write_video(path, frames=8 + 4 * count, width=320, height=240)
    (root / "cam2" / "notes.txt").write_text("not a video")
    return videos


def test_inputs_name_videos_by_directory_glob_and_path_each_once(tmp_path: Path, monkeypatch: Any) -> None:
    videos = _footage(tmp_path / "footage")
    monkeypatch.chdir(tmp_path)
    found, problems = find_videos(["footage", "footage/cam2/*.avi", str(videos[0]), "missing.mp4", "none*/*.mp4"])
    assert {video.path for video in found} == set(videos)
    assert [str(video.name) for video in found] == ["cam1.mp4", "cam2/evening.avi", "cam2/morning.mp4"]
    assert problems == ["missing.mp4: no such file or directory", "none*/*.mp4: matches no video"]
    (tmp_path / "empty").mkdir()
    assert find_videos(["empty"])[1][0].startswith("empty: a directory without videos")


def test_the_cores_are_split_between_videos_and_the_model_threads() -> None:
    config = ArchiveConfig(inputs=("x",), out_dir=Path("out"))
    assert plan(config, videos=10, cores=8) == Plan(jobs=4, threads=2)
    assert plan(config, videos=2, cores=8) == Plan(jobs=2, threads=4), "few videos: more threads each"
    assert plan(config, videos=1, cores=2) == Plan(jobs=1, threads=2), "one video is as fast as today"
    assert plan(ArchiveConfig(inputs=("x",), out_dir=Path("o"), jobs=3), videos=9, cores=8).jobs == 3
    threads = ArchiveConfig(inputs=("x",), out_dir=Path("o"), model=ModelConfig(threads=4))
    assert plan(threads, videos=9, cores=8) == Plan(jobs=2, threads=4)


@pytest.mark.slow
def test_many_videos_give_the_outputs_of_single_runs_then_a_second_run_skips_them(tmp_path: Path) -> None:
    videos = _footage(tmp_path / "footage")
    out_dir = tmp_path / "out"
    config = ArchiveConfig(inputs=(str(tmp_path / "footage"),), out_dir=out_dir, jobs=2)
    summary = run_archive(config, progress=False, detector_factory=bright_box_factory)
    assert (summary.done, summary.failed, summary.skipped) == (3, 0, 0)
    for video in videos:
        single = tmp_path / f"{video.stem}-single.jsonl"
        analyze(AnalyzeConfig(video=video, out=single), progress=False, detector_factory=bright_box_factory)
        mirrored = out_dir / video.relative_to(tmp_path / "footage").with_name(video.name + ".jsonl")
        assert _lines(mirrored) == _lines(single)
    entries = _manifest(out_dir)
    assert {entry["status"] for entry in entries.values()} == {"done"}
    assert all(e["frames_written"] == e["frames_declared"] > 0 for e in entries.values())
    assert not list(out_dir.rglob("*.partial*")), "nothing staged is left behind"

    again = run_archive(config, progress=False, detector_factory=bright_box_factory)
    assert (again.done, again.skipped) == (0, 3)
    os.utime(videos[1], ns=(time.time_ns(), time.time_ns()))
    changed = run_archive(config, progress=False, detector_factory=bright_box_factory)
    assert (changed.done, changed.skipped) == (1, 2), "a changed video is analysed again"
    forced = run_archive(
        ArchiveConfig(inputs=config.inputs, out_dir=out_dir, force=True), progress=False,
        detector_factory=bright_box_factory,
    )  # fmt: skip
    assert (forced.done, forced.skipped) == (3, 0)


@pytest.mark.slow
def test_bad_inputs_are_one_line_each_a_truncated_video_is_partial_and_the_good_ones_are_done(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    good = write_video(tmp_path / "in" / "good.mp4", frames=10, width=320, height=240).path
    cut, broken, empty = write_bad_inputs(tmp_path)
    listing = tmp_path / "list.txt"
    listing.write_text(f"# the usual\n{tmp_path / 'in'}\n\n{tmp_path / 'nowhere' / '*.mp4'}\n")
    out_dir = tmp_path / "out"
    done = subprocess.run(
        [*DETECTORD, "--inputs", str(listing), str(empty), "--out-dir", str(out_dir), *HOG],
        capture_output=True, text=True, check=False, timeout=300,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("detectord: ")]
    assert any("empty: a directory without videos" in line for line in errors), errors
    assert any("nowhere/*.mp4: matches no video" in line for line in errors), errors
    assert any(str(broken) in line and "cannot" in line for line in errors), errors
    assert "Traceback" not in done.stderr
    entries = _manifest(out_dir)
    assert entries[str(good)]["status"] == "done"
    assert entries[str(cut)]["status"] == "partial"
    assert 0 < entries[str(cut)]["frames_written"] < 60
    assert entries[str(broken)]["status"] == "failed" and entries[str(broken)]["reason"]
    assert len(_lines(out_dir / "good.mp4.jsonl")) == 10
    assert not (out_dir / "broken.mp4.jsonl").exists()

    only_cut = subprocess.run(
        [*DETECTORD, str(cut), "--out-dir", str(tmp_path / "out2"), *HOG],
        capture_output=True, text=True, check=False, timeout=300,
    )  # fmt: skip
    assert only_cut.returncode == 3, "a truncated video: analyze's exit status for it"


@pytest.mark.slow
def test_a_run_killed_at_any_moment_resumes_and_writes_every_frame_once(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    videos = [write_video(tmp_path / "in" / f"v{i}.mp4", frames=40, width=320, height=240).path for i in range(3)]
    out_dir = tmp_path / "out"
    args = [*DETECTORD, str(tmp_path / "in"), "--out-dir", str(out_dir), "--jobs", "2", *HOG]
    driver = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not list(out_dir.rglob(".*.partial.jsonl")):
        time.sleep(0.1)
    assert list(out_dir.rglob(".*.partial.jsonl")), "the videos were under way"
    workers = _workers_of(driver.pid)
    assert workers
    driver.send_signal(signal.SIGKILL)  # the driver only: its workers must go with it
    driver.wait(30)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and any(_alive(pid) for pid in workers):
        time.sleep(0.2)
    assert not any(_alive(pid) for pid in workers), "the workers died with the driver"
    for finished in out_dir.rglob("*.jsonl"):
        assert len(_lines(finished)) == 40, f"{finished}: an output is whole or absent"

    resumed = subprocess.run(args, capture_output=True, text=True, check=False, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    for video in videos:
        lines = _lines(out_dir / f"{video.name}.jsonl")
        assert [line["frame"] for line in lines] == list(range(40)), "every frame once, in order"
    assert {entry["status"] for entry in _manifest(out_dir).values()} == {"done"}


def _alive(pid: int) -> bool:
    try:
        return "\nState:\tZ" not in Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False


def _workers_of(driver: int) -> list[int]:
    """The driver's worker processes (one per video under way)."""
    found = []
    for pid in (int(p) for p in os.listdir("/proc") if p.isdigit()):
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        name = status.splitlines()[0].split()[-1]
        if name.startswith("detectord-") and f"PPid:\t{driver}\n" in status:
            found.append(pid)
    return found


def test_contradictory_or_missing_outputs_are_one_line_and_exit_2(tmp_path: Path) -> None:
    video = write_video(tmp_path / "v.mp4", frames=2, width=320, height=240).path
    cases = [
        ([str(video), str(video), "--out", "x.jsonl"], "one VIDEO with --out JSONL"),
        ([str(video), "--out", "x.jsonl", "--out-dir", "d"], "--out and --annotated name one video's files"),
        ([str(video), "--out", "x.jsonl", "--jobs", "2"], "--jobs needs --out-dir DIR"),
        (["--out-dir", str(tmp_path / "d")], "no input"),
    ]
    for args, message in cases:
        done = subprocess.run(
            [*DETECTORD, *args], capture_output=True, text=True, check=False, timeout=60, cwd=tmp_path
        )
        assert done.returncode == 2, (args, done.stderr)
        assert message in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr
    with pytest.raises(ConfigError, match="would both write"):
        (tmp_path / "a").mkdir()
        (tmp_path / "b").mkdir()
        for folder in ("a", "b"):
            write_video(tmp_path / folder / "same.mp4", frames=2, width=320, height=240)
        run_archive(ArchiveConfig(inputs=(str(tmp_path / "a"), str(tmp_path / "b")), out_dir=tmp_path / "o"))
