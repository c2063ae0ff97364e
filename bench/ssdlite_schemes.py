"""Every precision scheme on a trained network: ``ssdlite-people`` on real footage, speed and fidelity.

    python -m bench.ssdlite_schemes [--video vtest.avi] [--frames 120] [--json DIR]

The schemes this machine runs (``detection/torchvision/tuning.py schemes_for``: bfloat16 ones only where the
CPU computes in bfloat16; int8-static calibrated on a quarter of the frames, where the CPU has int8 dot
products or not), each on the same frames of a video with people (OpenCV's pedestrian sample by default) at
427x240: latency one frame at a time (p50) and the best throughput over batches of 1, 2 and 4; fidelity to
fp32 as the COCO mAP of its detections scored against fp32's, the main person's IoU, and the share of fp32's
people (score >= 0.5) it finds too. Unlike Faster R-CNN's table (random weights, ``bench/quantization.py``),
these detections are real people, so the fidelity numbers mean what they say.
"""

from __future__ import annotations

import argparse
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bench.people import PEDESTRIANS, SIZE, read_video
from bench.results_io import machine_line, report, table_head
from detectord.detection.auto import choose_ssdlite_precision
from detectord.detection.devices import describe_machine
from detectord.detection.registry import SSDLITE_PROBABILITIES, DetectorOptions, calibrate
from detectord.detection.torchvision.models import device_features, resolve_device
from detectord.detection.torchvision.quantization import save_calibration
from detectord.detection.torchvision.tuning import measure, schemes_for

BENCH = "ssdlite_schemes"
NAME = "ssdlite-people"


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--video", type=Path, default=PEDESTRIANS)
    parser.add_argument("--frames", type=int, default=120)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--schemes", help="comma-separated; default: every scheme this device runs")
    parser.add_argument("--json", type=Path)
    return parser


def main(args: argparse.Namespace) -> dict[str, Any]:
    frames, _ = read_video(args.video, args.frames)
    device = resolve_device(args.device)
    schemes = args.schemes.split(",") if args.schemes else schemes_for(device, NAME)
    with tempfile.TemporaryDirectory(prefix="detectord-ssdlite-") as scratch:
        calibration = None
        if "int8-static" in schemes:
            calibration = Path(scratch) / "int8.pt"
            save_calibration(calibrate(DetectorOptions(name=NAME), frames[::4], SIZE, str(args.video)), calibration)
        results = measure(
            frames, name=NAME, weights="default", profile="default", device=args.device, frame_size=SIZE,
            calibration=calibration, main_threshold=SSDLITE_PROBABILITIES.main_person, schemes=schemes,
        )  # fmt: skip
    features = device_features(device)
    return report(
        {
            **describe_machine(),
            "model": NAME,
            "video": str(args.video),
            "frames": len(frames),
            "device": str(device),
            "auto": choose_ssdlite_precision(features).precision,
            "auto_calibrated": choose_ssdlite_precision(features, Path("calibration")).precision,
            "schemes": [asdict(r) for r in results],
        },
        BENCH,
        args.json,
        format_table,
    )


def _cell(value: float | None, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def format_table(results: dict[str, Any]) -> str:
    rows = results["schemes"]
    fp32 = rows[0]["p50_ms"] or 1.0
    lines = [
        machine_line(results),
        f"{results['model']} (trained: the package's graph), {results['frames']} frames of {results['video']} at "
        f"{SIZE[0]}x{SIZE[1]} on {results['device']}; auto here: {results['auto']} ({results['auto_calibrated']} "
        "with a calibration)",
        "",
        *table_head(["scheme", "p50 ms", "speed-up", "best fps (batch)", "fidelity mAP", "main IoU", "people found"]),
    ]
    for r in rows:
        if r["refused"]:
            lines.append(f"| {r['precision']} | refused: {r['refused']} | | | | | |")
            continue
        lines.append(
            f"| {r['precision']} | {r['p50_ms']:.1f} | {fp32 / r['p50_ms']:.2f}x | {r['best_fps']:.1f} "
            f"({r['best_batch']}) | {_cell(r['fidelity_map'], '.3f')} | {_cell(r['main_person_iou'], '.3f')} | "
            f"{_cell(r['people_found'], '.1%')} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main(get_args_parser().parse_args())
