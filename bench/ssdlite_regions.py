"""Is a motion region worth a look for ``ssdlite-people``? Whole frames against regions, on real footage.

    python -m bench.ssdlite_regions [--video vtest.avi] [--frames 300] [--json DIR]

The network sees every input at 300x300: a region cut from a 427x240 frame
costs what the whole frame costs, but it is magnified (a third of the
frame's height becomes 300 pixels), which may find people too small for
the whole frame. On every frame of the video where something moved (the
capture stage's motion detector), this looks once at the whole frame and
once at the regions the inference stage would plan (``detection/regions.py``:
around the motion and the last look's people), the last look standing
outside them as it does live, and counts the people (score >= 0.5) each
finds, those only one of them finds (IoU < 0.5 with every box of the
other), and what each costs (looks, milliseconds).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.people import PEDESTRIANS, SIZE, read_video
from bench.results_io import machine_line, report, table_head
from detectord.detection import Detections, DetectorOptions, load
from detectord.detection.devices import describe_machine
from detectord.detection.motion import MotionConfig, MotionDetector
from detectord.detection.regions import combine, plan
from detectord.detection.registry import SSDLITE_PROBABILITIES
from detectord.detection.tracking import box_iou

BENCH = "ssdlite_regions"


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--video", type=Path, default=PEDESTRIANS)
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument(
        "--precision", default="fp32-fused+channels_last",
        help="an eager scheme: a compiled one compiles again for every crop size",
    )  # fmt: skip
    parser.add_argument("--json", type=Path)
    return parser


def people(found: Detections) -> np.ndarray:
    return found.boxes[found.scores >= SSDLITE_PROBABILITIES.main_person]


def only_in(mine: np.ndarray, theirs: np.ndarray) -> int:
    """Boxes of ``mine`` that overlap none of ``theirs`` by IoU 0.5."""
    if not len(mine):
        return 0
    if not len(theirs):
        return len(mine)
    return int((box_iou(mine, theirs).max(axis=1) < 0.5).sum())


def main(args: argparse.Namespace) -> dict[str, Any]:
    frames, fps = read_video(args.video, args.frames)
    detector = load(DetectorOptions(name="ssdlite-people", precision=args.precision), SIZE)
    detector(frames[:1])
    motion = MotionDetector(MotionConfig(), SIZE)
    totals = {"frames": 0, "region_frames": 0, "looks": 0, "whole_ms": 0.0, "regions_ms": 0.0}
    counts = {"whole": 0, "regions": 0, "only_whole": 0, "only_regions": 0, "small_only_regions": 0}
    last: Detections | None = None
    for i, frame in enumerate(frames):
        moved = motion.detect(frame, i / fps)
        start = time.perf_counter()
        (whole,) = detector([frame])
        whole_ms = 1000 * (time.perf_counter() - start)
        regions = plan(SIZE, moved.boxes, last.boxes if last is not None else np.zeros((0, 4), np.float32))
        if moved and regions is not None:
            start = time.perf_counter()
            crops = [detector([frame[y1:y2, x1:x2]])[0] for x1, y1, x2, y2 in regions]
            looked = combine(crops, regions, last)
            totals["regions_ms"] += 1000 * (time.perf_counter() - start)
            totals["whole_ms"] += whole_ms
            totals["region_frames"] += 1
            totals["looks"] += len(regions)
            a, b = people(whole), people(looked)
            counts["whole"] += len(a)
            counts["regions"] += len(b)
            counts["only_whole"] += only_in(a, b)
            counts["only_regions"] += only_in(b, a)
            small = b[(b[:, 3] - b[:, 1]) < SIZE[1] / 6]
            counts["small_only_regions"] += only_in(small, a)
        totals["frames"] += 1
        last = whole
    results = {**describe_machine(), "video": str(args.video), "precision": detector.info.precision, **totals, **counts}
    return report(results, BENCH, args.json, format_table)


def format_table(r: dict[str, Any]) -> str:
    frames = max(r["region_frames"], 1)
    lines = [
        machine_line(r),
        f"ssdlite-people ({r['precision']}) on {r['frames']} frames of {r['video']} at {SIZE[0]}x{SIZE[1]}: "
        f"{r['region_frames']} frames with motion where regions were planned",
        "",
        *table_head(["looked at", "looks a frame", "ms a frame", "people >= 0.5", "only this way", "small (< 1/6)"]),
        f"| whole frame | 1.00 | {r['whole_ms'] / frames:.1f} | {r['whole']} | {r['only_whole']} | |",
        f"| regions | {r['looks'] / frames:.2f} | {r['regions_ms'] / frames:.1f} | {r['regions']} | "
        f"{r['only_regions']} | {r['small_only_regions']} |",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main(get_args_parser().parse_args())
