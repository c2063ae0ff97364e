"""Whole-video throughput: the reference notebook loop against ``detectord analyze``, on the same frames.

    python -m bench.throughput VIDEO [--frames 24] [--weights default] [--device auto] [--calibration FILE]
        [--json PATH]

In one run:

(a) ``reference``: the notebook's loop, re-implemented faithfully: decode, resize
    to 427x240, BGR->RGB, to_tensor, batches of 12 through fasterrcnn_resnet50_fpn
    with torchvision's default transform (min_size 800: the 240x427 frame is
    upscaled to 749x1333), fp32, strictly one step after the other, including
    its fault of dropping the frame read when a batch is full. Its other fault,
    ``max()`` of an empty list on a frame without a confident person, is
    guarded (costs nothing, and random weights find no confident person).
    Frames per second counts the frames it really ran through the model.
(b) ``same work``: ``detectord analyze --profile reference --batch 12``: the
    same model, input size and proposals, through the pipeline.
(c) ``fp32``: ``detectord analyze --precision fp32`` with its default profile
    and batch (the defaults before ``--precision auto``).
(d) ``auto``: ``detectord analyze`` with every default, ``--precision auto``
    included: the scheme chosen for this machine (printed, with the CPU's flags).
(e) with ``--calibration FILE`` (``detectord calibrate``, same weights and
    profile): the defaults given that calibration, which ``auto`` turns into
    int8-static on a CPU with VNNI or AMX-INT8. Its start-up includes
    Inductor's compile of the int8 backbone.

Pipeline fps is taken from the moment the model is loaded to the last line
written (the reference loop is timed the same way, its model built first);
start-up (spawning the stages, importing torch, loading the model) is
printed separately. Timing is the same with random weights, which is what
this machine can run; with ``--weights default`` the numbers are the real ones.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import cv2
import torch
from torchvision.transforms.functional import to_tensor

from bench.results_io import machine_line, table_head, write_json
from detectord.daemon.analyze import analyze
from detectord.daemon.config import AnalyzeConfig, ModelConfig
from detectord.detection import PERSON
from detectord.detection.auto import choose_precision
from detectord.detection.devices import describe_machine
from detectord.detection.torchvision.models import build_model, device_features, resolve_device

REFERENCE_BATCH = 12
SIZE = (427, 240)


def reference_loop(
    video: Path, frames: int, weights: str, device: torch.device, batch_size: int = REFERENCE_BATCH
) -> dict[str, Any]:
    """The notebook's loop; returns frames read, frames inferred, seconds."""
    model, _ = build_model("fasterrcnn_resnet50_fpn", weights)
    model.to(device)
    capture = cv2.VideoCapture(str(video))
    batch: list[torch.Tensor] = []
    read = inferred = 0
    mains: list[Any] = []

    def run(images: list[torch.Tensor]) -> None:
        with torch.no_grad():
            predictions = model([image.to(device) for image in images])
        for p in predictions:
            people = [
                (float((b[2] - b[0]) * (b[3] - b[1])), b)
                for b, s, label in zip(p["boxes"], p["scores"], p["labels"], strict=True)
                if label == PERSON and s >= 0.9
            ]
            mains.append(max(people, key=lambda x: x[0])[1] if people else None)

    started = time.perf_counter()
    while read < frames:
        ok, frame = capture.read()
        if not ok:
            break
        read += 1
        frame = cv2.cvtColor(cv2.resize(frame, SIZE), cv2.COLOR_BGR2RGB)
        if len(batch) < batch_size:
            batch.append(to_tensor(frame))
        else:
            run(batch)
            inferred += len(batch)
            batch = []
    if batch:
        run(batch)
        inferred += len(batch)
    seconds = time.perf_counter() - started
    capture.release()
    return {"read": read, "inferred": inferred, "seconds": seconds, "fps": inferred / seconds}


