"""Every precision scheme this device runs, measured on the user's own frames: speed and fidelity to fp32.

``detectord tune`` runs this on footage from the camera it will serve, so
that the recommendation holds for that scene, that machine and those
weights. Per scheme: latency at batch 1 (p50) and the best throughput over
a few batch sizes; fidelity to fp32 as the COCO mAP of its detections scored
against fp32's detections, the main person's IoU, and the backbone features'
relative error. With untrained weights the heads' scores are nearly tied and
fidelity means nothing, so the feature error decides instead.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from detectord.detection.devices import cpu_description
from detectord.detection.errors import PrecisionError
from detectord.detection.main_person import MainPersonTracker
from detectord.detection.registry import DetectorOptions, family, load
from detectord.detection.schemes import Precision
from detectord.detection.types import Detections, FrameDetector, MainPerson, MainPersonConfig

from .evaluation import feature_error, fidelity_map, main_person_iou, people_found
from .precision import check_bf16

CPU_SCHEMES = (
    "fp32",
    "fp32-fused",
    "fp32-fused+channels_last",
    "bf16",
    "bf16+channels_last",
    "autocast",
    "autocast+channels_last",
    "int8-dynamic",
    "int8-static",
)
CUDA_SCHEMES = ("fp32", "fp32-fused", "fp16", "fp16+channels_last", "mixed", "autocast", "bf16")
BATCHES = (1, 2, 4)
MIN_FIDELITY = 0.95
MAX_FEATURE_ERROR = 0.02
FEATURE_FRAMES = 4


@dataclass
class SchemeResult:
    precision: str
    p50_ms: float | None = None
    best_fps: float | None = None
    best_batch: int | None = None
    feature_error: float | None = None
    fidelity_map: float | None = None
    main_person_iou: float | None = None
    people_found: float | None = None
    """The share of fp32's persons at the main person's threshold this scheme also finds there."""
    refused: str | None = None


COMPILED_SCHEMES = ("fp32-fused+channels_last+compiled", "bf16+channels_last+compiled")
"""What families that compile (``Family.compiles``) add on the CPU."""


def schemes_for(device: torch.device, name: str = "") -> list[str]:
    """The schemes worth measuring here for detector ``name``: those the device runs; bfloat16 ones (bf16, and
    autocast on a CPU) only where the device computes in bfloat16."""
    schemes = []
    candidates = CUDA_SCHEMES if device.type == "cuda" else CPU_SCHEMES
    if device.type == "cpu" and name and family(name).compiles:
        candidates = (*candidates, *COMPILED_SCHEMES)
    for scheme in candidates:
        if scheme.startswith("bf16") or (scheme.startswith("autocast") and device.type == "cpu"):
            try:
                check_bf16(device, force=False)
            except PrecisionError:
                continue
        schemes.append(scheme)
    return schemes


def main_persons(detections: Sequence[Detections], threshold: float) -> list[MainPerson | None]:
    """The main person of each of ``detections``: frames spread over a video, a second apart as far as the
    tracker knows (their true spacing does not matter for who is the largest)."""
    tracker = MainPersonTracker(MainPersonConfig(score_threshold=threshold))
    return [tracker.update(d, float(i)) for i, d in enumerate(detections)]


def measure(
    frames: Sequence[np.ndarray],
    *,
    name: str,
    weights: str,
    profile: str,
    device: str,
    frame_size: tuple[int, int],
    calibration: Path | None,
    main_threshold: float,
    schemes: Sequence[str],
    step: Callable[[], None] = lambda: None,
) -> list[SchemeResult]:
    """``schemes`` on ``frames``, fp32 first (the reference, added if missing); ``step`` after each frame."""
    if not family(name).precisions:
        raise PrecisionError(f"{name} runs in one precision only; there is nothing to tune")

    def load_scheme(scheme: str) -> FrameDetector:
        options = DetectorOptions(
            name=name, weights=weights, device=device, profile=profile, precision=scheme,
            calibration=calibration if scheme == "int8-static" else None,
        )  # fmt: skip
        return load(options, frame_size)

    reference = load_scheme("fp32")
    schemes = ["fp32", *(scheme for scheme in schemes if scheme != "fp32")]
    reference_frames: list[Detections] = []
    results = []
    for scheme in schemes:
        if scheme == "int8-static" and calibration is None:
            results.append(SchemeResult(scheme, refused="no calibration"))
            continue
        try:
            detector = reference if scheme == "fp32" else load_scheme(scheme)
        except PrecisionError as exc:  # a scheme this network has nothing for (int8-dynamic without Linear layers)
            results.append(SchemeResult(scheme, refused=str(exc).split(";")[0]))
            continue
        result = SchemeResult(scheme)
        found, latencies = [], []
        detector(list(frames[:1]))
        for frame in frames:
            start = time.perf_counter()
            found += detector([frame])
            latencies.append(time.perf_counter() - start)
            step()
        result.p50_ms = 1000.0 * float(np.percentile(latencies, 50))
        fps = {1: len(frames) / sum(latencies)}
        for batch in BATCHES[1:]:
            start = time.perf_counter()
            for i in range(0, len(frames) - batch + 1, batch):
                detector(list(frames[i : i + batch]))
            done = (len(frames) // batch) * batch
            fps[batch] = done / (time.perf_counter() - start) if done else 0.0
        result.best_batch = max(fps, key=fps.__getitem__)
        result.best_fps = fps[result.best_batch]
        if scheme == "fp32":
            reference_frames = found
            result.feature_error, result.fidelity_map, result.main_person_iou = 0.0, 1.0, 1.0
            result.people_found = 1.0
        else:
            if not Precision.parse(scheme).compiled:  # a compiled graph has no backbone to hook
                result.feature_error = feature_error(reference, detector, frames[:FEATURE_FRAMES])
            result.fidelity_map = fidelity_map(reference_frames, found)
            result.main_person_iou = main_person_iou(
                main_persons(reference_frames, main_threshold), main_persons(found, main_threshold)
            )
            result.people_found = people_found(reference_frames, found, main_threshold)
            del detector
            gc.collect()
        results.append(result)
    return results


def recommend(results: Sequence[SchemeResult], trained: bool) -> tuple[SchemeResult, str]:
    """The fastest scheme (p50) that stays faithful to fp32, and the test it passed."""
    if trained:
        test = f"fidelity mAP >= {MIN_FIDELITY}"
        faithful = [r for r in results if r.fidelity_map is not None and r.fidelity_map >= MIN_FIDELITY]
    else:
        test = f"feature error <= {MAX_FEATURE_ERROR:.0%} (untrained weights: fidelity is not meaningful)"
        faithful = [r for r in results if r.feature_error is not None and r.feature_error <= MAX_FEATURE_ERROR]
    measured = [r for r in faithful if r.p50_ms is not None]
    best = min(measured, key=lambda r: r.p50_ms or float("inf"))
    return best, test


def machine() -> str:
    model, flags = cpu_description()
    return f"{model} ({', '.join(flags) or 'no CPU features of interest'})"
