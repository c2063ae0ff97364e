"""Proof that ``ssdlite-people`` is the package's graph: the port beside TensorFlow, box for box, and timed.

    python -m bench.ssdlite_reference --tf-python /path/to/venv/bin/python [--frames 120] [--json DIR]
        [--fixture tests/detection/data/ssdlite_reference.npz]

TensorFlow is never a dependency of detectord: ``--tf-python`` is the
interpreter of another environment where ``tensorflow-cpu`` is importable
(``python -m venv /tmp/tf && /tmp/tf/bin/pip install tensorflow-cpu``), which
runs ``bench/ssdlite_tf.py`` on the same frames. Per frame, every detection
of the graph scoring at least ``--score`` (0.3) must be matched by one of
the port's at IoU ≥ 0.98 with its score within 0.01, and the port may have
no more than 1 % unmatched detections above that score. Both are timed one
frame at a time on the same frames (TensorFlow with its default threads);
the port at fp32, at this machine's default precision (``auto``) and at
``int8-static`` calibrated on the video when the CPU has int8 dot products.

``--fixture`` also writes what the graph output on a few of those frames
(by frame number: the frames are read back from the video), so that
``tests/detection/test_ssdlite.py`` checks the port without TensorFlow.
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.people import PEDESTRIANS, SIZE, read_video
from bench.results_io import machine_line, report, table_head
from detectord.detection.devices import cpu_has_vnni, describe_machine
from detectord.detection.registry import DetectorOptions, load
from detectord.detection.ssdlite import graph_file
from detectord.detection.ssdlite.models import calibrate_detector
from detectord.detection.torchvision.quantization import save_calibration

BENCH = "ssdlite_reference"
TF_SCRIPT = Path(__file__).with_name("ssdlite_tf.py")
MATCH_IOU = 0.98
SCORE_TOLERANCE = 0.01
FIXTURE_FRAMES = (0, 40, 80, 119)


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tf-python", type=Path, required=True, help="a Python with tensorflow-cpu importable")
    parser.add_argument("--video", type=Path, default=PEDESTRIANS)
    parser.add_argument("--frames", type=int, default=120)
    parser.add_argument("--score", type=float, default=0.3, help="detections compared from this score")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs of each frame; the best counts")
    parser.add_argument("--fixture", type=Path, help="write the graph's outputs on a few frames here (.npz)")
    parser.add_argument("--json", type=Path)
    return parser


def iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of box ``a`` with each of ``b`` (any corner order, the same for both)."""
    low = np.maximum(a[:2], b[:, :2])
    high = np.minimum(a[2:], b[:, 2:])
    overlap = np.clip(high - low, 0, None).prod(axis=1)
    areas = (a[2:] - a[:2]).prod() + (b[:, 2:] - b[:, :2]).prod(axis=1) - overlap
    return overlap / np.maximum(areas, 1e-12)


def compare(
    graph: tuple[np.ndarray, np.ndarray], port: tuple[np.ndarray, np.ndarray], score: float
) -> tuple[int, int, int, int, float]:
    """(graph detections, matched, port detections, port unmatched, largest score difference matched) of one
    frame's detections scoring at least ``score``."""
    g_boxes, g_scores = (a[graph[1] >= score] for a in graph)
    p_boxes, p_scores = (a[port[1] >= score] for a in port)
    used = np.zeros(len(p_scores), bool)
    matched, worst = 0, 0.0
    for box, value in zip(g_boxes, g_scores, strict=True):
        if not len(p_scores):
            break
        overlaps = np.where(used, -1.0, iou(box, p_boxes))
        best = int(np.argmax(overlaps))
        if overlaps[best] >= MATCH_IOU and abs(p_scores[best] - value) <= SCORE_TOLERANCE:
            used[best] = True
            matched += 1
            worst = max(worst, float(abs(p_scores[best] - value)))
    return len(g_scores), matched, len(p_scores), int((~used).sum()), worst


def run_graph(tf_python: Path, frames: list[np.ndarray], repeat: int) -> dict[str, np.ndarray]:
    with tempfile.TemporaryDirectory(prefix="detectord-ssdlite-") as scratch:
        inputs, outputs = Path(scratch) / "frames.npz", Path(scratch) / "graph.npz"
        np.savez(inputs, frames=np.stack([frame[:, :, ::-1] for frame in frames]))  # the graph takes RGB
        command = [str(tf_python), str(TF_SCRIPT), str(graph_file("default")), str(inputs), str(outputs)]
        done = subprocess.run([*command, "--repeat", str(repeat)], capture_output=True, text=True, check=False)
        if done.returncode:
            raise SystemExit(f"TensorFlow failed: {done.stderr.strip().splitlines()[-1:]}")
        with np.load(outputs) as data:
            return {name: data[name] for name in data.files}


