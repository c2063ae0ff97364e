"""bench/latency.py runs the real daemon against a real Mosquitto and reports the issue's JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import latency, synthetic_clip


def test_latency_bench_reports_every_stage_and_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    clip = tmp_path / "clip.mp4"
    synthetic_clip.write_clip(clip, frames=30, width=640, height=360, fps=25)
    out = tmp_path / "latency.json"
    args = latency.get_args_parser().parse_args(
        ["--video", str(clip), "--frames", "4", "--warmup", "1", "--json", str(out), "--", "--device", "cpu"]
    )
    latency.main(args)
    assert "| end to end (capture -> subscriber) |" in capsys.readouterr().out
    data = json.loads(out.read_text())
    assert data["frames"] == 4 and data["dropped"] >= 0
    assert set(data["stages"]) == {"capture_to_inference", "inference", "inference_to_publish", "publish_to_subscriber"}
    for stats in (*data["stages"].values(), data["end_to_end"]):
        assert set(stats) == {"p50_ms", "p90_ms", "p99_ms"}
    assert data["end_to_end"]["p50_ms"] >= data["inference"]["p50_ms"] > 0
    assert set(data["uss_mb"]) == {"supervisor", "capture", "inference", "publish"}
    assert all(mb > 0 for mb in data["uss_mb"].values()) and data["cpu_flags"] is not None
