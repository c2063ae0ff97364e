"""Precision schemes side by side: latency, throughput, size, memory, fidelity to fp32, COCO mAP.

    python -m bench.quantization --video PATH [--frames 16] [--schemes fp32,int8-static,...]
        [--weights default] [--device auto] [--profile default] [--score-threshold S]
        [--coco DIR --limit N] [--profile-parts [N]] [--json PATH|DIR]

All schemes run on the same frames (the first ``--frames`` of the video,
resized to 427x240 as capture does), each in a fresh process so that its
peak memory and its warm-up are its own:

* latency per frame at batch 1 (p50, p90) after one warm-up frame, and
  throughput at batch 1 and at every ``--batches`` size (the best is reported);
* size: bytes of every tensor in the model's state (parameters, buffers,
  packed int8 weights), and the saved state_dict on disk;
* peak memory: the process's peak RSS (CPU) or CUDA max allocated (GPU);
* fidelity: COCO mAP of the scheme's detections against fp32's detections
  taken as ground truth, and the mean IoU of the main-person box (no labels
  needed, any weights); and, upstream of that, the relative L2 error of the
  backbone's features against an fp32 build of the same weights. With
  random weights the heads' scores are nearly tied, so a 1% perturbation of
  the features already costs about 0.15 fidelity mAP: read the feature error
  first there, and the fidelity mAP with trained weights;
* COCO val2017 box mAP, all classes and person only, with ``--coco``.

int8-static is calibrated first, on frames of the same video that are not
among the measured ones. On the CPU, ``int8-static-fx`` is measured beside
it: the deprecated torch.ao FX flow (bench/fx_int8.py) calibrated on the
same frames, the comparison int8-static's flow was chosen on. Schemes this
device cannot run are listed with the reason instead of numbers.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from bench.fx_int8 import NAME as FX_INT8
from bench.fx_int8 import fx_int8_detector
from bench.parts import format_parts, profile_parts
from bench.results_io import machine_line, table_head, write_json
from detectord.detection import (
    SCHEMES,
    Detections,
    Precision,
    PrecisionError,
)
from detectord.detection.devices import describe_machine
from detectord.detection.torchvision.evaluation import evaluate_coco, feature_error, fidelity_map, main_person_iou
from detectord.detection.torchvision.models import calibrate_detector, load_detector, resolve_device
from detectord.detection.torchvision.quantization import save_calibration
from detectord.detection.torchvision.tuning import main_persons

SIZE = (427, 240)
KEYS = (
    "latency_p50_ms",
    "latency_p90_ms",
    "fps_batch1",
    "fps_best",
    "best_batch",
    "size_mb",
    "disk_mb",
    "peak_mem_mb",
    "feature_error",
    "fidelity_map",
    "main_person_iou",
    "coco_map",
    "coco_person_map",
)


def read_frames(video: Path, first: int, count: int) -> list[np.ndarray]:
    capture = cv2.VideoCapture(str(video))
    frames = []
    index = 0
    while len(frames) < count:
        ok, image = capture.read()
        if not ok:
            break
        if index >= first:
            frames.append(cv2.resize(image, SIZE, interpolation=cv2.INTER_AREA))
        index += 1
    capture.release()
    return frames


def _tensor_bytes(state: dict[str, Any]) -> int:
    total = 0
    for value in state.values():
        if isinstance(value, torch.Tensor):
            total += value.numel() * value.element_size()
        elif isinstance(value, tuple | list):
            total += _tensor_bytes(dict(enumerate(value)))
    return total


def _peak_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(spec: dict[str, Any], frames: list[np.ndarray], out: Any) -> None:
    """In its own process: everything about one scheme that does not need another scheme's output."""
    try:
        if spec["precision"] == FX_INT8:
            detector = fx_int8_detector(
                spec["calibration_frames"], spec["model"], spec["weights"], spec["profile"], SIZE,
                spec["score_threshold"],
            )  # fmt: skip
        else:
            detector = load_detector(
                spec["model"],
                spec["weights"],
                spec["device"],
                spec["profile"],
                frame_size=SIZE,
                score_threshold=spec["score_threshold"],
                precision=spec["precision"],
                calibration=Path(spec["calibration"]) if spec["calibration"] else None,
            )
    except (PrecisionError, ValueError) as exc:
        out.put({"refused": str(exc)})
        return
    device = detector.device
    detector(frames[:1])
    latencies, detections = [], []
    for frame in frames:
        _sync(device)
        start = time.perf_counter()
        (found,) = detector([frame])
        _sync(device)
        latencies.append(time.perf_counter() - start)
        detections.append(found)
    fps = {1: len(frames) / sum(latencies)}
    for batch in spec["batches"]:
        if batch == 1:
            continue
        todo = [frames[i % len(frames)] for i in range(max(len(frames), batch))]
        detector(todo[:batch])
        _sync(device)
        start = time.perf_counter()
        for i in range(0, len(todo), batch):
            detector(todo[i : i + batch])
        _sync(device)
        fps[batch] = len(todo) / (time.perf_counter() - start)
    best = max(fps, key=fps.__getitem__)
    state = detector.model.state_dict()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.pt"
        torch.save(state, path)
        disk = path.stat().st_size
    result: dict[str, Any] = {
        "latency_p50_ms": 1000 * float(np.percentile(latencies, 50)),
        "latency_p90_ms": 1000 * float(np.percentile(latencies, 90)),
        "fps_batch1": fps[1],
        "fps_best": fps[best],
        "best_batch": best,
        "size_mb": _tensor_bytes(state) / 1e6,
        "disk_mb": disk / 1e6,
        "coco_map": None,
        "coco_person_map": None,
        "detections": [(d.boxes, d.scores, d.labels) for d in detections],
    }
    if spec["coco"]:
        scores = evaluate_coco(detector, Path(spec["coco"]), spec["limit"])
        result.update(coco_map=scores.box_map, coco_person_map=scores.person_map, coco_images=scores.images)
    if spec["profile_parts"]:
        result["parts"] = profile_parts(detector, frames[: spec["profile_parts"]])
    result["peak_mem_mb"] = _peak_mb(device)
    result["feature_error"] = _feature_error(detector, spec, frames) if spec["precision"] != "fp32" else 0.0
    out.put(result)


