"""``detectord analyze`` end to end: real processes, real rings, a synthetic video."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from detectord.daemon.analyze import AnalysisFailed, analyze
from detectord.daemon.config import AnalyzeConfig, ModelConfig

from .conftest import SyntheticVideo, leftover_segments, write_mjpeg_avi, write_video
from .fakes import bright_box_factory, failing_factory

DETECTORD = [sys.executable, "-m", "detectord.daemon"]


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _being_written(out: Path) -> int:
    """Lines written so far: the writer fills a file beside ``out`` that replaces it at the end."""
    staged = list(out.parent.glob(f".{out.name}.*.partial{out.suffix}"))
    return sum(len(path.read_text().splitlines()) for path in staged)


@pytest.mark.parametrize("batch", [1, 4, 7])
def test_every_frame_once_in_order_with_boxes_in_427x240_pixels(
    clip: SyntheticVideo, tmp_path: Path, batch: int
) -> None:
    out, annotated = tmp_path / "out.jsonl", tmp_path / "out.mp4"
    config = AnalyzeConfig(
        video=clip.path, out=out, annotated=annotated, batch=batch, model=ModelConfig(weights="random")
    )
    summary = analyze(config, progress=False, detector_factory=bright_box_factory)

    lines = _lines(out)
    assert summary.frames == clip.frames == len(lines)
    assert [line["frame"] for line in lines] == list(range(clip.frames))
    assert [line["time_s"] for line in lines] == pytest.approx([i / clip.fps for i in range(clip.frames)])
    track_ids = set()
    for i, line in enumerate(lines):
        (detection,) = line["detections"]
        assert detection["label"] == "person" and detection["class_id"] == 1
        np.testing.assert_allclose(detection["box"], clip.expected_box(i), atol=3.0)
        assert line["main_person"]["box"] == detection["box"]
        track_ids.add(line["main_person"]["track_id"])
    assert len(track_ids) == 1, "one person, followed across the whole clip"
    assert leftover_segments(os.getpid()) == []

    video = cv2.VideoCapture(str(annotated))
    size = (video.get(cv2.CAP_PROP_FRAME_WIDTH), video.get(cv2.CAP_PROP_FRAME_HEIGHT))
    assert size == (428, 240), "427x240 with one black column: MPEG-4's 4:2:0 chroma needs an even width"
    assert int(video.get(cv2.CAP_PROP_FRAME_COUNT)) == clip.frames
    ok, first = video.read()
    video.release()
    assert ok
    x1, y1, _, _ = (round(v) for v in lines[0]["main_person"]["box"])
    assert first[y1 + 1, x1 + 1, 1] > 150 > first[y1 + 1, x1 + 1, 0], "main person boxed in green"


def test_frames_without_a_person_have_a_null_main_person(tmp_path: Path) -> None:
    path = tmp_path / "empty.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 25, (427, 240))
    for _ in range(5):
        writer.write(np.full((240, 427, 3), 40, np.uint8))
    writer.release()
    out = tmp_path / "out.jsonl"
    analyze(AnalyzeConfig(video=path, out=out), progress=False, detector_factory=bright_box_factory)
    assert [(line["main_person"], line["detections"]) for line in _lines(out)] == [(None, [])] * 5


def test_a_failing_stage_is_reported_and_leaves_nothing_in_shared_memory(clip: SyntheticVideo, tmp_path: Path) -> None:
    config = AnalyzeConfig(video=clip.path, out=tmp_path / "out.jsonl")
    with pytest.raises(AnalysisFailed):
        analyze(config, progress=False, detector_factory=failing_factory)
    assert leftover_segments(os.getpid()) == []


def test_the_real_faster_rcnn_runs_end_to_end_from_the_command_line(tmp_path: Path) -> None:
    """--weights random: the untrained network, so the boxes are noise, but every frame gets its line."""
    clip = write_video(tmp_path / "clip.mp4", frames=5)
    out = tmp_path / "out.jsonl"
    done = subprocess.run(
        [*DETECTORD, "analyze", str(clip.path), "--out", str(out), "--annotated", str(tmp_path / "a.mp4"),
         "--weights", "random", "--batch", "2", "--score-threshold", "0.0", "--device", "cpu"],
        check=False, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "RANDOM WEIGHTS" in done.stderr
    assert done.stdout.startswith("analysed 5 frames in ")
    lines = _lines(out)
    assert [line["frame"] for line in lines] == list(range(5))
    boxes = np.array([d["box"] for line in lines for d in line["detections"]])
    assert len(boxes) > 0, "with a zero score threshold the untrained network reports boxes"
    assert (boxes[:, [0, 2]] >= 0).all() and (boxes[:, [0, 2]] <= 427).all()
    assert (boxes[:, [1, 3]] >= 0).all() and (boxes[:, [1, 3]] <= 240).all()


def test_ctrl_c_stops_cleanly_and_keeps_every_line_written_beside_the_output(tmp_path: Path) -> None:
    clip = write_video(tmp_path / "clip.mp4", frames=200)
    out = tmp_path / "out.jsonl"
    proc = subprocess.Popen(
        [*DETECTORD, "analyze", str(clip.path), "--out", str(out), "--weights", "random", "--batch", "1",
         "--device", "cpu"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and _being_written(out) < 2:
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGINT)  # what a terminal does: the whole foreground group
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr
    assert stdout.startswith("interrupted after ") and f"what it wrote is in {out}.partial" in stdout
    lines = _lines(out.with_name(out.name + ".partial"))
    assert 2 <= len(lines) < 200
    assert [line["frame"] for line in lines] == list(range(len(lines)))
    assert not out.exists(), "an interrupted run makes no output under the output's name"
    assert leftover_segments(proc.pid) == []
    assert _being_written(out) == 0, "the staged file became the partial"


PEDESTRIANS = "/usr/share/doc/opencv-doc/examples/data/vtest.avi"


def _interrupted(out: Path, signum: int, umask: int = 0o022) -> subprocess.CompletedProcess[str]:
    proc = subprocess.Popen(
        [*DETECTORD, "analyze", PEDESTRIANS, "--out", str(out), "--model", "hog-people"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
        umask=umask,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and _being_written(out) < 3:
        time.sleep(0.2)
    os.killpg(proc.pid, signum)
    stdout, stderr = proc.communicate(timeout=60)
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_an_interrupted_run_leaves_the_output_you_had_byte_for_byte_and_mode_for_mode(
    tmp_path: Path, signum: int
) -> None:
    """#35: Ctrl-C used to replace keep.jsonl with the interrupted run's lines, and with mode 0600."""
    out = tmp_path / "keep.jsonl"
    out.write_bytes(b"old\n")
    out.chmod(0o644)
    done = _interrupted(out, signum)
    assert done.returncode == 130, done.stderr
    assert out.read_bytes() == b"old\n" and (out.stat().st_mode & 0o777) == 0o644
    partial = out.with_name("keep.jsonl.partial")
    assert partial.read_bytes().endswith(b"\n") and (partial.stat().st_mode & 0o777) == 0o644
    lines = _lines(partial)
    assert len(lines) >= 3 and [line["frame"] for line in lines] == list(range(len(lines)))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.jsonl", "keep.jsonl.partial"]