def timed(detector: Any, frames: list[np.ndarray], repeat: int) -> list[float]:
    detector(frames[:1])
    times = []
    for frame in frames:
        best = float("inf")
        for _ in range(repeat):
            start = time.perf_counter()
            detector([frame])
            best = min(best, time.perf_counter() - start)
        times.append(best)
    return times


def main(args: argparse.Namespace) -> dict[str, Any]:
    frames, _ = read_video(args.video, args.frames)
    graph = run_graph(args.tf_python, frames, args.repeat)
    reference = load(DetectorOptions(name="ssdlite-people", precision="fp32"), SIZE)
    port = reference.raw(frames)  # type: ignore[attr-defined]
    totals = np.zeros(4, np.int64)
    worst = 0.0
    for i, (boxes, scores, _) in enumerate(port):
        count = int(graph["num_detections"][i])
        found = compare(
            (graph["detection_boxes"][i][:count], graph["detection_scores"][i][:count]),
            (boxes.numpy(), scores.numpy()),
            args.score,
        )
        totals += found[:4]
        worst = max(worst, found[4])
    graph_ms = 1000 * float(np.mean(graph["seconds"]))
    rows = [{"runs": f"TensorFlow {graph['tensorflow']} (the package's graph)", "ms": graph_ms}]
    schemes: dict[str, Path | None] = {"fp32": None, "auto": None}
    with tempfile.TemporaryDirectory(prefix="detectord-ssdlite-") as scratch:
        if cpu_has_vnni():
            calibration = Path(scratch) / "int8.pt"
            artifact = calibrate_detector(frames[::4], "default", frame_size=SIZE, source=str(args.video))
            save_calibration(artifact, calibration)
            schemes["int8-static"] = calibration
        for label, calibration in schemes.items():
            options = DetectorOptions(name="ssdlite-people", precision=label, calibration=calibration)
            detector = load(options, SIZE)
            ms = 1000 * float(np.mean(timed(detector, frames, args.repeat)))
            rows.append({"runs": f"port, {label}: {detector.info.precision}", "ms": ms})
    results = {
        **describe_machine(),
        "frames": len(frames),
        "video": str(args.video),
        "score": args.score,
        "graph_detections": int(totals[0]),
        "matched": int(totals[1]),
        "port_detections": int(totals[2]),
        "port_unmatched": int(totals[3]),
        "largest_score_difference": worst,
        "anchors": len(graph["anchors"]),
        "anchors_equal": bool(np.array_equal(graph["anchors"], reference.spec.anchors)),  # type: ignore[attr-defined]
        "timings": [{**row, "fps": 1000 / row["ms"], "vs_graph": graph_ms / row["ms"]} for row in rows],
    }
    if args.fixture:
        write_fixture(args.fixture, graph, args)
    return report(results, BENCH, args.json, format_table)


def write_fixture(path: Path, graph: dict[str, np.ndarray], args: argparse.Namespace) -> None:
    picked = list(FIXTURE_FRAMES)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        path,
        frame_numbers=np.asarray(picked),
        video=np.asarray(args.video.name),
        size=np.asarray(SIZE),
        tensorflow=graph["tensorflow"],
        num_detections=graph["num_detections"][picked],
        detection_boxes=graph["detection_boxes"][picked],
        detection_scores=graph["detection_scores"][picked],
        detection_classes=graph["detection_classes"][picked],
        anchors_first=graph["anchors"][:3],
        anchors_last=graph["anchors"][-3:],
        anchor_count=np.asarray(len(graph["anchors"])),
    )


def format_table(results: dict[str, Any]) -> str:
    matched = results["matched"] / max(results["graph_detections"], 1)
    unmatched = results["port_unmatched"] / max(results["port_detections"], 1)
    lines = [
        machine_line(results),
        "",
        f"{results['frames']} frames of {results['video']} at {SIZE[0]}x{SIZE[1]}; detections scoring >= "
        f"{results['score']}; anchors: {results['anchors']}, equal to the graph's: {results['anchors_equal']}",
        f"graph's detections matched by the port (IoU >= {MATCH_IOU}, score within {SCORE_TOLERANCE}): "
        f"{results['matched']}/{results['graph_detections']} ({matched:.1%}; target >= 99%)",
        f"port's detections unmatched: {results['port_unmatched']}/{results['port_detections']} ({unmatched:.1%}; "
        f"target <= 1%); largest score difference matched: {results['largest_score_difference']:.2g}",
        "",
        *table_head(["runs (one frame at a time)", "ms a frame", "fps", "fps vs the graph"]),
    ]
    lines += [
        f"| {row['runs']} | {row['ms']:.1f} | {row['fps']:.1f} | {row['vs_graph']:.2f}x |" for row in results["timings"]
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main(get_args_parser().parse_args())
