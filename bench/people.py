"""The two person detectors that need no download on real footage: time per frame, people found, events.

    python -m bench.people [--video vtest.avi] [--frames 300] [--reference-frames 4] [--json PATH]

Reads ``--frames`` frames of a video with people (by default OpenCV's
sample of pedestrians, which Debian's opencv-doc installs) at 427x240, runs
hog-people and ssdlite-people (its default precision) on every one and
Faster R-CNN (default profile and precision, untrained weights: the same
cost as trained) on the first ``--reference-frames``, and prints them side
by side: time, frames with a person, frames with a main person. Then it
plays each person detector's detections through a camera's scene
(``detectord.events``) at the video's own frame rate, with a zone on the
right half of the picture, and prints the person count, occupancy and
events that come out: what the daemon would publish.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from bench.results_io import machine_line, report, table_head
from detectord.detection import Detections, DetectorOptions, MainPersonTracker, Scores, load
from detectord.detection.devices import describe_machine
from detectord.detection.opencv.hog import HogPeopleDetector
from detectord.detection.registry import HOG_MARGINS, SSDLITE_PROBABILITIES
from detectord.events import EventsConfig, Scene, ZoneConfig, resolve_zones

PEDESTRIANS = Path("/usr/share/doc/opencv-doc/examples/data/vtest.avi")
SIZE = (427, 240)
ZONE = ZoneConfig("right", ((0.5, 0.0), (1.0, 0.0), (1.0, 1.0), (0.5, 1.0)), normalized=True)


def read_video(path: Path, count: int) -> tuple[list[np.ndarray], float]:
    """Up to ``count`` frames at 427x240, and the video's frame rate."""
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise SystemExit(f"cannot open {path}")
    fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
    frames = []
    while len(frames) < count:
        ok, image = capture.read()
        if not ok:
            break
        frames.append(cv2.resize(image, SIZE, interpolation=cv2.INTER_AREA))
    capture.release()
    return frames, fps


def timed(detector: Any, frames: list[np.ndarray]) -> tuple[list[Detections], list[float]]:
    found, times = [], []
    for frame in frames:
        start = time.perf_counter()
        found += detector([frame])
        times.append((time.perf_counter() - start) * 1000.0)
    return found, times


def timing(name: str, times: list[float], found: list[Detections], scores: Scores = HOG_MARGINS) -> dict[str, Any]:
    tracker = MainPersonTracker(scores=scores)
    with_main = sum(tracker.update(d, float(i)) is not None for i, d in enumerate(found))
    return {
        "detector": name,
        "frames": len(times),
        "p50_ms": round(float(np.percentile(times, 50)), 1),
        "p90_ms": round(float(np.percentile(times, 90)), 1),
        "fps": round(1000.0 / float(np.mean(times)), 2),
        "frames_with_a_person": sum(bool((d.scores >= scores.main_person).any()) for d in found),
        "frames_with_a_main_person": with_main,
    }


def play(found: list[Detections], frames: list[np.ndarray], fps: float, scores: Scores = HOG_MARGINS) -> dict[str, Any]:
    """The scene's count, occupancy and events over the clip, frame ``i`` taken at ``i / fps`` seconds."""
    scene = Scene("bench", SIZE, resolve_zones([ZONE], SIZE), EventsConfig(), scores=scores)
    timeline, events = [], []
    for i, (detections, frame) in enumerate(zip(found, frames, strict=True)):
        changes = scene.observe(i, i / fps, detections, frame)
        events += [update.message for update in changes.events]
        timeline.append([round(i / fps, 2), scene.count, int(scene.occupancy.on), scene.zone_counts[ZONE.name]])
    events += [update.message for update in scene.close().events]
    ended = [e for e in events if e["type"] == "end"]
    return {
        "timeline": timeline,
        "timeline_columns": ["t_s", "person_count", "occupancy", f"zone_{ZONE.name}_count"],
        "events": [{k: list(v) if isinstance(v, tuple) else v for k, v in e.items()} for e in events],
        "summary": {
            "events": len(ended),
            "messages": len(events),
            "seconds_occupied": round(sum(row[2] for row in timeline) / fps, 1),
            "most_people": max((row[1] for row in timeline), default=0),
            "entered_zone": sum(ZONE.name in e["entered_zones"] for e in ended),
        },
    }


def format_table(r: dict[str, Any]) -> str:
    reference = r["timing"][-1]
    columns = ["detector", "frames", "p50 ms", "p90 ms", "fps", "frames with a person", "with a main person"]
    lines = [
        f"person detectors on {r['video']} at {SIZE[0]}x{SIZE[1]} ({r['timing'][0]['frames']} frames)",
        machine_line(r),
        "",
        *table_head([*columns, "speed vs the last row"]),
    ]
    for t in r["timing"]:
        lines.append(
            f"| {t['detector']} | {t['frames']} | {t['p50_ms']} | {t['p90_ms']} | {t['fps']} | "
            f"{t['frames_with_a_person']} | {t.get('frames_with_a_main_person', '-')} | "
            f"{t['fps'] / reference['fps']:.1f}x |"
        )
    lines += ["", "(a person: at the detector's main-person threshold; Faster R-CNN untrained: its time is the "
              "trained network's, its boxes are meaningless.)"]  # fmt: skip
    for name, key in (("hog-people", "scene"), ("ssdlite-people", "ssdlite_scene")):
        if key not in r:  # a run from before ssdlite-people
            continue
        s = r[key]["summary"]
        lines.append(
            f"{name}'s scene at {r['video_fps']:.0f} fps: {s['events']} person events ({s['messages']} messages), "
            f"at most {s['most_people']} people at once, occupied {s['seconds_occupied']} s of "
            f"{r[key]['timeline'][-1][0]:.1f} s, {s['entered_zone']} events entered zone '{ZONE.name}'"
        )
    return "\n".join(lines)


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--video", type=Path, default=PEDESTRIANS)
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--reference-frames", type=int, default=4, help="Faster R-CNN frames timed (0: none)")
    parser.add_argument("--json", type=Path, metavar="PATH")
    return parser


def main(args: argparse.Namespace) -> dict[str, Any]:
    frames, fps = read_video(args.video, args.frames)
    if not frames:
        raise SystemExit(f"{args.video} has no frames")
    hog, hog_times = timed(HogPeopleDetector(SIZE), frames)
    ssdlite = load(DetectorOptions(name="ssdlite-people"), SIZE)
    ssdlite(frames[:1])  # the first call allocates
    learnt, learnt_times = timed(ssdlite, frames)
    results: dict[str, Any] = {
        "video": str(args.video),
        "video_fps": fps,
        "timing": [
            timing("hog-people", hog_times, hog),
            timing(f"ssdlite-people ({ssdlite.info.precision})", learnt_times, learnt, SSDLITE_PROBABILITIES),
        ],
        **describe_machine(),
    }
    if args.reference_frames:
        from detectord.detection.torchvision.models import load_detector

        reference = load_detector(weights="random", device="cpu", frame_size=SIZE)
        reference([frames[0]])  # the first call allocates
        found, times = timed(reference, frames[: args.reference_frames])
        precision = reference.info.precision
        results["timing"].append(timing(f"fasterrcnn_resnet50_fpn ({precision}, random)", times, found))
    results["scene"] = play(hog, frames, fps)
    results["ssdlite_scene"] = play(learnt, frames, fps, SSDLITE_PROBABILITIES)
    return report(results, "people", args.json, format_table)


if __name__ == "__main__":
    main(get_args_parser().parse_args())
