"""Many cameras, one model: one daemon serving N cameras against N single-camera daemons, side by side.

    python -m bench.cameras --video PATH [--cameras 1,2,4] [--fps 10] [--seconds 60] [--json PATH]

Every camera is a paced, looping copy of the same video (re-timed to
``--fps``). For each N: (a) one daemon with N ``[[cameras]]``, (b) N
single-camera daemons; each run has a private Mosquitto and a subscriber
that times every detections message. Reported per run: per-camera processed
fps (min / median / max), aggregate processed fps, end-to-end latency p50
(capture to the subscriber), the memory of every detectord process as PSS
summed over the process trees (shared library pages are not counted once
per process), and their CPU; then the ratios (a)/(b).
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
import threading
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import psutil

from bench.listener import Listener
from bench.results_io import machine_line, write_json
from detectord.daemon.cli.mosquitto import Mosquitto
from detectord.detection.devices import describe_machine

KEYS = ("pss_mb", "aggregate_fps", "fps_min", "fps_median", "fps_max", "e2e_p50_ms", "cpu_percent")


def retimed(video: Path, fps: float, out: Path) -> Path:
    """The video with its frame rate set to ``fps`` (every frame kept): the daemon paces files at their rate."""
    capture = cv2.VideoCapture(str(video))
    ok, frame = capture.read()
    if not ok:
        raise SystemExit(f"cannot read {video}")
    height, width = frame.shape[:2]
    writer = cv2.VideoWriter(str(out), cv2.VideoWriter.fourcc(*"mp4v"), fps, (width, height))
    while ok:
        writer.write(frame)
        ok, frame = capture.read()
    writer.release()
    capture.release()
    return out


class Collector(Listener):
    """Receive times and capture stamps of every detections message, per camera."""

    topic = "detector/+/detections"
    qos = 0

    def __init__(self, port: int) -> None:
        self._lock = threading.Lock()
        self.received: dict[str, list[tuple[float, float]]] = {}
        super().__init__(port)

    def heard(self, topic: str, payload: bytes) -> None:
        at = time.time()
        camera = topic.split("/")[1]
        capture = json.loads(payload)["ts"]["capture"]
        with self._lock:
            self.received.setdefault(camera, []).append((at, capture))

    def since(self, start: float) -> dict[str, list[tuple[float, float]]]:
        with self._lock:
            return {camera: [m for m in messages if m[0] >= start] for camera, messages in self.received.items()}


class Trees:
    """CPU and PSS of every process of some daemons (supervisors and their stages)."""

    def __init__(self, roots: list[subprocess.Popen[bytes]]) -> None:
        self.roots = [psutil.Process(p.pid) for p in roots]
        self._cpu_start = self._cpu()
        self._wall_start = time.monotonic()

    def _processes(self) -> list[psutil.Process]:
        found = []
        for root in self.roots:
            try:
                found += [root, *root.children(recursive=True)]
            except psutil.Error:
                continue
        return found

    def _cpu(self) -> float:
        total = 0.0
        for process in self._processes():
            try:
                times = process.cpu_times()
                total += times.user + times.system
            except psutil.Error:
                continue
        return total

    def cpu_percent(self) -> float:
        return 100.0 * (self._cpu() - self._cpu_start) / (time.monotonic() - self._wall_start)

    def pss_mb(self) -> float:
        total = 0
        for process in self._processes():
            try:
                total += process.memory_full_info().pss
            except psutil.Error:
                continue
        return total / 2**20


def _start(command: list[str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "detectord.daemon", *command],
        stdout=subprocess.DEVNULL,
        stderr=log.open("w"),
        start_new_session=True,
    )


def run_case(args: argparse.Namespace, video: Path, cameras: int, shared: bool, tmp: Path) -> dict[str, float]:
    broker = Mosquitto(tmp)
    broker.start()
    collector = Collector(broker.port)
    names = [f"cam{i}" for i in range(cameras)]
    common = ["--model", args.model, "--weights", args.weights, "--device", args.device]
    common += ["--mqtt-port", str(broker.port)]
    commands = []
    if shared:
        config = tmp / "cameras.toml"
        config.write_text(
            "[mqtt]\nstats_interval_s = 5.0\n"
            + "".join(f'[[cameras]]\nname = "{n}"\n[cameras.source]\nuri = "{video}"\nloop = true\n' for n in names)
        )
        commands.append(["--config", str(config), *common])
    else:
        commands += [["--source", str(video), "--loop", "--camera", n, *common] for n in names]
    daemons = [_start(command, tmp / f"daemon-{i}.log") for i, command in enumerate(commands)]
    try:
        deadline = time.monotonic() + args.timeout
        while len(collector.since(0)) < cameras:
            if time.monotonic() > deadline:
                logs = "\n".join(p.read_text()[-2000:] for p in tmp.glob("daemon-*.log"))
                raise SystemExit(f"not every camera published within {args.timeout:.0f} s:\n{logs}")
            time.sleep(0.2)
        time.sleep(args.warmup)
        trees = Trees(daemons)
        start = time.time()
        pss = 0.0
        while time.time() - start < args.seconds:
            time.sleep(min(5.0, args.seconds))
            pss = max(pss, trees.pss_mb())
        end = time.time()
        cpu = trees.cpu_percent()
        measured = {camera: [m for m in messages if m[0] <= end] for camera, messages in collector.since(start).items()}
    finally:
        for daemon in daemons:
            os.killpg(daemon.pid, signal.SIGTERM)
        for daemon in daemons:
            daemon.wait(60)
        broker.stop()
    seconds = end - start
    fps = [len(measured.get(name, [])) / seconds for name in names]
    latencies = [at - capture for messages in measured.values() for at, capture in messages]
    return {
        "pss_mb": round(pss, 1),
        "aggregate_fps": round(sum(fps), 3),
        "fps_min": round(min(fps), 3),
        "fps_median": round(statistics.median(fps), 3),
        "fps_max": round(max(fps), 3),
        "e2e_p50_ms": round(float(np.percentile(latencies, 50)) * 1000.0, 1) if latencies else float("nan"),
        "cpu_percent": round(cpu, 1),
    }


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--video", type=Path, required=True)
    parser.add_argument("--cameras", default="1,2,4", help="camera counts to compare, comma-separated")
    parser.add_argument("--fps", type=float, default=10.0, help="each camera's frame rate")
    parser.add_argument("--seconds", type=float, default=60.0, help="measured seconds per run")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds after every camera published")
    parser.add_argument("--model", default="fasterrcnn_resnet50_fpn")
    parser.add_argument("--weights", default="random")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--timeout", type=float, default=300.0, help="give up on a run after this many seconds")
    parser.add_argument("--json", type=Path, metavar="PATH")
    return parser


def main(args: argparse.Namespace) -> dict[str, Any]:
    counts = [int(n) for n in args.cameras.split(",")]
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        video = retimed(args.video, args.fps, Path(tmp) / "paced.mp4")
        for cameras in counts:
            run: dict[str, Any] = {"cameras": cameras}
            for key, shared in (("shared", True), ("separate", False)):
                case = Path(tmp) / f"{cameras}-{key}"
                case.mkdir()
                run[key] = run_case(args, video, cameras, shared, case)
                sys.stderr.write(f"{cameras} camera(s), {key}: {run[key]}\n")
            runs.append(run)
    results = {
        **describe_machine(),
        "video": str(args.video),
        "fps": args.fps,
        "seconds": args.seconds,
        "model": args.model,
        "weights": args.weights,
        "runs": runs,
    }
    write_json(args.json, "cameras", results)
    sys.stdout.write(format_table(results) + "\n")
    return results


def format_table(r: dict[str, Any]) -> str:
    lines = [
        f"cameras: (a) one daemon with N cameras vs (b) N single-camera daemons; {r['video']} at {r['fps']} fps "
        f"per camera, {r['seconds']:.0f} s measured, {r['model']} weights {r['weights']}",
        machine_line(r),
        "",
        "| N | run | PSS MB | aggregate fps | fps min / median / max | e2e p50 ms | CPU % |",
        "| ---: | --- | ---: | ---: | --- | ---: | ---: |",
    ]
    for run in r["runs"]:
        for key, label in (("shared", "(a) one daemon"), ("separate", "(b) N daemons")):
            s = run[key]
            lines.append(
                f"| {run['cameras']} | {label} | {s['pss_mb']:,.0f} | {s['aggregate_fps']:.2f} | "
                f"{s['fps_min']:.2f} / {s['fps_median']:.2f} / {s['fps_max']:.2f} | {s['e2e_p50_ms']:.0f} | "
                f"{s['cpu_percent']:.0f} |"
            )
        a, b = run["shared"], run["separate"]
        fairness = a["fps_min"] / a["fps_max"] if a["fps_max"] else float("nan")
        lines.append(
            f"| {run['cameras']} | (a)/(b) | {a['pss_mb'] / b['pss_mb']:.2f}x | "
            f"{a['aggregate_fps'] / b['aggregate_fps'] if b['aggregate_fps'] else float('nan'):.2f}x | "
            f"(a) min/max {fairness:.2f} | {a['e2e_p50_ms'] / b['e2e_p50_ms']:.2f}x | "
            f"{a['cpu_percent'] / b['cpu_percent'] if b['cpu_percent'] else float('nan'):.2f}x |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main(get_args_parser().parse_args())
