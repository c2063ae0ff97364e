"""Events a person can trust: scripted scenes with known people, and real footage, through two trackers.

    python -m bench.events [--video vtest.avi] [--frames 600] [--json e.json|DIR]

(a) the plain greedy IoU tracker events used before (``[events.tracking]``
all off) and (b) today's (Kalman motion, ByteTrack's second pass on weak
boxes, group boxes), side by side in one run:

* scripted scenes (``bench/scenes.py``: two people crossing, a pause,
  missed frames, low-score frames, a group box, a pillar), each at 2, 5 and
  10 processed frames a second: events per true person (1.0 is perfect),
  identity switches (a true person's track changing between two frames that
  show them alone), median event duration;
* real footage (OpenCV's pedestrian sample by default) with hog-people and
  ssdlite-people (each with its family's thresholds) at its own frame rate,
  through a camera's scene: events, their durations (share under 1 s), and
  with the main-person tracker, the share of frames with a confident person
  that have a main person.
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from bench.results_io import machine_line, report, table_head
from bench.scenes import SCENES, SIZE, Frame, Scene, frames
from detectord.detection import MainPersonTracker, Tracker
from detectord.detection.registry import HOG_MARGINS, PROBABILITIES, SSDLITE_PROBABILITIES
from detectord.detection.types import Detections, Scores
from detectord.events import EventsConfig, TrackingConfig
from detectord.events import Scene as CameraScene

PEDESTRIANS = Path("/usr/share/doc/opencv-doc/examples/data/vtest.avi")
RATES = (2.0, 5.0, 10.0)
TRACKERS = {
    "IoU (before)": TrackingConfig(motion=False, second_pass=False, groups=False),
    "ByteTrack + Kalman": TrackingConfig(),
}
EVENTS = EventsConfig(min_frames=2, end_after_s=2.0, update_interval_s=0.0)
"""The scripted scenes' settings: the daemon's, but an event may start after two frames (2 fps is slow)."""


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--video", type=Path, default=PEDESTRIANS, help="real footage with people")
    parser.add_argument("--frames", type=int, default=600, help="frames of it to play (0: every one)")
    parser.add_argument("--json", type=Path, help="write the results here (a folder: named after the machine)")
    return parser


def events_of(scene: Scene, fps: float, tracking: TrackingConfig) -> list[dict[str, Any]]:
    """The event messages a camera's scene sends for ``scene`` played at ``fps``."""
    camera = CameraScene("bench", SIZE, (), replace(EVENTS, tracking=tracking), scores=PROBABILITIES)
    blank = np.zeros((SIZE[1], SIZE[0], 3), np.uint8)
    messages = []
    for i, frame in enumerate(frames(scene, fps)):
        messages += [update.message for update in camera.observe(i, frame.time, frame.detections, blank).events]
    messages += [update.message for update in camera.close().events]
    return messages


def identity_switches(played: list[Frame], tracking: TrackingConfig, scores: Scores = PROBABILITIES) -> int:
    """Times a true person, boxed alone, is on another track than the last time they were boxed alone."""
    tracker = Tracker(
        EVENTS.match_iou, lambda track, now: now - track.seen_at <= EVENTS.end_after_s,
        motion=tracking.motion, second_pass=tracking.second_pass, groups=tracking.groups,
    )  # fmt: skip
    last: dict[int, int] = {}
    switches = 0
    for frame in played:
        scores_now = frame.detections.scores
        confident = [i for i in range(len(frame.detections)) if scores_now[i] >= scores.events]
        weak = [i for i in range(len(frame.detections)) if scores.weak <= scores_now[i] < scores.events]
        for track in tracker.update(frame.detections.boxes, confident, frame.time, weak):
            assert track.detection is not None
            who = frame.truth[track.detection]
            if len(who) != 1:
                continue
            person = who[0]
            if person in last and last[person] != track.track_id:
                switches += 1
            last[person] = track.track_id
    return switches


def scripted(tracking: TrackingConfig) -> list[dict[str, Any]]:
    rows = []
    for scene in SCENES:
        for fps in RATES:
            messages = events_of(scene, fps, tracking)
            started = {m["id"] for m in messages if m["type"] == "new"}
            durations = [m["end_time"] - m["start_time"] for m in messages if m["type"] == "end"]
            rows.append(
                {
                    "scene": scene.name,
                    "fps": fps,
                    "people": scene.people,
                    "events": len(started),
                    "events_per_person": len(started) / scene.people,
                    "id_switches": identity_switches(frames(scene, fps), tracking),
                    "median_duration_s": statistics.median(durations) if durations else None,
                }
            )
    return rows


def read_frames(video: Path, count: int) -> tuple[list[np.ndarray], float]:
    capture = cv2.VideoCapture(str(video))
    fps = capture.get(cv2.CAP_PROP_FPS) or 10.0
    out = []
    while not count or len(out) < count:
        ok, frame = capture.read()
        if not ok:
            break
        out.append(cv2.resize(frame, SIZE, interpolation=cv2.INTER_AREA))
    capture.release()
    return out, fps