def test_a_finished_run_gives_a_new_output_the_umasks_mode(tmp_path: Path) -> None:
    clip = write_video(tmp_path / "clip.mp4", frames=6)
    out = tmp_path / "out.jsonl"
    done = subprocess.run(
        [*DETECTORD, "analyze", str(clip.path), "--out", str(out), "--model", "hog-people"],
        capture_output=True, text=True, check=False, timeout=120, umask=0o027,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert (out.stat().st_mode & 0o777) == 0o640, "mkstemp's 0600 is not what open() would have given"


def test_a_full_disk_without_an_earlier_output_leaves_whole_lines_in_out_failed(tmp_path: Path) -> None:
    """#35: a 64 KiB tmpfs used to leave o.jsonl, exactly 65,536 bytes with its last line cut."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mount = ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(disk)]
    mounted = subprocess.run(mount, check=False, capture_output=True)
    if mounted.returncode:
        pytest.skip(f"cannot mount a small tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        out = disk / "o.jsonl"
        done = subprocess.run(
            [*DETECTORD, "analyze", PEDESTRIANS, "--out", str(out), "--model", "hog-people"],
            capture_output=True, text=True, check=False, timeout=300,
        )  # fmt: skip
        assert done.returncode == 1, done.stderr
        assert "No space left on device" in done.stderr and f"the lines written are in {out}.failed" in done.stderr
        assert not out.exists()
        failed = out.with_name("o.jsonl.failed")
        assert failed.read_bytes().endswith(b"\n")
        assert [line["frame"] for line in _lines(failed)] == list(range(len(_lines(failed))))
    finally:
        subprocess.run(["umount", str(disk)], check=False)


def _error(args: list[str]) -> tuple[int, str]:
    done = subprocess.run([*DETECTORD, *args], check=False, capture_output=True, text=True, timeout=120)
    return done.returncode, done.stderr


@pytest.mark.parametrize(
    ("make_args", "message"),
    [
        (lambda d: ["analyze", str(d / "missing.mp4"), "--out", str(d / "o.jsonl")], "no such file"),
        (lambda d: ["analyze", str(d / "corrupt.mp4"), "--out", str(d / "o.jsonl")], "corrupt.mp4"),
        (lambda d: ["analyze", str(d / "clip.mp4"), "--out", str(d / "o.jsonl"), "--batch", "0"], "batch"),
        (lambda d: ["analyze", str(d / "clip.mp4"), "--out", str(d / "o.jsonl"), "--profile", "x"], "profile"),
        (lambda d: ["analyze", str(d / "clip.mp4"), "--out", str(d / "no/dir/o.jsonl")], "does not exist"),
        (lambda d: ["analyze", str(d / "clip.mp4"), "--out", str(d / "o.jsonl"), "--weights", "nope.pth"], "weights"),
        (lambda d: ["analyze", str(d / "clip.mp4")], "--out"),
    ],
    ids=["missing", "corrupt", "batch", "profile", "out-dir", "weights-file", "no-out"],
)
def test_bad_input_is_one_line_and_a_nonzero_exit(tmp_path: Path, make_args: Any, message: str) -> None:
    write_video(tmp_path / "clip.mp4", frames=2)
    (tmp_path / "corrupt.mp4").write_bytes(os.urandom(4096))
    code, stderr = _error(make_args(tmp_path))
    assert code != 0
    assert len(stderr.strip().splitlines()) == 1, stderr
    assert stderr.startswith("detectord: error: ") and message in stderr


def test_max_frames_analyses_only_the_first_frames(clip: SyntheticVideo, tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    summary = analyze(
        AnalyzeConfig(video=clip.path, out=out, batch=4, max_frames=7),
        progress=False,
        detector_factory=bright_box_factory,
    )
    assert summary.frames == summary.expected_frames == 7
    assert [line["frame"] for line in _lines(out)] == list(range(7))


@pytest.mark.slow
def test_calibrate_then_analyze_with_int8_static_from_the_command_line(tmp_path: Path) -> None:
    """The calibration is its own command; its artifact is what --precision int8-static loads."""
    clip = write_video(tmp_path / "clip.mp4", frames=6)
    artifact = tmp_path / "int8.pt"
    done = subprocess.run(
        [*DETECTORD, "calibrate", str(clip.path), "--out", str(artifact), "--frames", "3", "--weights", "random"],
        check=False, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "on 3 frames of" in done.stdout and artifact.is_file()
    out = tmp_path / "out.jsonl"
    done = subprocess.run(
        [*DETECTORD, "analyze", str(clip.path), "--out", str(out), "--weights", "random", "--device", "cpu",
         "--precision", "int8-static", "--calibration", str(artifact)],
        check=False, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "Warning" not in done.stderr, "PyTorch's notes to its developers are not the user's business"
    assert len(_lines(out)) == 6

    no_compiler = {**os.environ, "CXX": str(tmp_path / "no-such-g++"), "TORCHINDUCTOR_FORCE_DISABLE_CACHES": "1"}
    done = subprocess.run(
        [*DETECTORD, "analyze", str(clip.path), "--out", str(tmp_path / "never.jsonl"), "--weights", "random",
         "--precision", "int8-static", "--calibration", str(artifact)],
        check=False, capture_output=True, text=True, timeout=300, env=no_compiler,
    )  # fmt: skip
    assert done.returncode == 1
    (refusal,) = [line for line in done.stderr.splitlines() if "error:" in line and "inference]" in line]
    assert "needs a C++ compiler (g++)" in refusal and "Traceback" not in done.stderr
    assert not (tmp_path / "never.jsonl").exists()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--precision", "int8-static"], "needs a calibration file"),
        (["--precision", "int4"], "unknown precision"),
        (["--precision", "fp16", "--device", "cpu"], "needs a CUDA device"),
    ],
)
def test_a_precision_this_run_cannot_use_is_one_line(tmp_path: Path, extra: list[str], message: str) -> None:
    clip = write_video(tmp_path / "clip.mp4", frames=2)
    code, stderr = _error(["analyze", str(clip.path), "--out", str(tmp_path / "o.jsonl"), *extra])
    assert code != 0
    assert len(stderr.strip().splitlines()) == 1, stderr
    assert message in stderr


def test_a_video_that_ends_early_keeps_its_lines_and_exits_3_unless_allowed(tmp_path: Path) -> None:
    whole = write_mjpeg_avi(tmp_path / "whole.avi", 60)
    cut = tmp_path / "cut.avi"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 3])
    out = tmp_path / "cut.jsonl"
    args = [*DETECTORD, "analyze", str(cut), "--out", str(out), "--model", "hog-people"]  # no torch to import
    done = subprocess.run(args, capture_output=True, text=True, check=False, timeout=300)
    assert done.returncode == 3, done.stderr
    lines = _lines(out)
    assert 0 < len(lines) < 60, "every decoded frame kept"
    assert f"ended after {len(lines)} of the 60 frames it announces" in done.stderr
    allowed = subprocess.run([*args, "--allow-partial"], capture_output=True, text=True, check=False, timeout=300)
    assert allowed.returncode == 0, allowed.stderr
    assert len(_lines(out)) == len(lines)


def test_a_failed_analysis_leaves_an_existing_output_as_it_was(tmp_path: Path) -> None:
    clip = write_video(tmp_path / "clip.mp4", frames=3)
    keep = tmp_path / "keep.jsonl"
    keep.write_text('{"frame":0}\n')
    notes = tmp_path / "notes.txt"
    notes.write_text("not weights\n")
    code, stderr = _error(["analyze", str(clip.path), "--out", str(keep), "--weights", str(notes)])
    assert code != 0 and len(stderr.strip().splitlines()) == 1, stderr
    assert "is not a PyTorch weights file" in stderr
    fake = tmp_path / "fake.pt"
    fake.write_bytes(b"PK\x03\x04 but not a zip archive at all")
    code, stderr = _error(["analyze", str(clip.path), "--out", str(keep), "--weights", str(fake), "--device", "cpu"])
    assert code == 1, stderr
    assert "weights_only" not in stderr and "Traceback" not in stderr, "our words, not torch's advice"
    assert f"{keep} is as it was" in stderr
    assert keep.read_text() == '{"frame":0}\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4", "fake.pt", "keep.jsonl", "notes.txt"]


@pytest.mark.parametrize("where", ["/sys/o.jsonl", "DIR"])
def test_an_output_that_cannot_be_written_is_refused_before_the_model_loads(tmp_path: Path, where: str) -> None:
    clip = write_video(tmp_path / "clip.mp4", frames=2)
    out = str(tmp_path) if where == "DIR" else where
    code, stderr = _error(["analyze", str(clip.path), "--out", out, "--weights", "random"])
    assert code != 0 and len(stderr.strip().splitlines()) == 1, stderr
    assert f"cannot write {out}" in stderr and "lines written" not in stderr
    assert "RANDOM WEIGHTS" not in stderr, "refused before any model was built"


def _still_then_moving_clip(path: Path) -> Path:
    """40 frames: the rectangle stands (0-9), moves (10-19), stands again (20-39), on a noisy background."""
    rng = np.random.default_rng(7)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (854, 480))
    background = cv2.GaussianBlur(rng.integers(30, 120, (480, 854, 3), dtype=np.uint8), (31, 31), 0)
    for i in range(40):
        image = np.clip(background + rng.normal(0, 2, background.shape), 0, 255).astype(np.uint8)
        x = 100 + 20 * min(max(i - 10, 0), 10)
        image[60:420, x : x + 100] = 255
        writer.write(image)
    writer.release()
    return path


def test_skip_still_writes_every_frame_once_and_reuses_the_detections_of_still_frames(tmp_path: Path) -> None:
    clip = _still_then_moving_clip(tmp_path / "still.mp4")
    runs = {}
    for skip in (False, True):
        out = tmp_path / f"{skip}.jsonl"
        config = AnalyzeConfig(video=clip, out=out, skip_still=skip, model=ModelConfig(weights="random"))
        analyze(config, progress=False, detector_factory=bright_box_factory)
        runs[skip] = _lines(out)
    full, skipped = runs[False], runs[True]
    assert [line["frame"] for line in skipped] == list(range(40)), "every frame once, in order"
    assert not any("reused" in line for line in full), "off by default: the model ran on every frame"
    reused = [line["frame"] for line in skipped if line.get("reused")]
    assert 0 not in reused and not set(range(11, 20)) & set(reused), "the first frame and moving ones ran"
    assert set(range(5, 10)) <= set(reused) and set(range(22, 40)) <= set(reused), reused
    for a, b in zip(full, skipped, strict=True):
        np.testing.assert_allclose(a["detections"][0]["box"], b["detections"][0]["box"], atol=1.0)