def pipeline(
    video: Path,
    frames: int,
    weights: str,
    device: str,
    profile: str,
    batch: int,
    precision: str,
    calibration: Path | None = None,
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        model = ModelConfig(
            weights=weights, device=device, profile=profile, precision=precision, calibration=calibration
        )
        config = AnalyzeConfig(video=video, out=Path(tmp) / "out.jsonl", batch=batch, max_frames=frames, model=model)
        summary = analyze(config, log_level=logging.ERROR, progress=False)
    return {
        "frames": summary.frames,
        "seconds": summary.processing_s,
        "startup_s": summary.wall_s - summary.processing_s,
        "fps": summary.fps,
        "stage_ms": summary.stage_ms,
        "profile": profile,
        "batch": batch,
        "precision": precision,
    }


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("video", type=Path)
    parser.add_argument("--frames", type=int, default=24, help="frames to analyse (from the start of VIDEO)")
    parser.add_argument("--weights", default="random", help="default, random or a file (timing is the same)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--batch", type=int, default=AnalyzeConfig.batch, help="batch of the default run (c)")
    parser.add_argument("--calibration", type=Path, help="also run (e): the defaults given this int8 calibration")
    parser.add_argument("--json", type=Path, metavar="PATH", help="a folder: the file is named after the machine")
    return parser


def main(args: argparse.Namespace) -> dict[str, Any]:
    device = resolve_device(args.device)
    logging.basicConfig(level=logging.ERROR)
    reference = reference_loop(args.video, args.frames, args.weights, device)
    same = pipeline(args.video, args.frames, args.weights, str(device), "reference", REFERENCE_BATCH, "fp32")
    default = pipeline(args.video, args.frames, args.weights, str(device), "default", args.batch, "fp32")
    auto = pipeline(args.video, args.frames, args.weights, str(device), "default", args.batch, "auto")
    auto["precision"] = choose_precision(device_features(device)).precision
    results = {
        "reference_fps": reference["fps"],
        "same_work_fps": same["fps"],
        "default_fps": default["fps"],
        "auto_fps": auto["fps"],
        "same_work_ratio": same["fps"] / reference["fps"],
        "default_ratio": default["fps"] / reference["fps"],
        "auto_ratio": auto["fps"] / reference["fps"],
        "auto_precision": auto["precision"],
        "frames": args.frames,
        **describe_machine(),
        "torch": f"torch {torch.__version__}, {torch.get_num_threads()} threads, {device}",
        "runs": {"reference": reference, "same_work": same, "default": default, "auto": auto},
    }
    if args.calibration is not None:
        calibrated = pipeline(
            args.video, args.frames, args.weights, str(device), "default", args.batch, "auto", args.calibration
        )
        calibrated["precision"] = choose_precision(device_features(device), args.calibration).precision
        results["runs"]["calibrated"] = calibrated
        results.update(
            calibrated_fps=calibrated["fps"],
            calibrated_ratio=calibrated["fps"] / reference["fps"],
            calibrated_precision=calibrated["precision"],
        )
    sys.stdout.write(format_table(results, args) + "\n")
    write_json(args.json, "throughput", results)
    return results


def format_table(r: dict[str, Any], args: argparse.Namespace) -> str:
    ref, same, default, auto = (r["runs"][k] for k in ("reference", "same_work", "default", "auto"))
    lines = [
        f"throughput on {args.video} (first {args.frames} frames), weights {args.weights}",
        machine_line(r) + f"; {r['torch']}",
        "",
        *table_head(["run", "frames", "seconds", "fps", "ratio to (a)", "start-up (s)"]),
        f"| (a) reference loop, batch 12, min_size 800, sequential | {ref['inferred']} "
        f"(of {ref['read']} read) | {ref['seconds']:.1f} | {ref['fps']:.3f} | 1.00 | - |",
        f"| (b) detectord analyze --profile reference --batch 12 | {same['frames']} | {same['seconds']:.1f} | "
        f"{same['fps']:.3f} | {r['same_work_ratio']:.2f} | {same['startup_s']:.1f} |",
        f"| (c) detectord analyze --precision fp32 (default profile, batch {default['batch']}) | "
        f"{default['frames']} | {default['seconds']:.1f} | {default['fps']:.3f} | {r['default_ratio']:.2f} | "
        f"{default['startup_s']:.1f} |",
        f"| (d) detectord analyze (defaults: --precision auto = {auto['precision']}) | {auto['frames']} | "
        f"{auto['seconds']:.1f} | {auto['fps']:.3f} | {r['auto_ratio']:.2f} | {auto['startup_s']:.1f} |",
    ]
    labelled = [("b", same), ("c", default), ("d", auto)]
    if "calibrated" in r["runs"]:
        cal = r["runs"]["calibrated"]
        lines.append(
            f"| (e) detectord analyze --calibration FILE (auto = {cal['precision']}) | {cal['frames']} | "
            f"{cal['seconds']:.1f} | {cal['fps']:.3f} | {r['calibrated_ratio']:.2f} | {cal['startup_s']:.1f} |"
        )
        labelled.append(("e", cal))
    lines += [
        "",
        "mean ms per frame and stage: "
        + "; ".join(f"({k}) " + ", ".join(f"{s} {ms:.1f}" for s, ms in run["stage_ms"].items()) for k, run in labelled),
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main(get_args_parser().parse_args())
