"""bench/people.py times hog-people on real footage and reports the scene it makes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import people


def test_people_bench_times_hog_people_and_reports_the_events_it_makes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "people.json"
    people.main(people.get_args_parser().parse_args(["--frames", "40", "--reference-frames", "0", "--json", str(out)]))
    assert "| hog-people | 40 |" in capsys.readouterr().out
    data = json.loads(out.read_text())
    hog, ssdlite = data["timing"]
    assert hog["p50_ms"] > 0 and hog["frames_with_a_person"] >= 25  # at its main-person threshold
    assert ssdlite["detector"].startswith("ssdlite-people") and ssdlite["frames_with_a_main_person"] >= 34
    assert data["ssdlite_scene"]["summary"]["events"] >= 1
    assert data["cpu_flags"] is not None and data["machine"]
    assert len(data["scene"]["timeline"]) == 40 and data["scene"]["summary"]["events"] >= 1
    assert {e["type"] for e in data["scene"]["events"]} <= {"new", "update", "end"}
