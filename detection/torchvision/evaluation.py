"""Accuracy with pycocotools: COCO box mAP, and fidelity of one scheme's detections to another's.

Fidelity needs no labels: the float32 model's detections are taken as ground
truth and a scheme's detections scored against them with the same COCO
protocol (AP averaged over IoU 0.50:0.95). 1.0 means the scheme reproduces
every float32 box, class and ranking; it works with any weights, trained
or not, which is what lets it run where no dataset can be downloaded.

COCO val2017 mAP is computed as torchvision's reference evaluation does
(``references/detection/coco_eval.py``): boxes converted to x, y, width,
height in original image pixels, ``COCOeval(iouType="bbox")``, evaluate,
accumulate, summarize, and ``stats[0]``.
"""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval
from torchvision.ops import box_iou

from detectord.detection.types import PERSON, Detections, FrameDetector, MainPerson

from .labels import COCO_CATEGORIES


def to_coco_results(detections: Detections, image_id: int) -> list[dict[str, Any]]:
    """COCO result entries (bbox as x, y, width, height) for one image."""
    return [
        {
            "image_id": image_id,
            "category_id": int(label),
            "bbox": [float(x1), float(y1), float(x2 - x1), float(y2 - y1)],
            "score": float(score),
        }
        for (x1, y1, x2, y2), score, label in zip(detections.boxes, detections.scores, detections.labels, strict=True)
    ]


def coco_from_dataset(dataset: dict[str, Any]) -> COCO:
    coco = COCO()
    coco.dataset = dataset
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    return coco


def coco_map(
    ground_truth: COCO,
    results: list[dict[str, Any]],
    image_ids: Sequence[int],
    category_ids: Sequence[int] | None = None,
) -> float | None:
    """COCO AP@[.50:.95] of ``results`` on ``image_ids`` (optionally only ``category_ids``); None if undefined."""
    if not results:
        return 0.0 if ground_truth.getAnnIds(imgIds=list(image_ids)) else None
    with contextlib.redirect_stdout(io.StringIO()):
        detections = ground_truth.loadRes(results)
        evaluator = COCOeval(ground_truth, detections, iouType="bbox")
        evaluator.params.imgIds = list(image_ids)
        if category_ids is not None:
            evaluator.params.catIds = list(category_ids)
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    value = float(evaluator.stats[0])
    return None if value < 0 else value


def fidelity_map(reference: Sequence[Detections], candidate: Sequence[Detections]) -> float | None:
    """COCO mAP of ``candidate`` scored against ``reference`` as ground truth, frame by frame.

    None when the reference has no detections at all (nothing to agree on).
    """
    annotations = [
        {
            "id": n,
            "image_id": result["image_id"],
            "category_id": result["category_id"],
            "bbox": result["bbox"],
            "area": result["bbox"][2] * result["bbox"][3],
            "iscrowd": 0,
        }
        for n, result in enumerate((r for i, d in enumerate(reference) for r in to_coco_results(d, i)), start=1)
    ]
    if not annotations:
        return None
    truth = coco_from_dataset(
        {
            "images": [{"id": i} for i in range(len(reference))],
            "annotations": annotations,
            "categories": [{"id": i, "name": name} for i, name in enumerate(COCO_CATEGORIES) if i > 0],
        }
    )
    results = [r for i, d in enumerate(candidate) for r in to_coco_results(d, i)]
    return coco_map(truth, results, range(len(reference)))


def _iou(a: Sequence[float], b: Sequence[float]) -> float:
    iou = box_iou(torch.tensor([a], dtype=torch.float64), torch.tensor([b], dtype=torch.float64))
    return float(torch.nan_to_num(iou, nan=0.0)[0, 0])  # two empty boxes: 0/0


def main_person_iou(reference: Sequence[MainPerson | None], candidate: Sequence[MainPerson | None]) -> float | None:
    """Mean IoU of the main-person box over frames where the reference has one (missing counts 0)."""
    ious = [
        _iou(ref.box, cand.box) if cand is not None else 0.0
        for ref, cand in zip(reference, candidate, strict=True)
        if ref is not None
    ]
    return float(np.mean(ious)) if ious else None


