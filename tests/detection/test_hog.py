"""hog-people on real footage that a package ships (OpenCV's sample video of pedestrians, Debian's opencv-doc)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from detectord.detection import PERSON, DetectorOptions, ModelOptionError, check_options
from detectord.detection.opencv.hog import WINDOW_MARGIN, HogPeopleDetector, margin_to_score, merge_overlapping
from detectord.detection.regions import combine, plan
from detectord.detection.tracking import box_iou

SAMPLES = Path("/usr/share/doc/opencv-doc/examples/data")
PEDESTRIANS = SAMPLES / "vtest.avi"
SIZE = (427, 240)


def frames(path: Path, count: int) -> list[np.ndarray]:
    capture = cv2.VideoCapture(str(path))
    out = []
    while len(out) < count:
        ok, frame = capture.read()
        assert ok, f"{path} ended after {len(out)} frames (install.sh installs opencv-doc)"
        out.append(cv2.resize(frame, SIZE, interpolation=cv2.INTER_AREA))
    return out


@pytest.fixture(scope="module")
def detector() -> HogPeopleDetector:
    return HogPeopleDetector(SIZE)


def test_it_finds_the_people_walking_in_real_footage_at_427x240(detector: HogPeopleDetector) -> None:
    found = detector(frames(PEDESTRIANS, 30))
    assert len(found) == 30
    with_people = [dets for dets in found if len(dets)]
    assert len(with_people) >= 24, f"people found in only {len(with_people)} of 30 frames"
    for dets in with_people:
        assert (dets.labels == PERSON).all()
        assert ((dets.scores > 0) & (dets.scores < 1)).all()
        assert list(dets.scores) == sorted(dets.scores, reverse=True)
        width, height = dets.boxes[:, 2] - dets.boxes[:, 0], dets.boxes[:, 3] - dets.boxes[:, 1]
        assert (height > width).all(), "a standing person is taller than wide"
        assert (dets.boxes[:, [0, 2]] <= SIZE[0]).all() and (dets.boxes[:, [1, 3]] <= SIZE[1]).all()


def test_it_finds_nobody_in_scenes_without_people(detector: HogPeopleDetector) -> None:
    flat = np.full((SIZE[1], SIZE[0], 3), 128, np.uint8)
    noise = np.random.default_rng(0).normal(128, 20, flat.shape).clip(0, 255).astype(np.uint8)
    photos = [cv2.resize(cv2.imread(str(SAMPLES / name)), SIZE) for name in ("building.jpg", "fruits.jpg")]
    assert [len(dets) for dets in detector([flat, noise, *photos])] == [0, 0, 0, 0]


def test_frames_of_any_size_are_searched_at_one_height_and_boxes_come_back_in_their_pixels() -> None:
    detector = HogPeopleDetector(SIZE)
    frame, small = next((f, d) for f in frames(PEDESTRIANS, 10) for d in detector([f]) if len(d))
    large_frame = cv2.resize(frame, (SIZE[0] * 2, SIZE[1] * 2), interpolation=cv2.INTER_CUBIC)
    large = HogPeopleDetector((SIZE[0] * 2, SIZE[1] * 2))([large_frame])[0]
    assert len(large)
    nearest = np.abs(large.boxes[:, None, :] / 2 - small.boxes[None, :, :]).max(axis=2).min(axis=0)
    assert (nearest < 12).mean() >= 0.5, "the same people, in the larger frame's pixels"


def test_overlapping_boxes_merge_into_the_best_one_and_neighbours_stay_apart() -> None:
    boxes = np.array([[10, 10, 60, 130], [14, 12, 58, 126], [20, 30, 50, 100], [200, 10, 250, 130]], np.float32)
    scores = np.array([0.7, 0.9, 0.5, 0.6], np.float32)
    assert merge_overlapping(boxes, scores).tolist() == [1, 3]
    side_by_side = np.array([[100, 40, 120, 100], [112, 40, 132, 100]], np.float32)  # a third of each overlaps
    assert merge_overlapping(side_by_side, np.array([0.9, 0.8], np.float32)).tolist() == [0, 1]


def test_boxes_fit_the_person_not_the_detection_window_on_real_footage() -> None:
    """The 64x128 window holds the person with a margin: reported as it was, a box was twice a person's width.
    Foreground (a frame's difference from the background, the median of the clip) fills the fitted boxes about
    twice as densely as the windows, and the fitted boxes still hold most of the windows' foreground."""
    clip = frames(PEDESTRIANS, 120)
    background = np.median(np.stack(clip[::4]), axis=0).astype(np.int16)
    fills, windows, held = [], [], []
    for image, found in zip(clip[:40], HogPeopleDetector(SIZE)(clip[:40]), strict=True):
        moving = np.abs(image.astype(np.int16) - background).max(axis=2) > 30
        for box, window in zip(found.boxes, _windows(found.boxes), strict=True):
            inside, around = _pixels(moving, box), _pixels(moving, window)
            if around.sum():
                fills.append(inside.mean())
                windows.append(around.mean())
                held.append(inside.sum() / around.sum())
    assert len(fills) >= 40
    assert np.mean(fills) >= 1.5 * np.mean(windows), (np.mean(fills), np.mean(windows))
    assert np.median(held) >= 0.6, "most of what moves around a person is the person"


def _windows(boxes: np.ndarray) -> np.ndarray:
    """The detection windows the fitted ``boxes`` came from (``WINDOW_MARGIN`` added back)."""
    mx, my = WINDOW_MARGIN
    width, height = (boxes[:, 2] - boxes[:, 0]) / (1 - 2 * mx), (boxes[:, 3] - boxes[:, 1]) / (1 - 2 * my)
    return np.stack([boxes[:, 0] - mx * width, boxes[:, 1] - my * height, boxes[:, 2] + mx * width,
                     boxes[:, 3] + my * height], axis=1)  # fmt: skip


def _pixels(mask: np.ndarray, box: np.ndarray) -> np.ndarray:
    x1, y1, x2, y2 = (max(0, round(float(v))) for v in box)
    return mask[y1:y2, x1:x2]
    assert margin_to_score(np.array([0.0, np.log(2)]))[1] == pytest.approx(0.5)


@pytest.mark.parametrize(
    ("weights", "device", "precision", "option"),
    [
        ("random", "cpu", "fp32", "weights"),
        ("default", "cuda", "fp32", "device"),
        ("default", "cpu", "fp16", "precision"),
    ],
)
def test_options_that_do_not_apply_are_refused_naming_the_option(
    weights: str, device: str, precision: str, option: str
) -> None:
    with pytest.raises(ModelOptionError) as raised:
        check_options(DetectorOptions(name="hog-people", weights=weights, device=device, precision=precision))
    assert raised.value.option == option


def test_a_person_is_found_in_a_region_around_them_as_in_the_whole_frame(detector: HogPeopleDetector) -> None:
    """Regions (``detection/regions.py``) are searched at the whole frame's scale: the person the whole frame
    shows is in the region's result, where the whole frame has them."""
    found = matched = 0
    for frame in frames(PEDESTRIANS, 40):
        (whole,) = detector([frame])
        best = whole.boxes[:1][whole.scores[:1] >= 0.5]
        if not len(best):
            continue
        regions = plan(SIZE, best, np.zeros((0, 4), np.float32))
        assert regions is not None
        crops = [frame[y1:y2, x1:x2] for x1, y1, x2, y2 in regions]
        looked = combine(detector.detect_crops(crops, SIZE), regions, None)
        found += 1
        matched += bool(len(looked)) and box_iou(best, looked.boxes).max() >= 0.7
    assert found >= 20 and matched >= 0.8 * found, f"{matched} of {found}"


def test_a_crop_smaller_than_the_window_finds_nothing_rather_than_failing(detector: HogPeopleDetector) -> None:
    (frame,) = frames(PEDESTRIANS, 1)
    assert [len(d) for d in detector.detect_crops([frame[:20, :20]], SIZE)] == [0]
