"""Full-resolution pictures: what keeping a camera's own frame beside the model's 427x240 one costs.

    python -m bench.pictures [--video vtest.avi] [--seconds 20] [--json p.json|DIR]

(a) Per picture size (the detection frame, 640x360, 1280x720, 1920x1080):
the full-frame ring's slot, the copy of a frame into it, the resize from a
1920x1080 frame, and the JPEG encode at the daemon's quality, in ms (median
of repeated runs on a real frame). (b) The real daemon on one 1920x1080
camera at 25 fps (OpenCV's pedestrian footage scaled up: its still
background for two thirds of the time, its pedestrians for the middle
third; ``hog-people``, motion gating on), side by side: full frames off (everything 427x240, as
before), the defaults (full frames kept: snapshots and Home Assistant at
1920x1080, live frames at 427x240), and live frames at ``native``: CPU of
the whole daemon (percent of a core, from its first frame), its memory
(every process's PSS, summed, rings included) at its peak, and the size of
what it published.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from bench.motion import PEDESTRIANS, Recorder, run_daemon
from bench.results_io import machine_line, report, table_head
from detectord.daemon.cli.mosquitto import Mosquitto
from detectord.daemon.config import MqttConfig
from detectord.daemon.native import NATIVE_FIELDS, NativeRing, put

CAMERA = (1920, 1080)
FPS = 25.0
SIZES = {"detect 427x240": (427, 240), "640x360": (640, 360), "1280x720": (1280, 720), "1920x1080": (1920, 1080)}
RUNS = {
    "full frames off (before)": "[publish]\nnative = false\n",
    "defaults (full-size snapshots)": "",
    'frame_size = "native"': '[publish]\nframe_size = "native"\n',
}


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--video", type=Path, default=PEDESTRIANS, help="real footage with people")
    parser.add_argument("--seconds", type=float, default=20.0, help="length of the 1920x1080 clip each run plays")
    parser.add_argument("--json", type=Path, help="write the results here (a folder: named after the machine)")
    return parser


def camera_clip(video: Path, path: Path, seconds: float) -> np.ndarray:
    """A 1920x1080 camera at 25 fps: the footage's still background (with camera noise) two thirds of the
    time, its pedestrians for the middle third, as a real camera sees a scene mostly still. Returns one frame
    with people."""
    capture = cv2.VideoCapture(str(video))
    footage = []
    while len(footage) < 300:
        ok, frame = capture.read()
        if not ok:
            break
        footage.append(frame)
    capture.release()
    if len(footage) < 20:
        raise SystemExit(f"{video}: too few frames")
    background = cv2.resize(np.median(np.stack(footage[::10]), axis=0).astype(np.uint8), CAMERA)
    rng = np.random.default_rng(0)
    noise = [rng.normal(0, 3, (CAMERA[1], CAMERA[0], 3)).astype(np.int16) for _ in range(8)]
    count = int(seconds * FPS)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), FPS, CAMERA)
    busy = None
    for i in range(count):
        if count / 3 <= i < 2 * count / 3:
            image = cv2.resize(footage[(i - count // 3) % len(footage)], CAMERA, interpolation=cv2.INTER_LINEAR)
            busy = image if busy is None else busy
        else:
            image = background
        writer.write(np.clip(image + noise[i % len(noise)], 0, 255).astype(np.uint8))
    writer.release()
    assert busy is not None
    return busy


def _ms(action: Callable[[], object], repeat: int = 15) -> float:
    action()
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return round(1000 * statistics.median(times), 2)


def per_size(frame: np.ndarray) -> dict[str, dict[str, float]]:
    """Slot size, copy into the ring, resize from the camera's frame, JPEG encode: for each size."""
    quality = [cv2.IMWRITE_JPEG_QUALITY, MqttConfig().jpeg_quality]
    out = {}
    for name, size in SIZES.items():
        picture = cv2.resize(frame, size, interpolation=cv2.INTER_AREA)
        ring = NativeRing.create(
            f"bench-pictures-{size[0]}", shape=(size[1], size[0], 3), slots=2, readers=1, extra=NATIVE_FIELDS
        )
        try:
            writer = ring.writer()
            copy_ms = _ms(lambda: put(writer, picture, 0, 0.0, 0.0))  # noqa: B023 - used at once
        finally:
            ring.close()
        out[name] = {
            "slot_mb": round(size[0] * size[1] * 3 / 2**20, 2),
            "copy_ms": copy_ms,
            "resize_ms": _ms(lambda: cv2.resize(frame, size, interpolation=cv2.INTER_AREA)),  # noqa: B023
            "jpeg_ms": _ms(lambda: cv2.imencode(".jpg", picture, quality)),  # noqa: B023
            "jpeg_kb": round(len(cv2.imencode(".jpg", picture, quality)[1]) / 1024, 1),
        }
    return out