def people_found(reference: Sequence[Detections], candidate: Sequence[Detections], threshold: float) -> float | None:
    """The share of the reference's persons scoring at least ``threshold`` that the candidate also finds at
    that score (IoU at least 0.5, each candidate box matched once); None when the reference has none."""
    total = found = 0
    for want, got in zip(reference, candidate, strict=True):
        wanted = want.boxes[(want.labels == PERSON) & (want.scores >= threshold)]
        mine = torch.from_numpy(got.boxes[(got.labels == PERSON) & (got.scores >= threshold)]).double()
        total += len(wanted)
        if not len(wanted) or not len(mine):
            continue
        overlaps = box_iou(torch.from_numpy(wanted).double(), mine)
        for row in overlaps:
            best = int(row.argmax())
            if row[best] >= 0.5:
                found += 1
                overlaps[:, best] = -1.0
    return found / total if total else None


def backbone_features(detector: Any, frame: np.ndarray) -> dict[str, torch.Tensor]:
    """What the backbone (with its FPN) hands the heads for ``frame``, as float32, whatever the scheme."""
    inner = getattr(detector.model, "model", detector.model)
    captured: dict[str, torch.Tensor] = {}

    def hook(module: torch.nn.Module, args: Any, output: Any) -> None:
        items = output.items() if isinstance(output, dict) else [("0", output)]
        captured.update({name: value.detach().float().cpu() for name, value in items})

    handle = inner.backbone.register_forward_hook(hook)
    try:
        detector([frame])
    finally:
        handle.remove()
    return captured


def feature_error(reference: Any, detector: Any, frames: Sequence[np.ndarray]) -> float:
    """Mean relative L2 distance of ``detector``'s backbone features from ``reference``'s (fp32), over levels
    and frames: upstream of the heads, so it means something even with untrained weights."""
    errors = []
    for frame in frames:
        want, got = backbone_features(reference, frame), backbone_features(detector, frame)
        errors += [float((got[k] - want[k]).norm() / want[k].norm().clamp_min(1e-12)) for k in want]
    return float(np.mean(errors))


@dataclass(frozen=True)
class CocoScores:
    images: int
    box_map: float | None
    person_map: float | None


def _coco_images(root: Path, limit: int | None) -> tuple[COCO, list[dict[str, Any]], Path]:
    annotations = root / "annotations" / "instances_val2017.json"
    if not annotations.is_file():
        raise FileNotFoundError(f"{annotations} not found (expected COCO val2017 under {root})")
    image_dir = next((d for d in (root / "val2017", root / "images") if d.is_dir()), None)
    if image_dir is None:
        raise FileNotFoundError(f"no image folder under {root} (val2017/ or images/)")
    truth = coco_from_dataset(json.loads(annotations.read_text()))
    images = [truth.imgs[i] for i in sorted(truth.getImgIds())]
    return truth, images[:limit] if limit else images, image_dir


def _read(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise FileNotFoundError(f"cannot read {path}")
    return image


def evaluate_coco(detector: FrameDetector, root: Path, limit: int | None = None) -> CocoScores:
    """Box mAP (all classes, and person only) of ``detector`` on COCO val2017 under ``root``.

    Each image is run at its own size as the detector's profile treats a
    frame of that size (native profiles: no resize; ``reference``: 800 px).
    """
    truth, images, image_dir = _coco_images(root, limit)
    results: list[dict[str, Any]] = []
    set_size = getattr(detector, "set_frame_size", None)
    for info in images:
        image = _read(image_dir / info["file_name"])
        if set_size is not None:
            set_size((image.shape[1], image.shape[0]))
        (found,) = detector([image])
        results.extend(to_coco_results(found, info["id"]))
    ids = [info["id"] for info in images]
    return CocoScores(
        images=len(ids),
        box_map=coco_map(truth, results, ids),
        person_map=coco_map(truth, [r for r in results if r["category_id"] == PERSON], ids, [PERSON]),
    )
