"""bench/throughput.py runs all three loops on the same frames and reports them (no timing thresholds)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import synthetic_clip, throughput
from detectord.daemon.stages.sources import probe_video, sample_video
from detectord.detection.auto import DeviceFeatures, choose_precision
from detectord.detection.devices import cpu_description
from detectord.detection.torchvision.models import calibrate_detector
from detectord.detection.torchvision.quantization import save_calibration


def test_throughput_bench_compares_the_reference_loop_with_the_pipeline(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    clip = tmp_path / "clip.mp4"
    synthetic_clip.main(synthetic_clip.get_args_parser().parse_args([str(clip), "--frames", "4", "--size", "640x360"]))
    out = tmp_path / "throughput.json"
    calibration = tmp_path / "int8.pt"
    frames = sample_video(probe_video(clip), 2, (427, 240))
    save_calibration(calibrate_detector(frames, weights="random", frame_size=(427, 240)), calibration)
    args = throughput.get_args_parser().parse_args(
        [str(clip), "--frames", "2", "--weights", "random", "--device", "cpu", "--calibration", str(calibration),
         "--json", str(out)]
    )  # fmt: skip
    throughput.main(args)
    table = capsys.readouterr().out
    assert "| (a) reference loop" in table and "| (c) detectord analyze --precision fp32" in table
    data = json.loads(out.read_text())
    for key in ("reference_fps", "same_work_fps", "default_fps", "auto_fps", "same_work_ratio", "default_ratio",
                "auto_ratio"):  # fmt: skip
        assert data[key] > 0, key
    assert data["auto_precision"] == choose_precision(DeviceFeatures("cpu", cpu_description()[1])).precision
    assert f"--precision auto = {data['auto_precision']}" in table
    assert data["cpu_flags"] == list(cpu_description()[1])
    assert data["frames"] == 2
    assert data["runs"]["reference"]["inferred"] == 2
    assert (
        data["runs"]["same_work"]["frames"] == data["runs"]["default"]["frames"] == data["runs"]["auto"]["frames"] == 2
    )
    calibrated = choose_precision(DeviceFeatures("cpu", cpu_description()[1]), calibration).precision
    assert data["calibrated_precision"] == calibrated and data["runs"]["calibrated"]["frames"] == 2
    assert data["calibrated_fps"] > 0 and f"| (e) detectord analyze --calibration FILE (auto = {calibrated})" in table


def test_the_reference_loop_drops_the_frame_read_when_a_batch_is_full(tmp_path: Path) -> None:
    """Faithful to the notebook (batches of 12 there, of 1 here to keep the test short): 3 read, 2 inferred."""
    clip = tmp_path / "clip.mp4"
    synthetic_clip.write_clip(clip, frames=3, width=160, height=90, fps=25)
    result = throughput.reference_loop(clip, 3, "random", throughput.resolve_device("cpu"), batch_size=1)
    assert (result["read"], result["inferred"]) == (3, 2)
