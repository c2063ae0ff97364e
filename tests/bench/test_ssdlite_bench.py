"""bench/ssdlite_schemes.py measures the schemes of a trained network; bench/ssdlite_reference.py's matching."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bench import ssdlite_reference, ssdlite_schemes


def test_the_schemes_bench_reports_speed_and_real_fidelity_with_the_cpu(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "schemes.json"
    args = ["--frames", "6", "--schemes", "fp32,fp32-fused,int8-dynamic", "--json", str(out)]
    ssdlite_schemes.main(ssdlite_schemes.get_args_parser().parse_args(args))
    printed = capsys.readouterr().out
    assert "CPU flags:" in printed and "| fp32-fused |" in printed and "refused" in printed
    data = json.loads(out.read_text())
    fused = next(r for r in data["schemes"] if r["precision"] == "fp32-fused")
    assert fused["fidelity_map"] > 0.99 and fused["people_found"] == 1.0 and fused["p50_ms"] > 0
    assert data["auto"] and data["machine"]


def test_the_reference_bench_matches_box_for_box_and_counts_what_is_left() -> None:
    """A detection is matched at IoU 0.98 with its score within 0.01, each port detection once."""
    graph = (np.array([[0.1, 0.1, 0.5, 0.3], [0.6, 0.6, 0.9, 0.8]]), np.array([0.9, 0.4]))
    same = (graph[0] + 0.0005, graph[1] + 0.001)
    assert ssdlite_reference.compare(graph, same, 0.3)[:4] == (2, 2, 2, 0)
    shifted = (graph[0] + np.array([0.05, 0, 0.05, 0]), graph[1])
    assert ssdlite_reference.compare(graph, shifted, 0.3)[:4] == (2, 0, 2, 2)
    rescored = (graph[0], graph[1] - np.array([0.0, 0.05]))
    assert ssdlite_reference.compare(graph, rescored, 0.3)[:4] == (2, 1, 2, 1)


def test_the_regions_bench_compares_whole_frames_with_regions_on_moving_frames(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from bench import ssdlite_regions

    out = tmp_path / "regions.json"
    ssdlite_regions.main(ssdlite_regions.get_args_parser().parse_args(["--frames", "30", "--json", str(out)]))
    assert "| whole frame | 1.00 |" in capsys.readouterr().out
    data = json.loads(out.read_text())
    assert data["frames"] == 30 and data["region_frames"] >= 10 and data["looks"] >= data["region_frames"]
    assert data["whole"] > 0 and data["regions"] > 0
