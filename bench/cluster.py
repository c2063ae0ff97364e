"""Whole archives: the same videos one after another, on all cores, and on a real local Ray cluster.

    python -m bench.cluster [--video vtest.avi] [--clips 8] [--clip-frames 40] [--long-frames 200]
                            [--model hog-people] [--json c.json|DIR]

Clips are cut from real footage (OpenCV's pedestrian sample by default):
``--clips`` short ones and one long one. Every run is the real command
line, timed from start to exit:

(a) ``detectord analyze VIDEO --out FILE`` for each video, one after
    another (today's single-video analyze);
(b) ``detectord analyze DIR --out-dir OUT`` at its default (``--jobs`` from
    the cores, two model threads each), and the other splits of the cores
    (one video at a time with every thread; two at a time, ...);
(c) on a Ray cluster started as a user would (``ray start --head`` and a
    second node, one CPU each, on loopback addresses): a task per video
    (``--chunk-frames 0``), and the default (videos longer than the job's
    share per task cut into chunks);
(d) (c) with every video cut into chunks of ``--chunk-frames`` frames.

Each line: wall seconds, frames per second over all videos, the ratio to
(a), and the overhead per task: the CPU-seconds the run's workers had but
did not spend analysing (wall x workers - the manifest's seconds), per task.
The outputs of every run are compared with (a)'s, line for line (index,
time, detections, main person: all must be equal), and the frames whose
main person differs are counted.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import cv2

from bench.motion import PEDESTRIANS
from bench.results_io import machine_line, report, table_head
from detectord.daemon.archive.cluster import chunk_size
from detectord.daemon.archive.local import plan
from detectord.daemon.config import ArchiveConfig

HEAD, SECOND = "127.0.0.2", "127.0.0.3"
"""Ray takes 127.0.0.1 for "this host" and swaps in the machine's routable address: other loopback addresses
keep everything on this machine's loopback interface."""
DETECTORD = [sys.executable, "-m", "detectord.daemon", "analyze"]


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--video", type=Path, default=PEDESTRIANS, help="real footage to cut clips from")
    parser.add_argument("--clips", type=int, default=8)
    parser.add_argument("--clip-frames", type=int, default=40)
    parser.add_argument("--long-frames", type=int, default=200)
    parser.add_argument("--chunk-frames", type=int, default=25, help="(d)'s chunks")
    parser.add_argument("--model", default="hog-people", help="the detector (hog-people: nothing to download)")
    parser.add_argument("--json", type=Path, help="write the results here (a folder: named after the machine)")
    return parser


def make_clips(video: Path, folder: Path, clips: int, frames: int, long_frames: int) -> list[Path]:
    capture = cv2.VideoCapture(str(video))
    fps = capture.get(cv2.CAP_PROP_FPS) or 10.0
    footage = []
    while len(footage) < max(frames * clips, long_frames):
        ok, image = capture.read()
        if not ok:
            capture.set(cv2.CAP_PROP_POS_FRAMES, 0)
            continue
        footage.append(image)
    capture.release()
    folder.mkdir(parents=True)
    size = (footage[0].shape[1], footage[0].shape[0])
    paths = []
    for name, start, count in [*((f"clip{i}", i * frames, frames) for i in range(clips)), ("long", 0, long_frames)]:
        path = folder / f"{name}.mp4"
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), fps, size)
        for image in footage[start : start + count]:
            writer.write(image)
        writer.release()
        paths.append(path)
    return paths


