"""bench/cameras.py compares one daemon with N cameras to N daemons, and writes the issue's JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import cameras, synthetic_clip


def test_cameras_bench_compares_one_daemon_to_several(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    clip = tmp_path / "clip.mp4"
    synthetic_clip.write_clip(clip, frames=20, width=640, height=360, fps=25)
    out = tmp_path / "cameras.json"
    args = cameras.get_args_parser().parse_args(
        ["--video", str(clip), "--cameras", "1,2", "--fps", "5", "--seconds", "4", "--warmup", "1",
         "--model", "fasterrcnn_mobilenet_v3_large_320_fpn", "--device", "cpu", "--json", str(out)]
    )  # fmt: skip
    cameras.main(args)
    assert "| 2 | (a)/(b) |" in capsys.readouterr().out
    data = json.loads(out.read_text())
    assert set(data) >= {"machine", "cpu_flags", "runs"}
    assert [run["cameras"] for run in data["runs"]] == [1, 2]
    for run in data["runs"]:
        for side in ("shared", "separate"):
            assert set(run[side]) == set(cameras.KEYS)
            assert run[side]["aggregate_fps"] > 0 and run[side]["pss_mb"] > 0