def daemon_run(clip: Path, extra: str, port: int, recorder: Recorder, tmp: Path, seconds: float) -> dict[str, Any]:
    camera = f"pictures{time.monotonic_ns() % 10**6}"
    config = (
        f'camera = "{camera}"\n[source]\nuri = "{clip}"\n[model]\nname = "hog-people"\n'
        f"[events]\nend_after_s = 3.0\n{extra}"
    )
    run = run_daemon(config, seconds, port, tmp, recorder.published(camera))
    frames = recorder.of(camera, "frame")
    snapshots = recorder.of(camera, "person/snapshot")

    def size_of(payloads: list[tuple[bytes, float]]) -> list[int] | None:
        if not payloads:
            return None
        image = cv2.imdecode(np.frombuffer(payloads[-1][0], np.uint8), cv2.IMREAD_COLOR)
        return [int(image.shape[1]), int(image.shape[0])]

    model_calls = sum(1 for payload, _ in recorder.of(camera, "detections") if b'"ran": true' in payload)
    return {
        "cpu_percent": round(100 * sum(run["cpu_s"].values()) / max(run["wall_s"], 1e-9), 1),
        "model_calls": model_calls,
        "cpu_s": run["cpu_s"],
        "memory_mb_peak": run["memory_mb_peak"],
        "frames": len(frames),
        "frame_size": size_of(frames),
        "frame_kb": round(statistics.mean(len(p) for p, _ in frames) / 1024, 1) if frames else None,
        "snapshots": len(snapshots),
        "snapshot_size": size_of(snapshots),
    }


def main(args: argparse.Namespace) -> dict[str, Any]:
    from detectord.detection.devices import describe_machine

    results: dict[str, Any] = {"video": str(args.video), "seconds": args.seconds}
    with tempfile.TemporaryDirectory(prefix="pictures-bench-") as name:
        tmp = Path(name)
        clip = tmp / "camera.mp4"
        results["sizes"] = per_size(camera_clip(args.video, clip, args.seconds))
        broker = Mosquitto(tmp)
        broker.start()
        try:
            recorder = Recorder(broker.port)
            results["daemon"] = {
                run: daemon_run(clip, extra, broker.port, recorder, tmp, args.seconds) for run, extra in RUNS.items()
            }
        finally:
            broker.stop()
    before = next(iter(results["daemon"].values()))
    for line in results["daemon"].values():
        line["cpu_ratio"] = round(line["cpu_percent"] / max(before["cpu_percent"], 1e-9), 3)
        line["memory_mb_added"] = round(line["memory_mb_peak"] - before["memory_mb_peak"], 1)
    results.update(describe_machine())
    return report(results, "pictures", args.json, format_table)


def format_table(r: dict[str, Any]) -> str:
    lines = [
        f"full-resolution pictures: a {CAMERA[0]}x{CAMERA[1]} camera, detection at 427x240",
        machine_line(r),
        "",
        *table_head(["picture", "ring slot MB", "copy into slot ms", "resize from 1080p ms", "JPEG ms", "JPEG KB"]),
    ]
    for name, s in r["sizes"].items():
        lines.append(
            f"| {name} | {s['slot_mb']} | {s['copy_ms']} | {s['resize_ms']} | {s['jpeg_ms']} | {s['jpeg_kb']} |"
        )
    lines += [
        "",
        f"the daemon on {Path(r['video']).name} scaled to {CAMERA[0]}x{CAMERA[1]}, {FPS:g} fps, {r['seconds']:g} s "
        "(people the middle third), hog-people, motion gating on",
        "",
        *table_head(
            [
                "run",
                "CPU % of a core",
                "CPU ratio",
                "memory MB (peak)",
                "added MB",
                "model calls",
                "frames",
                "frame",
                "snapshot",
            ]
        ),
    ]
    for run, line in r["daemon"].items():
        frame = "x".join(map(str, line["frame_size"] or [])) or "-"
        snapshot = "x".join(map(str, line["snapshot_size"] or [])) or "-"
        lines.append(
            f"| {run} | {line['cpu_percent']} | {line['cpu_ratio']} | {line['memory_mb_peak']} | "
            f"{line['memory_mb_added']} | {line['model_calls']} | {line['frames']} ({line['frame_kb']} KB) | {frame} | "
            f"{snapshot} ({line['snapshots']}) |"
        )
    lines.append("")
    lines += [f"CPU seconds by process, {run}: {line['cpu_s']}" for run, line in r["daemon"].items()]
    return "\n".join(lines)


if __name__ == "__main__":
    main(get_args_parser().parse_args())
