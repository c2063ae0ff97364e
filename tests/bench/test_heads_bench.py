"""bench/heads.py: the RPN head's exact-output variants timed in the whole model, with how far each strays."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import heads


def test_heads_bench_times_each_variant_and_reports_its_difference_from_the_head_as_loaded(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "heads.json"
    args = ["--frames", "1", "--runs", "1", "--precision", "fp32-fused", "--json", str(out)]
    heads.main(heads.get_args_parser().parse_args(args))
    table = capsys.readouterr().out
    assert "CPU flags: " in table and "| channels-last |" in table
    assert "| Inductor, frozen weights |" in table and "precision fp32-fused" in table
    data = json.loads(out.read_text())
    variants = data["variants"]
    assert set(variants) == {"as loaded", "channels-last", "Inductor, frozen weights"}
    assert variants["as loaded"]["max_difference"] == 0.0
    for name, row in variants.items():
        assert row["frame_ms"] > 0, name
        assert row["max_difference"] <= 1e-4 * max(data["largest_output"], 1.0), f"{name} keeps the outputs"
