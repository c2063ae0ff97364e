"""The model runs where something moves: the live daemon with and without motion gating, side by side.

    python -m bench.motion [--video vtest.avi] [--seconds 60] [--json m.json|DIR]

Clips are made from real footage (OpenCV's pedestrian sample by default, a
fixed camera): its still background (the median of its frames) with camera
noise and JPEG compression for most of the time, and the real footage, its
pedestrians walking, for a known share of it (``--people``, 20 %). The
"difficult" variant adds a light switched on and off, and a region of
swaying leaves that the camera's motion mask covers. Every clip is played
by the real daemon (paced, like a camera, with ``hog-people``, which finds
real people in real footage) against a private Mosquitto, while a
subscriber records everything it publishes:

* (a) the people clip and (b) the difficult one, gated and ungated: model
  calls per camera-second, the CPU of each process, events (start, end),
  the count and occupancy over time; then whether gating found every event
  the ungated run found (start within 1 s), their number, occupancy's
  turns (within 1 s);
* (c) a still clip alone: the whole daemon's CPU, gated and ungated;
* (d) 8 cameras in one daemon, 2 with people and 6 still, against each
  active camera alone and against the two active ones without the still
  ones: the model's frames per second on the active ones;
* (e) ``detectord analyze --skip-still`` against a full run on a clip still
  80 % of the time: frames per second, and how well the reused boxes agree
  with the model's (IoU).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import psutil

from bench.listener import Listener
from bench.results_io import machine_line, report, table_head
from detectord.daemon.cli.mosquitto import Mosquitto
from detectord.detection.tracking import box_iou

PEDESTRIANS = Path("/usr/share/doc/opencv-doc/examples/data/vtest.avi")
SIZE = (427, 240)
FPS = 10.0
LEAVES = (300, 10, 420, 90)
"""x1, y1, x2, y2 (427x240 pixels) of the swaying leaves of the difficult clip, under its motion mask."""
MASK = "[[[0.70, 0.0], [1.0, 0.0], [1.0, 0.4], [0.70, 0.4]]]"
"""The difficult clip's motion mask (normalised), covering the leaves."""


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--video", type=Path, default=PEDESTRIANS, help="real footage of a fixed camera")
    parser.add_argument("--seconds", type=float, default=60.0, help="length of each clip")
    parser.add_argument("--people", type=float, default=0.2, help="share of the time people walk")
    parser.add_argument("--cameras", type=int, default=8, help="cameras of (d), two of them with people")
    parser.add_argument("--json", type=Path, help="write the results here (a folder: named after the machine)")
    return parser


# -- clips ---------------------------------------------------------------------------


def read_footage(video: Path) -> list[np.ndarray]:
    capture = cv2.VideoCapture(str(video))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(cv2.resize(frame, SIZE, interpolation=cv2.INTER_AREA))
    capture.release()
    if len(frames) < 20:
        raise SystemExit(f"{video}: too few frames to make clips from")
    return frames


@dataclass(frozen=True)
class Clip:
    path: Path
    seconds: float
    people: list[tuple[float, float]]
    """(start, end) of each stretch with people, seconds into the clip."""


