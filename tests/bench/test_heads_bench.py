"""bench/heads.py: the RPN head's exact-output variants side by side, with how far each strays from the first."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import heads


def test_heads_bench_times_each_variant_and_reports_its_difference_from_contiguous(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "heads.json"
    heads.main(heads.get_args_parser().parse_args(["--frames", "1", "--runs", "1", "--json", str(out)]))
    table = capsys.readouterr().out
    assert "CPU flags: " in table and "| channels-last |" in table
    assert "| Inductor, frozen weights |" in table
    data = json.loads(out.read_text())
    variants = data["variants"]
    assert set(variants) == {"contiguous (as torchvision)", "channels-last", "Inductor, frozen weights"}
    assert variants["contiguous (as torchvision)"]["max_difference"] == 0.0
    for name, row in variants.items():
        assert row["ms"] > 0, name
        assert row["max_difference"] <= 1e-4 * max(data["largest_output"], 1.0), f"{name} keeps the outputs"
