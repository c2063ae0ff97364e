"""bench/quantization.py: every scheme in one run, one table, the JSON the issue names (no timing thresholds)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from bench import quantization, synthetic_clip
from detectord.detection.devices import cpu_description, machine_tag

KEYS = {
    "latency_p50_ms", "latency_p90_ms", "fps_batch1", "fps_best", "best_batch", "size_mb", "peak_mem_mb",
    "fidelity_map", "main_person_iou", "coco_map", "coco_person_map",
}  # fmt: skip


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU's refusals")
def test_quantization_bench_measures_every_scheme_side_by_side(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    clip = tmp_path / "clip.mp4"
    synthetic_clip.write_clip(clip, frames=6, width=640, height=360, fps=25)
    results = tmp_path / "results"
    results.mkdir()
    args = quantization.get_args_parser().parse_args(
        ["--video", str(clip), "--frames", "2", "--weights", "random", "--device", "cpu",
         "--schemes", "fp32,fp32-fused,bf16,int8-dynamic,int8-static,int8-static-fx,fp16", "--batches", "1,2",
         "--calibration-frames", "2", "--score-threshold", "0.05", "--main-threshold", "0.05",
         "--json", str(results)]
    )  # fmt: skip
    quantization.main(args)
    table = capsys.readouterr().out
    assert "| int8-static |" in table and "| int8-static-fx |" in table
    assert "| fp16 | refused: fp16 needs a CUDA device" in table
    assert "CPU flags: " in table
    (out,) = results.iterdir()
    assert out.name == f"quantization-{machine_tag()}.json", "a folder: the file is named after the machine"
    data = json.loads(out.read_text())
    assert data["cpu_flags"] == list(cpu_description()[1])
    assert set(data["schemes"]["bf16"]) >= KEYS, "bf16 is measured, or refused with its reason, like the others"
    assert data["device"] == "cpu" and data["profile"] == "default" and data["frames"] == 2
    schemes = data["schemes"]
    assert set(schemes) == {"fp32", "fp32-fused", "bf16", "int8-dynamic", "int8-static", "int8-static-fx", "fp16"}
    for name in ("fp32", "fp32-fused", "int8-dynamic", "int8-static", "int8-static-fx"):
        assert set(schemes[name]) >= KEYS, name
        assert schemes[name]["latency_p50_ms"] > 0 and schemes[name]["best_batch"] in (1, 2)
        assert schemes[name]["coco_map"] is None, "no --coco: not measured, and said so"
    assert schemes["fp32"]["fidelity_map"] == pytest.approx(1.0)
    assert schemes["fp32-fused"]["fidelity_map"] > 0.9, "folding does not change numerics"
    for flow in ("int8-static", "int8-static-fx"):
        assert schemes[flow]["size_mb"] < 0.6 * schemes["fp32"]["size_mb"], "the backbone's weights are int8"
    assert schemes["fp16"]["latency_p50_ms"] is None and "refused" in schemes["fp16"]