def real_footage(
    detections: list[Detections], fps: float, tracking: TrackingConfig, scores: Scores = HOG_MARGINS
) -> dict[str, Any]:
    """A detector's detections of real frames through a camera's scene (the daemon's settings) at ``fps``."""
    camera = CameraScene("bench", SIZE, (), EventsConfig(tracking=tracking), scores=scores)
    blank = np.zeros((SIZE[1], SIZE[0], 3), np.uint8)
    messages = []
    for i, found in enumerate(detections):
        messages += [update.message for update in camera.observe(i, i / fps, found, blank).events]
    messages += [update.message for update in camera.close().events]
    durations = [m["end_time"] - m["start_time"] for m in messages if m["type"] == "end"]
    return {
        "events": len({m["id"] for m in messages if m["type"] == "new"}),
        "median_duration_s": statistics.median(durations) if durations else None,
        "under_1s": sum(d < 1.0 for d in durations) / len(durations) if durations else None,
        "durations_s": [round(d, 2) for d in durations],
    }


def main_person_coverage(detections: list[Detections], fps: float, scores: Scores = HOG_MARGINS) -> dict[str, int]:
    """Frames with a person at the main person's threshold (the detector's scale), and how many of them have a
    main person."""
    tracker = MainPersonTracker(scores=scores)
    confident = with_main = 0
    for i, found in enumerate(detections):
        main = tracker.update(found, i / fps)
        if len(found) and float(found.scores.max()) >= scores.main_person:
            confident += 1
            with_main += main is not None
    return {"frames_with_a_confident_person": confident, "with_a_main_person": with_main}


def main(args: argparse.Namespace) -> dict[str, Any]:
    from detectord.detection.devices import describe_machine
    from detectord.detection.opencv.hog import HogPeopleDetector
    from detectord.detection.registry import DetectorOptions, load

    pictures, fps = read_frames(args.video, args.frames)
    found = HogPeopleDetector(SIZE)(pictures)
    ssdlite = load(DetectorOptions(name="ssdlite-people"), SIZE)
    learnt = [d for i in range(0, len(pictures), 4) for d in ssdlite(pictures[i : i + 4])]
    results = {
        "video": str(args.video),
        "frames": len(pictures),
        "video_fps": fps,
        "trackers": {
            name: {"scripted": scripted(tracking), "real": real_footage(found, fps, tracking)}
            for name, tracking in TRACKERS.items()
        },
        "main_person": main_person_coverage(found, fps),
        "ssdlite": {
            "precision": ssdlite.info.precision,
            "real": real_footage(learnt, fps, TrackingConfig(), SSDLITE_PROBABILITIES),
            "main_person": main_person_coverage(learnt, fps, SSDLITE_PROBABILITIES),
        },
        **describe_machine(),
    }
    return report(results, "events", args.json, format_table)


def _mean(values: Iterable[float]) -> float:
    values = list(values)
    return sum(values) / len(values) if values else float("nan")


def format_table(r: dict[str, Any]) -> str:
    names = list(r["trackers"])
    lines = [
        f"events per person: scripted scenes at {', '.join(f'{f:g}' for f in RATES)} processed fps, and "
        f"hog-people on {Path(r['video']).name} ({r['frames']} frames at {r['video_fps']:g} fps)",
        machine_line(r),
        "",
        *table_head(["scene", "fps", *(f"{name}: events/person, switches" for name in names)]),
    ]
    rows = {name: r["trackers"][name]["scripted"] for name in names}
    for i, row in enumerate(rows[names[0]]):
        cells = [f"{rows[name][i]['events_per_person']:.2f}, {rows[name][i]['id_switches']}" for name in names]
        lines.append(f"| {row['scene']} | {row['fps']:g} | " + " | ".join(cells) + " |")
    lines.append(
        "| all scenes | | "
        + " | ".join(
            f"{_mean(x['events_per_person'] for x in rows[name]):.2f}, {sum(x['id_switches'] for x in rows[name])}"
            for name in names
        )
        + " |"
    )
    lines += ["", *table_head(["real footage", *names])]
    real = {name: r["trackers"][name]["real"] for name in names}
    lines.append("| events | " + " | ".join(str(real[name]["events"]) for name in names) + " |")
    lines.append(
        "| median duration s | " + " | ".join(f"{real[name]['median_duration_s'] or 0:.1f}" for name in names) + " |"
    )
    lines.append("| ended under 1 s | " + " | ".join(f"{(real[name]['under_1s'] or 0):.0%}" for name in names) + " |")
    mains = [("hog-people", r["main_person"])]
    if "ssdlite" in r:  # runs from before ssdlite-people have hog-people only
        mains.append(("ssdlite-people", r["ssdlite"]["main_person"]))
        lines += _detectors_table(r, real[names[-1]], names[-1])
    for name, main in mains:
        share = main["with_a_main_person"] / max(main["frames_with_a_confident_person"], 1)
        lines.append(
            f"{name} main person: in {main['with_a_main_person']} of the {main['frames_with_a_confident_person']} "
            f"frames with a person at its main-person threshold ({share:.0%})"
        )
    return "\n".join(lines)


def _detectors_table(r: dict[str, Any], hog: dict[str, Any], tracker: str) -> list[str]:
    ssdlite = r["ssdlite"]["real"]
    return [
        "",
        f"the two detectors on the same footage ({tracker}; ssdlite-people at {r['ssdlite']['precision']}):",
        *table_head(["real footage", "hog-people", "ssdlite-people"]),
        f"| events | {hog['events']} | {ssdlite['events']} |",
        f"| median duration s | {hog['median_duration_s'] or 0:.1f} | {ssdlite['median_duration_s'] or 0:.1f} |",
        f"| ended under 1 s | {hog['under_1s'] or 0:.0%} | {ssdlite['under_1s'] or 0:.0%} |",
        "",
    ]


if __name__ == "__main__":
    main(get_args_parser().parse_args())
