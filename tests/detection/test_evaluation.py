"""COCO mAP and fidelity on fixtures with known answers."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from detectord.detection import PERSON, Detections, MainPerson
from detectord.detection.torchvision.evaluation import (
    coco_from_dataset,
    coco_map,
    evaluate_coco,
    fidelity_map,
    main_person_iou,
)

CAR = 3
GT = [  # image_id, category, x, y, w, h
    (1, PERSON, 10, 10, 50, 100),
    (1, CAR, 100, 50, 80, 40),
    (2, PERSON, 30, 20, 40, 90),
    (2, PERSON, 120, 30, 30, 60),
]


def _dataset() -> dict:
    return {
        "images": [{"id": 1, "file_name": "1.jpg", "width": 200, "height": 150},
                   {"id": 2, "file_name": "2.jpg", "width": 200, "height": 150}],
        "annotations": [
            {"id": n, "image_id": i, "category_id": c, "bbox": [x, y, w, h], "area": w * h, "iscrowd": 0}
            for n, (i, c, x, y, w, h) in enumerate(GT, start=1)
        ],
        "categories": [{"id": PERSON, "name": "person"}, {"id": CAR, "name": "car"}],
    }  # fmt: skip


def _result(i: int, c: int, x: float, y: float, w: float, h: float, score: float = 0.9) -> dict:
    return {"image_id": i, "category_id": c, "bbox": [x, y, w, h], "score": score}


def test_perfect_predictions_score_ap_one() -> None:
    truth = coco_from_dataset(_dataset())
    results = [_result(i, c, x, y, w, h) for i, c, x, y, w, h in GT]
    assert coco_map(truth, results, [1, 2]) == pytest.approx(1.0)
    assert coco_map(truth, results, [1, 2], [PERSON]) == pytest.approx(1.0)


def test_a_missed_person_scores_the_known_lower_value() -> None:
    """Person AP with 2 of 3 found: precision 1 up to recall 2/3, then nothing.

    COCO interpolates at 101 recall points 0, 0.01, ..., 1; those up to 0.66
    (67 points) have precision 1, so AP = 67/101 at every IoU threshold.
    """
    truth = coco_from_dataset(_dataset())
    results = [_result(i, c, x, y, w, h) for i, c, x, y, w, h in GT[:3]]
    assert coco_map(truth, results, [1, 2], [PERSON]) == pytest.approx(67 / 101)
    assert coco_map(truth, results, [1, 2]) == pytest.approx((67 / 101 + 1.0) / 2), "car AP stays 1"


def test_a_box_shifted_off_most_iou_thresholds_loses_those_thresholds() -> None:
    truth = coco_from_dataset(_dataset())
    # image 1's car shifted by 10 of 80 px: IoU = 70*40 / (90*40 + 10*40)... computed below
    shifted = [_result(i, c, x + (10 if c == CAR else 0), y, w, h) for i, c, x, y, w, h in GT]
    iou = (70 * 40) / (80 * 40 + 80 * 40 - 70 * 40)  # 0.778
    thresholds = np.linspace(0.5, 0.95, 10)
    expected_car = float(np.mean(thresholds <= iou + 1e-9))
    assert coco_map(truth, shifted, [1, 2], [CAR]) == pytest.approx(expected_car)


def _dets(*boxes: tuple[float, float, float, float], score: float = 0.9) -> Detections:
    return Detections(
        np.array(boxes, np.float32).reshape(-1, 4),
        np.full(len(boxes), score, np.float32),
        np.full(len(boxes), PERSON, np.int32),
    )


def test_fidelity_is_one_for_identical_predictions_and_less_for_shifted_boxes() -> None:
    reference = [_dets((10, 10, 60, 110), (100, 20, 150, 120)), _dets((5, 5, 45, 85))]
    assert fidelity_map(reference, reference) == pytest.approx(1.0)
    shifted = [Detections(d.boxes + np.array([8, 0, 8, 0], np.float32), d.scores, d.labels) for d in reference]
    assert fidelity_map(reference, shifted) < 0.9
    assert fidelity_map(reference, [Detections.empty(), Detections.empty()]) == 0.0
    assert fidelity_map([Detections.empty()], [Detections.empty()]) is None


def test_main_person_iou_counts_a_lost_main_person_as_zero() -> None:
    a = MainPerson(0, (0.0, 0.0, 10.0, 10.0), 0.99, 1)
    b = MainPerson(0, (0.0, 0.0, 10.0, 5.0), 0.99, 1)
    assert main_person_iou([a, a, None], [a, b, a]) == pytest.approx((1.0 + 0.5) / 2)
    assert main_person_iou([a], [None]) == 0.0
    assert main_person_iou([None], [a]) is None


class _OracleDetector:
    """Returns the ground truth of the image it is shown, found by its size (a test double)."""

    def __init__(self, by_size: dict[tuple[int, int], Detections]) -> None:
        self.by_size = by_size

    def __call__(self, frames: list[np.ndarray]) -> list[Detections]:
        return [self.by_size[f.shape[:2]] for f in frames]


def test_evaluate_coco_reads_a_val2017_layout_and_scores_perfect_predictions(tmp_path: Path) -> None:
    dataset = _dataset()
    dataset["images"][1].update(width=180, height=120)
    (tmp_path / "annotations").mkdir()
    (tmp_path / "annotations" / "instances_val2017.json").write_text(json.dumps(dataset))
    (tmp_path / "val2017").mkdir()
    by_size = {}
    for image in dataset["images"]:
        cv2.imwrite(str(tmp_path / "val2017" / image["file_name"]), np.zeros((image["height"], image["width"], 3)))
        rows = [(c, x, y, w, h) for i, c, x, y, w, h in GT if i == image["id"]]
        by_size[(image["height"], image["width"])] = Detections(
            np.array([[x, y, x + w, y + h] for _, x, y, w, h in rows], np.float32),
            np.full(len(rows), 0.9, np.float32),
            np.array([c for c, *_ in rows], np.int32),
        )
    scores = evaluate_coco(_OracleDetector(by_size), tmp_path)
    assert scores.images == 2
    assert scores.box_map == pytest.approx(1.0) and scores.person_map == pytest.approx(1.0)
    limited = evaluate_coco(_OracleDetector(by_size), tmp_path, limit=1)
    assert limited.images == 1
