"""bench/web.py runs Mosquitto, the viewer and WebSocket clients and writes the issue's JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import web


def test_web_bench_reports_delivery_latency_and_server_cpu(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "web.json"
    web.main(web.get_args_parser().parse_args(["--clients", "3", "--seconds", "2", "--json", str(out)]))
    assert "| client fps min |" in capsys.readouterr().out
    data = json.loads(out.read_text())
    keys = {"clients", "publish_fps", "client_fps_min", "client_fps_median", "latency_p50_ms", "latency_p99_ms",
            "server_cpu_percent"}  # fmt: skip
    assert keys <= set(data)
    assert data["clients"] == 3 and data["client_fps_min"] > 0 and data["latency_p50_ms"] > 0
    assert data["machine"] and isinstance(data["cpu_flags"], list)