def make_clip(
    footage: list[np.ndarray], path: Path, seconds: float, people: float, difficult: bool = False, seed: int = 0
) -> Clip:
    """Still background (camera noise, JPEG) with ``people`` of the time real footage: two stretches, at a third
    and at two thirds. ``difficult``: a light switched on from 40 % to 55 % of the clip, and leaves swaying."""
    rng = np.random.default_rng(seed)
    background = np.median(np.stack(footage[:: max(1, len(footage) // 40)]), axis=0).astype(np.uint8)
    count = int(seconds * FPS)
    stretch = people * seconds / 2
    stretches = [(seconds / 3, seconds / 3 + stretch), (2 * seconds / 3, 2 * seconds / 3 + stretch)]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), FPS, SIZE)
    played = 0
    for i in range(count):
        t = i / FPS
        if any(start <= t < end for start, end in stretches):
            image = footage[played % len(footage)].copy()
            played += 1
        else:
            image = background.copy()
        if difficult:
            if 0.4 * seconds <= t < 0.55 * seconds:
                image = np.clip(image.astype(np.int16) * 1.5 + 30, 0, 255).astype(np.uint8)
            x1, y1, x2, y2 = LEAVES
            sway = int(6 * np.sin(2 * np.pi * 0.8 * t))
            leaves = cv2.GaussianBlur(rng.integers(40, 200, (y2 - y1, x2 - x1, 3), dtype=np.uint8), (9, 9), 0)
            image[y1:y2, x1:x2] = np.roll(leaves, sway, axis=1)
        noisy = np.clip(image + rng.normal(0, 3, image.shape), 0, 255).astype(np.uint8)
        writer.write(cv2.imdecode(cv2.imencode(".jpg", noisy, [cv2.IMWRITE_JPEG_QUALITY, 70])[1], cv2.IMREAD_COLOR))
    writer.release()
    return Clip(path, seconds, stretches)


# -- running the daemon -----------------------------------------------------------------


class Recorder(Listener):
    """Everything the daemon publishes (topic, payload, receive time)."""

    def __init__(self, port: int) -> None:
        self.messages: list[tuple[str, bytes, float]] = []
        super().__init__(port)

    def heard(self, topic: str, payload: bytes) -> None:
        self.messages.append((topic, payload, time.time()))

    def published(self, camera: str) -> Callable[[], bool]:
        """Whether ``camera`` has published a frame yet (asked later)."""
        return lambda: bool(self.of(camera, "detections"))

    def of(self, camera: str, kind: str) -> list[tuple[bytes, float]]:
        return [(payload, at) for topic, payload, at in self.messages if topic == f"detector/{camera}/{kind}"]


def _cpu_seconds(root: psutil.Process, seen: dict[int, tuple[str, float]]) -> None:
    """Note every process of ``root``'s tree and its CPU seconds so far (the last reading counts)."""
    for process in [root, *root.children(recursive=True)]:
        try:
            times = process.cpu_times()
            seen[process.pid] = (process.name(), times.user + times.system)
        except psutil.Error:
            continue


def _pss_mb(root: psutil.Process) -> float:
    """Memory of ``root``'s tree, shared memory counted once (proportional set size, summed)."""
    total = 0
    for process in [root, *root.children(recursive=True)]:
        try:
            total += process.memory_full_info().pss
        except psutil.Error:
            continue
    return total / 2**20


def run_daemon(config: str, seconds: float, port: int, tmp: Path, warm: Callable[[], bool]) -> dict[str, Any]:
    """The daemon with ``config`` (TOML) until its files end (or ``seconds`` + 60). Its CPU is counted from
    the moment ``warm()`` holds (its first frame published: start-up, model loading included, is not the
    steady cost of a camera): seconds of each process, and the wall time they were spent in; its memory
    (every process's proportional set size, summed, shared-memory rings included) at its peak."""
    path = tmp / f"daemon-{time.monotonic_ns()}.toml"
    path.write_text(config + f"[mqtt]\nport = {port}\nstats_interval_s = 1.0\nhomeassistant = false\n")
    log = tmp / f"{path.stem}.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "detectord.daemon", "--config", str(path)],
        stdout=subprocess.DEVNULL, stderr=log.open("w"), start_new_session=True,
    )  # fmt: skip
    root = psutil.Process(process.pid)
    seen: dict[int, tuple[str, float]] = {}
    at_warm: dict[int, float] | None = None
    series: list[tuple[float, float]] = []
    """(seconds since warm, CPU seconds of every process since warm), four times a second."""
    memory = 0.0
    started = warmed = time.monotonic()
    try:
        while process.poll() is None and time.monotonic() - started < seconds + 60:
            _cpu_seconds(root, seen)
            if at_warm is None and warm():
                at_warm, warmed = {pid: used for pid, (_, used) in seen.items()}, time.monotonic()
            if at_warm is not None:
                used = sum(total - at_warm.get(pid, 0.0) for pid, (_, total) in seen.items())
                series.append((time.monotonic() - warmed, used))
                if len(series) % 4 == 1:
                    memory = max(memory, _pss_mb(root))
            time.sleep(0.25)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
        process.wait(30)
    if process.returncode != 0 or at_warm is None:
        raise SystemExit(f"the daemon failed:\n{log.read_text()[-3000:]}")
    cpu: dict[str, float] = {}
    for pid, (name, used) in seen.items():
        key = next((stage for stage in STAGES if name.startswith(f"detectord-{stage[:5]}")), "supervisor")
        cpu[key] = round(cpu.get(key, 0.0) + used - at_warm.get(pid, 0.0), 2)
    per_second = [
        round(100 * (b[1] - a[1]) / (b[0] - a[0]), 1) for a, b in zip(series[::4], series[4::4], strict=False)
    ]
    return {
        "wall_s": time.monotonic() - warmed,
        "cpu_s": cpu,
        "cpu_percent_per_s": per_second,
        "memory_mb_peak": round(memory, 1),
    }


STAGES = ("capture", "inference", "publish")
"""The stage processes (their names are cut to 15 characters: ``detectord-captu``)."""


def camera_config(name: str, clip: Path, gated: bool, mask: str = "") -> str:
    motion = f"[cameras.motion]\nenabled = {str(gated).lower()}\n" + (
        f"mask = {mask}\nnormalized = true\n" if mask else ""
    )
    return f'[[cameras]]\nname = "{name}"\n[cameras.source]\nuri = "{clip}"\n{motion}'


DAEMON = '[model]\nname = "hog-people"\n[events]\nend_after_s = 3.0\n[detect]\nidle_interval_s = 10.0\n'


# -- what a run published ------------------------------------------------------------------


def timeline(recorder: Recorder, camera: str) -> dict[str, Any]:
    """A camera's run as a client saw it, times in seconds from its first frame."""
    frames = [json.loads(payload) for payload, _ in recorder.of(camera, "detections")]
    if not frames:
        raise SystemExit(f"camera {camera} published no frame")
    t0 = frames[0]["ts"]["capture"] - frames[0]["frame_id"] / FPS
    ran = [f for f in frames if f.get("inference", {"ran": True})["ran"]]
    events = [json.loads(payload) for payload, _ in recorder.of(camera, "events")]
    ends = {e["id"]: e for e in events if e["type"] == "end"}
    seconds = int(frames[-1]["ts"]["capture"] - t0) + 1
    calls = np.bincount([int(f["ts"]["capture"] - t0) for f in ran], minlength=seconds).tolist()
    return {
        "frames": len(frames),
        "model_calls": len(ran),
        "model_calls_per_s_series": calls,
        "reasons": {
            r: sum(f.get("inference", {}).get("reason") == r for f in frames)
            for r in ("motion", "tracking", "keepalive", "ungated", "idle")
        },
        "span_s": frames[-1]["ts"]["capture"] - frames[0]["ts"]["capture"],
        "events": [
            {"start": e["start_time"] - t0, "end": ends[e["id"]]["end_time"] - t0 if e["id"] in ends else None}
            for e in events
            if e["type"] == "new"
        ],
        "occupancy": _turns(recorder.of(camera, "occupancy"), frames, t0),
        "counts": [(at - t0, int(payload)) for payload, at in recorder.of(camera, "person")],
    }


def _turns(states: list[tuple[bytes, float]], frames: list[dict[str, Any]], t0: float) -> list[tuple[float, bool]]:
    """Occupancy's turns: (seconds into the clip, on), the first state (before any frame) left out."""
    first = frames[0]["ts"]["publish"]
    turns, last = [], None
    for payload, at in states:
        on = payload == b"ON"
        if at >= first and on != last:
            turns.append((round(at - t0, 2), on))
        last = on
    return turns


def agreement(gated: dict[str, Any], ungated: dict[str, Any]) -> dict[str, Any]:
    """Whether gating found what the ungated run found: each ungated event with a gated one starting within
    1 s, the number of events, occupancy's turns matched within 1 s."""
    starts = [e["start"] for e in gated["events"]]
    found = sum(any(abs(s - e["start"]) <= 1.0 for s in starts) for e in ungated["events"])
    turns = [t for t, _ in gated["occupancy"]]
    matched = sum(any(abs(t - u) <= 1.0 for t in turns) for u, _ in ungated["occupancy"])
    return {
        "ungated_events": len(ungated["events"]),
        "gated_events": len(gated["events"]),
        "found_within_1s": found,
        "occupancy_turns": len(ungated["occupancy"]),
        "turns_within_1s": matched,
    }


def pair(clip: Clip, port: int, recorder: Recorder, tmp: Path, mask: str = "") -> dict[str, Any]:
    """The clip through the daemon gated, then ungated."""
    out: dict[str, Any] = {}
    for gated in (True, False):
        camera = f"{clip.path.stem}-{'gated' if gated else 'ungated'}"
        config = DAEMON + camera_config(camera, clip.path, gated, mask)
        run = run_daemon(config, clip.seconds, port, tmp, recorder.published(camera))
        line = timeline(recorder, camera)
        line["cpu_s"] = run["cpu_s"]
        line["cpu_percent_per_s"] = run["cpu_percent_per_s"]
        line["cpu_percent"] = round(100 * sum(run["cpu_s"].values()) / max(run["wall_s"], 1e-9), 1)
        line["model_calls_per_s"] = round(line["model_calls"] / max(line["span_s"], 1e-9), 2)
        out["gated" if gated else "ungated"] = line
    out["agreement"] = agreement(out["gated"], out["ungated"])
    out["model_calls_ratio"] = round(out["gated"]["model_calls"] / max(out["ungated"]["model_calls"], 1), 3)
    return out


def many_cameras(active: Clip, still: Clip, cameras: int, port: int, recorder: Recorder, tmp: Path) -> dict[str, Any]:
    """Model frames per second of the two active cameras among ``cameras``; of the same two without the still ones
    (what the still cameras cost them); and of one active camera alone. Where one camera alone keeps the model
    busy whenever it moves, two cannot each get 0.8 of that: the model's time is what they share."""
    names = [f"busy{i}" for i in range(2)] + [f"still{i}" for i in range(cameras - 2)]

    def model_fps(prefix: str, count: int, with_still: bool) -> tuple[list[float], dict[str, float]]:
        busy = [f"{prefix}{i}" for i in range(count)]
        config = "".join(camera_config(n, active.path, True) for n in busy)
        if with_still:
            config += "".join(camera_config(n, still.path, True) for n in names[2:])
        run = run_daemon(DAEMON + config, active.seconds, port, tmp, recorder.published(busy[0]))
        lines = [timeline(recorder, n) for n in busy]
        return [line["model_calls"] / line["span_s"] for line in lines], run["cpu_s"]

    together, cpu = model_fps("busy", 2, True)
    pair, _ = model_fps("pair", 2, False)
    (alone,), _ = model_fps("alone", 1, False)
    return {
        "cameras": cameras,
        "active_model_fps": [round(f, 2) for f in together],
        "pair_model_fps": [round(f, 2) for f in pair],
        "alone_model_fps": round(alone, 2),
        "ratio": round(min(together) / alone, 3) if alone else None,
        "ratio_to_pair": round(min(together) / min(pair), 3) if min(pair) else None,
        "cpu_s": cpu,
        "still_model_calls": [timeline(recorder, n)["model_calls"] for n in names[2:]],
    }


def skip_still(clip: Clip, tmp: Path) -> dict[str, Any]:
    """``analyze --skip-still`` against a full run of the same clip: speed, and the reused boxes' agreement."""
    lines: dict[bool, list[dict[str, Any]]] = {}
    seconds: dict[bool, float] = {}
    for skip in (False, True):
        out = tmp / f"analyze-{skip}.jsonl"
        flags = ["--skip-still"] if skip else []
        started = time.monotonic()
        subprocess.run(
            [sys.executable, "-m", "detectord.daemon", "analyze", str(clip.path), "--out", str(out),
             "--model", "hog-people", "--no-progress", *flags],
            check=True, capture_output=True,
        )  # fmt: skip
        seconds[skip] = time.monotonic() - started
        lines[skip] = [json.loads(line) for line in out.read_text().splitlines()]
    ious = []
    for full, reused in zip(lines[False], lines[True], strict=True):
        if not reused.get("reused"):
            continue
        a = np.array([d["box"] for d in full["detections"]], np.float32).reshape(-1, 4)
        b = np.array([d["box"] for d in reused["detections"]], np.float32).reshape(-1, 4)
        if len(a) == len(b) == 0:
            ious.append(1.0)
        elif len(a) and len(b):
            ious.append(float(np.mean(box_iou(a, b).max(axis=1))) if len(a) == len(b) else 0.0)
        else:
            ious.append(0.0)
    frames = len(lines[True])
    return {
        "frames": frames,
        "full_fps": round(frames / seconds[False], 1),
        "skip_fps": round(frames / seconds[True], 1),
        "speedup": round(seconds[False] / seconds[True], 2),
        "reused": len(ious),
        "reused_iou_095": round(sum(i >= 0.95 for i in ious) / len(ious), 3) if ious else None,
    }


def main(args: argparse.Namespace) -> dict[str, Any]:
    from detectord.detection.devices import describe_machine

    footage = read_footage(args.video)
    with tempfile.TemporaryDirectory(prefix="motion-bench-") as name:
        tmp = Path(name)
        people = make_clip(footage, tmp / "people.mp4", args.seconds, args.people)
        difficult = make_clip(footage, tmp / "difficult.mp4", args.seconds, args.people, difficult=True, seed=1)
        still = make_clip(footage, tmp / "still.mp4", args.seconds / 2, 0.0, seed=2)
        active = make_clip(footage, tmp / "active.mp4", args.seconds / 2, 1.0, seed=3)
        broker = Mosquitto(tmp)
        broker.start()
        try:
            recorder = Recorder(broker.port)
            results = {
                "video": str(args.video),
                "seconds": args.seconds,
                "people_share": args.people,
                "people": pair(people, broker.port, recorder, tmp),
                "difficult": pair(difficult, broker.port, recorder, tmp, MASK),
                "still": pair(still, broker.port, recorder, tmp),
                "many": many_cameras(active, still, args.cameras, broker.port, recorder, tmp),
                "skip_still": skip_still(make_clip(footage, tmp / "analyze.mp4", args.seconds, 0.2, seed=4), tmp),
                **describe_machine(),
            }
        finally:
            broker.stop()
    return report(results, "motion", args.json, format_table)


def format_table(r: dict[str, Any]) -> str:
    lines = [
        f"motion gating: clips from {Path(r['video']).name} ({r['seconds']:g} s, people {r['people_share']:.0%} of "
        f"the time), hog-people, {FPS:g} fps, the real daemon",
        machine_line(r),
        "",
        *table_head(["clip", "run", "model calls/s", "model calls", "CPU % of a core", "events", "occupancy turns"]),
    ]
    for clip in ("people", "difficult", "still"):
        for run in ("ungated", "gated"):
            line = r[clip][run]
            lines.append(
                f"| {clip} | {run} | {line['model_calls_per_s']} | {line['model_calls']} | {line['cpu_percent']} | "
                f"{len(line['events'])} | {len(line['occupancy'])} |"
            )
    lines += ["", *table_head(["clip", "model calls gated/ungated", "events found (start ≤ 1 s)", "turns ≤ 1 s"])]
    for clip in ("people", "difficult"):
        a = r[clip]["agreement"]
        lines.append(
            f"| {clip} | {r[clip]['model_calls_ratio']:.0%} | {a['found_within_1s']}/{a['ungated_events']} "
            f"(gated {a['gated_events']}) | {a['turns_within_1s']}/{a['occupancy_turns']} |"
        )
    many = r["many"]
    s = r["skip_still"]
    lines += [
        "",
        f"{many['cameras']} cameras, 2 active: model fps of the active ones {many['active_model_fps']} against "
        f"{many['alone_model_fps']} alone (ratio {many['ratio']}) and {many.get('pair_model_fps')} as the only two "
        f"(ratio {many.get('ratio_to_pair')}); the still ones' model calls {many['still_model_calls']}; CPU "
        f"seconds by process {many.get('cpu_s')}",
        f"analyze --skip-still: {s['skip_fps']} frames/s against {s['full_fps']} ({s['speedup']}x); "
        f"{s['reused']} of {s['frames']} frames reused, IoU >= 0.95 with the model's boxes on "
        f"{(s['reused_iou_095'] or 0):.0%} of them",
        f"CPU seconds by process, still clip gated: {r['still']['gated']['cpu_s']}",
        f"median event duration (s), people clip ungated / gated: {_median_duration(r['people']['ungated'])} / "
        f"{_median_duration(r['people']['gated'])}",
    ]
    return "\n".join(lines)


def _median_duration(line: dict[str, Any]) -> float | None:
    durations = [e["end"] - e["start"] for e in line["events"] if e["end"] is not None]
    return round(statistics.median(durations), 1) if durations else None


if __name__ == "__main__":
    main(get_args_parser().parse_args())
