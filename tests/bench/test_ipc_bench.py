"""bench/ipc.py runs end to end and reports what the issue asks for (no timing thresholds)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import ipc


def test_ipc_bench_prints_a_table_and_writes_the_json_keys(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "ipc.json"
    args = ipc.get_args_parser().parse_args(
        ["--frames", "300", "--latency-frames", "100", "--rate", "1000", "--json", str(out)]
    )
    ipc.main(args)
    printed = capsys.readouterr().out
    assert "| FrameRing (shared memory) |" in printed
    assert "| multiprocessing.Queue (pickled ndarray) |" in printed
    data = json.loads(out.read_text())
    for key in ("ring_fps", "queue_fps", "ratio", "ring_p50_us", "ring_p99_us", "queue_p50_us", "queue_p99_us"):
        assert isinstance(data[key], float) and data[key] > 0, key
    assert abs(data["ratio"] - data["ring_fps"] / data["queue_fps"]) < 1e-9
    assert data["machine"] and isinstance(data["cpu_flags"], list)