def timed(args: list[str]) -> float:
    started = time.monotonic()
    done = subprocess.run(args, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed:\n{done.stderr[-2000:]}")
    return time.monotonic() - started


def manifest_seconds(out: Path) -> tuple[int, float, int]:
    """(frames, seconds the videos took in their workers, tasks) from a run's manifest."""
    entries = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    return sum(e["frames_written"] for e in entries), sum(e["seconds"] for e in entries), len(entries)


def outputs(folder: Path) -> dict[str, list[dict[str, Any]]]:
    return {
        p.name.removesuffix(".mp4.jsonl"): [json.loads(line) for line in p.read_text().splitlines()]
        for p in folder.rglob("*.mp4.jsonl")
    }


def compare(run: dict[str, list[dict[str, Any]]], reference: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """Whether every line equals the sequential run's, on how many frames the main person differs, and where the
    first difference is (video, frame, fields)."""
    main = sum(
        a["main_person"] != b["main_person"]
        for name in reference
        for a, b in zip(run.get(name, []), reference[name], strict=False)
    )
    first = None
    for name in sorted(reference):
        mine, theirs = run.get(name, []), reference[name]
        if len(mine) != len(theirs):
            first = f"{name}: {len(mine)} lines, not {len(theirs)}"
            break
        wrong = next(((a, b) for a, b in zip(mine, theirs, strict=True) if a != b), None)
        if wrong is not None:
            fields = sorted(key for key in wrong[1] if wrong[0].get(key) != wrong[1][key])
            first = f"{name} frame {wrong[1]['frame']}: {', '.join(fields)}"
            break
    return {"same_as_sequential": first is None, "main_person_differs": main, "first_difference": first}


def line(wall: float, frames: int, workers: int, busy: float, tasks: int, same: dict[str, Any]) -> dict[str, Any]:
    return {
        "wall_s": round(wall, 1),
        "frames": frames,
        "fps": round(frames / wall, 2),
        "workers": workers,
        "overhead_per_task_s": round(max(0.0, wall * workers - busy) / max(tasks, 1), 2),
        **same,
    }


class Cluster:
    """Two Ray nodes of one CPU each, started and stopped with the ``ray`` command, as a user would."""

    def __init__(self, temp: Path) -> None:
        self.temp = temp
        self.ray = str(Path(sys.executable).with_name("ray"))
        self.env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
        with socket.socket() as s:
            s.bind((HEAD, 0))
            self.address = f"{HEAD}:{s.getsockname()[1]}"

    def start(self) -> float:
        common = ["--num-cpus", "1", "--disable-usage-stats", "--temp-dir", str(self.temp)]
        started = time.monotonic()
        for command in (
            ["start", "--head", "--node-ip-address", HEAD, "--port", self.address.split(":")[1],
             "--include-dashboard=false", "--min-worker-port", "47000", "--max-worker-port", "47499", *common],
            ["start", "--address", self.address, "--node-ip-address", SECOND, "--min-worker-port", "47500",
             "--max-worker-port", "47999", *common],
        ):  # fmt: skip
            subprocess.run([self.ray, *command], env=self.env, capture_output=True, check=True, timeout=180)
        return time.monotonic() - started

    def stop(self) -> None:
        subprocess.run([self.ray, "stop", "--force"], env=self.env, capture_output=True, check=False, timeout=120)


def main(args: argparse.Namespace) -> dict[str, Any]:
    from detectord.detection.devices import describe_machine

    cores = os.cpu_count() or 1
    model = ["--model", args.model] + (["--weights", "random"] if args.model != "hog-people" else [])
    results: dict[str, Any] = {"video": str(args.video), "model": args.model, "runs": {}}
    with tempfile.TemporaryDirectory(prefix="cluster-bench-") as name:
        tmp = Path(name)
        videos = make_clips(args.video, tmp / "in", args.clips, args.clip_frames, args.long_frames)
        results["videos"] = {"clips": args.clips, "clip_frames": args.clip_frames, "long_frames": args.long_frames}
        seq = tmp / "sequential"
        seq.mkdir()
        wall = sum(timed([*DETECTORD, str(v), "--out", str(seq / f"{v.name}.jsonl"), *model]) for v in videos)
        reference = outputs(seq)
        frames = sum(len(lines) for lines in reference.values())
        runs = results["runs"]
        nothing = {"same_as_sequential": None, "main_person_differs": 0, "first_difference": None}
        runs["(a) one after another"] = line(wall, frames, 1, wall, len(videos), nothing)
        splits = [(jobs, cores // jobs) for jobs in range(1, cores + 1) if cores % jobs == 0]
        for jobs, threads in [(0, 0), *splits]:
            out = tmp / f"local-{jobs}"
            extra = ["--jobs", str(jobs), "--threads", str(threads)] if jobs else []
            wall = timed([*DETECTORD, str(tmp / "in"), "--out-dir", str(out), *extra, *model])
            done_frames, busy, tasks = manifest_seconds(out)
            label = "(b) all cores, default" if not jobs else f"(b) {jobs} at once x {threads} threads"
            workers = jobs or plan(ArchiveConfig(inputs=("-",), out_dir=out), len(videos)).jobs
            runs[label] = line(wall, done_frames, workers, busy, tasks, compare(outputs(out), reference))
        temp = Path(f"/tmp/rb{os.getpid() % 10000}")
        shutil.rmtree(temp, ignore_errors=True)
        cluster = Cluster(temp)
        try:
            results["ray_start_s"] = round(cluster.start(), 1)
            ray = ["--ray", cluster.address, "--ray-node-ip", HEAD]
            ray_runs = (
                ("(c) Ray, 2 nodes x 1 CPU, a task per video", 0),
                ("(c) Ray, 2 nodes x 1 CPU, default (long videos cut)", None),
                (f"(d) (c), chunks of {args.chunk_frames} frames", args.chunk_frames),
            )
            for label, chunk in ray_runs:
                out = tmp / f"ray-{chunk}"
                chunks = [] if chunk is None else ["--chunk-frames", str(chunk)]
                wall = timed([*DETECTORD, str(tmp / "in"), "--out-dir", str(out), *ray, *chunks, *model])
                done_frames, busy, _ = manifest_seconds(out)
                size = chunk_size(chunk, frames, 2)
                tasks = sum(-(-len(lines) // size) if size else 1 for lines in reference.values())
                runs[label] = line(wall, done_frames, 2, busy, tasks, compare(outputs(out), reference))
        finally:
            cluster.stop()
            shutil.rmtree(temp, ignore_errors=True)
    base = runs["(a) one after another"]["fps"]
    for run in runs.values():
        run["ratio"] = round(run["fps"] / base, 2)
    results.update(describe_machine())
    return report(results, "cluster", args.json, format_table)


def format_table(r: dict[str, Any]) -> str:
    v = r["videos"]
    lines = [
        f"whole archives: {v['clips']} clips of {v['clip_frames']} frames and one of {v['long_frames']} from "
        f"{Path(r['video']).name}, {r['model']}, the real command line",
        machine_line(r),
        "",
        *table_head(
            [
                "run",
                "wall s",
                "frames/s",
                "ratio to (a)",
                "overhead per task s",
                "frames = (a)'s",
                "main person differs",
            ],
        ),
    ]
    for name, run in r["runs"].items():
        same = {None: "-", True: "yes", False: "NO"}[run["same_as_sequential"]]
        lines.append(
            f"| {name} | {run['wall_s']} | {run['fps']} | {run['ratio']} | {run['overhead_per_task_s']} | {same} | "
            f"{run['main_person_differs']} frames |"
        )
    lines += ["", f"starting the two Ray nodes (ray start, twice): {r.get('ray_start_s')} s, not counted above"]
    differing = [(name, run["first_difference"]) for name, run in r["runs"].items() if run.get("first_difference")]
    lines += [f"{name}: differs at {where}" for name, where in differing]
    return "\n".join(lines)


if __name__ == "__main__":
    main(get_args_parser().parse_args())