def _feature_error(detector: Any, spec: dict[str, Any], frames: list[np.ndarray]) -> float:
    """Against an fp32 build of the same weights, loaded after peak memory was read."""
    reference = load_detector(
        spec["model"], spec["weights"], spec["device"], spec["profile"], frame_size=SIZE, precision="fp32"
    )
    return feature_error(reference, detector, frames)


def calibration_frames(args: argparse.Namespace) -> list[np.ndarray]:
    frames = read_frames(args.video, args.frames, args.calibration_frames)
    if not frames:
        frames = read_frames(args.video, 0, args.calibration_frames)
        sys.stderr.write("note: the video is too short to calibrate on unmeasured frames; reusing them\n")
    return frames


def _calibrate(args: argparse.Namespace, frames: list[np.ndarray], tmp: Path) -> Path:
    artifact = calibrate_detector(
        frames, args.model, args.weights, args.profile, frame_size=SIZE, source=str(args.video)
    )
    path = tmp / "int8-static.pt"
    save_calibration(artifact, path)
    return path


def default_schemes(device: torch.device) -> list[str]:
    runnable = []
    for scheme in SCHEMES:
        try:
            Precision.parse(scheme).check_device(device.type)
        except PrecisionError:
            continue
        runnable.append(scheme)
        if scheme == "int8-static":
            runnable.append(FX_INT8)
    return runnable


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--video", type=Path, required=True)
    parser.add_argument("--frames", type=int, default=16, help="frames measured (from the start of the video)")
    parser.add_argument(
        "--schemes", help=f"comma-separated; default: every scheme this device runs (and {FX_INT8} on the CPU)"
    )
    parser.add_argument("--model", default="fasterrcnn_resnet50_fpn")
    parser.add_argument("--weights", default="default")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--profile", default="default")
    parser.add_argument("--score-threshold", type=float, help="report detections from this score (profile's)")
    parser.add_argument("--main-threshold", type=float, default=0.9, help="main person minimum score")
    parser.add_argument("--batches", default="1,2,4,8", help="batch sizes for throughput")
    parser.add_argument("--calibration-frames", type=int, default=32, help="int8-static calibration frames")
    parser.add_argument("--coco", type=Path, help="COCO root: annotations/instances_val2017.json and val2017/")
    parser.add_argument("--limit", type=int, help="first N val2017 images")
    parser.add_argument(
        "--profile-parts", type=int, nargs="?", const=4, default=0, metavar="N",
        help="also profile where each scheme spends its time, part by part, on N frames (4)",
    )  # fmt: skip
    parser.add_argument("--json", type=Path, metavar="PATH", help="a folder: the file is named after the machine")
    return parser


def main(args: argparse.Namespace) -> dict[str, Any]:
    device = resolve_device(args.device)
    schemes = args.schemes.split(",") if args.schemes else default_schemes(device)
    if "fp32" not in schemes:
        schemes.insert(0, "fp32")  # the reference fidelity is measured against
    frames = read_frames(args.video, 0, args.frames)
    if not frames:
        raise SystemExit(f"no frames could be read from {args.video}")
    ctx = mp.get_context("spawn")
    rows: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        calibrating = any(s.startswith("int8-static") for s in schemes)
        calibration_set = calibration_frames(args) if calibrating else []
        pt2e = any(s.split("+")[0] == "int8-static" for s in schemes)
        calibration = _calibrate(args, calibration_set, Path(tmp)) if pt2e else None
        for scheme in schemes:
            spec = {
                "model": args.model,
                "weights": args.weights,
                "device": str(device),
                "profile": args.profile,
                "score_threshold": args.score_threshold,
                "precision": scheme,
                "calibration": str(calibration) if scheme.split("+")[0] == "int8-static" else None,
                "calibration_frames": calibration_set if scheme == FX_INT8 else [],
                "batches": [int(b) for b in args.batches.split(",")],
                "coco": str(args.coco) if args.coco else None,
                "limit": args.limit,
                "profile_parts": args.profile_parts,
            }
            out = ctx.Queue()
            process = ctx.Process(target=measure, args=(spec, frames, out))
            process.start()
            rows[scheme] = out.get(timeout=3600)
            process.join()
    reference = [Detections(*d) for d in rows["fp32"]["detections"]]
    reference_mains = main_persons(reference, args.main_threshold)
    schemes_json: dict[str, Any] = {}
    for scheme, row in rows.items():
        if "refused" in row:
            schemes_json[scheme] = {**dict.fromkeys(KEYS), "refused": row["refused"]}
            continue
        found = [Detections(*d) for d in row.pop("detections")]
        row["fidelity_map"] = fidelity_map(reference, found)
        row["main_person_iou"] = main_person_iou(reference_mains, main_persons(found, args.main_threshold))
        schemes_json[scheme] = row
    results = {
        "device": str(device),
        **describe_machine(),
        "torch": f"torch {torch.__version__}, {torch.get_num_threads()} threads"
        + (f", {torch.cuda.get_device_name(device)}" if device.type == "cuda" else ""),
        "model": args.model,
        "weights": args.weights,
        "profile": args.profile,
        "score_threshold": args.score_threshold,
        "frames": len(frames),
        "video": str(args.video),
        "schemes": schemes_json,
    }
    parts = {name: row.pop("parts") for name, row in schemes_json.items() if "parts" in row}
    if parts:
        results["parts"] = parts
    sys.stdout.write(format_table(results) + "\n")
    if parts:
        sys.stdout.write(f"\nms per frame, part by part (torch.profiler, {args.profile_parts} frames):\n")
        sys.stdout.write(format_parts(parts) + "\n")
    write_json(args.json, "quantization", results)
    return results


def _cell(value: Any, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def format_table(r: dict[str, Any]) -> str:
    fp32 = r["schemes"]["fp32"]
    lines = [
        f"precision schemes: {r['model']} ({r['weights']} weights), profile {r['profile']}, "
        f"{r['frames']} frames of {r['video']} at 427x240, device {r['device']}",
        machine_line(r) + f"; {r['torch']}",
        "",
        *table_head(
            [
                "scheme",
                "p50 ms",
                "p90 ms",
                "fps b=1",
                "best fps (batch)",
                "speed-up",
                "size MB",
                "on disk MB",
                "peak mem MB",
                "feature error",
                "fidelity mAP",
                "main IoU",
                "COCO mAP",
                "COCO person",
            ]
        ),
    ]
    for name, s in r["schemes"].items():
        if "refused" in s:
            lines.append(f"| {name} | refused: {s['refused']} |" + " |" * 12)
            continue
        lines.append(
            f"| {name} | {s['latency_p50_ms']:.1f} | {s['latency_p90_ms']:.1f} | {s['fps_batch1']:.2f} | "
            f"{s['fps_best']:.2f} ({s['best_batch']}) | {fp32['latency_p50_ms'] / s['latency_p50_ms']:.2f}x | "
            f"{s['size_mb']:.1f} | {s['disk_mb']:.1f} | {s['peak_mem_mb']:.0f} | {s['feature_error']:.2%} | "
            f"{_cell(s['fidelity_map'], '.3f')} | "
            f"{_cell(s['main_person_iou'], '.3f')} | {_cell(s['coco_map'], '.3f')} | "
            f"{_cell(s['coco_person_map'], '.3f')} |"
        )
    lines.append("")
    lines.append(
        "speed-up: fp32 p50 / scheme p50; feature error: relative L2 distance of the backbone+FPN features "
        "from fp32's; fidelity: COCO mAP of the detections against fp32's"
    )
    return "\n".join(lines)


if __name__ == "__main__":
    main(get_args_parser().parse_args())
