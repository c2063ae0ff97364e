"""The motion detector on pictures made here: real footage's textures, noise, JPEG, a light switched on."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from detectord.detection.motion import MotionConfig, MotionDetector

SIZE = (427, 240)
PEDESTRIANS = Path("/usr/share/doc/opencv-doc/examples/data/vtest.avi")
FPS = 10.0


def _scene() -> np.ndarray:
    """A real still background: the pedestrian sample's first frame, its people blurred away (the median of
    frames spread over the clip)."""
    capture = cv2.VideoCapture(str(PEDESTRIANS))
    frames = []
    for _ in range(200):
        ok, frame = capture.read()
        assert ok, f"{PEDESTRIANS}: install.sh installs opencv-doc"
        frames.append(cv2.resize(frame, SIZE, interpolation=cv2.INTER_AREA))
    return np.median(np.stack(frames[::10]), axis=0).astype(np.uint8)


@pytest.fixture(scope="module")
def scene() -> np.ndarray:
    return _scene()


def _noisy(image: np.ndarray, rng: np.random.Generator, quality: int = 60) -> np.ndarray:
    """Sensor noise, then a JPEG round trip: what a cheap camera's still picture looks like frame to frame."""
    noisy = np.clip(image.astype(np.int16) + rng.normal(0, 4, image.shape), 0, 255).astype(np.uint8)
    return cv2.imdecode(cv2.imencode(".jpg", noisy, [cv2.IMWRITE_JPEG_QUALITY, quality])[1], cv2.IMREAD_COLOR)


def _with_person(image: np.ndarray, x: int) -> np.ndarray:
    out = image.copy()
    out[100:200, x : x + 30] = (25, 25, 35)  # dark clothes
    out[85:100, x + 8 : x + 22] = (150, 170, 210)
    return out


def test_noise_and_jpeg_artefacts_on_a_still_scene_are_no_motion(scene: np.ndarray) -> None:
    detector, rng = MotionDetector(MotionConfig(), SIZE), np.random.default_rng(0)
    found = [detector.detect(_noisy(scene, rng), i / FPS) for i in range(50)]
    assert not any(found), [m.boxes for m in found if m]


def test_a_moving_person_is_a_box_where_they_moved(scene: np.ndarray) -> None:
    detector, rng = MotionDetector(MotionConfig(), SIZE), np.random.default_rng(1)
    for i in range(10):
        detector.detect(_noisy(scene, rng), i / FPS)
    for step in range(10):
        x = 100 + 6 * step
        motion = detector.detect(_noisy(_with_person(scene, x), rng), (10 + step) / FPS)
        assert motion, f"step {step}"
        x1, y1 = motion.boxes[:, :2].min(axis=0)
        x2, y2 = motion.boxes[:, 2:].max(axis=0)
        assert x1 <= x + 8 and x2 >= x + 22 and y1 <= 110 and y2 >= 190, (step, motion.boxes)
        assert x1 >= x - 30 and x2 <= x + 60, "where they are, not elsewhere"


def test_a_person_who_stops_is_no_motion_from_the_next_frame_on(scene: np.ndarray) -> None:
    detector, rng = MotionDetector(MotionConfig(), SIZE), np.random.default_rng(5)
    for i in range(10):
        detector.detect(_noisy(scene, rng), i / FPS)
    for step in range(5):
        assert detector.detect(_noisy(_with_person(scene, 100 + 6 * step), rng), (10 + step) / FPS)
    standing = [detector.detect(_noisy(_with_person(scene, 124), rng), (15 + i) / FPS) for i in range(1, 20)]
    assert not any(standing), "the re-check of a still person is the tracker's job, not motion's"


def test_motion_inside_the_mask_is_ignored_and_outside_it_is_not(scene: np.ndarray) -> None:
    masked = MotionConfig(mask=(((0.0, 0.0), (0.5, 0.0), (0.5, 1.0), (0.0, 1.0)),), normalized=True)
    detector, rng = MotionDetector(masked, SIZE), np.random.default_rng(2)
    for i in range(5):
        detector.detect(_noisy(scene, rng), i / FPS)
    assert not detector.detect(_noisy(_with_person(scene, 80), rng), 0.5), "a swaying tree on the left"
    assert detector.detect(_noisy(_with_person(scene, 300), rng), 0.6), "someone on the right"


def test_a_light_switched_on_is_a_new_background_not_minutes_of_motion(scene: np.ndarray) -> None:
    detector, rng = MotionDetector(MotionConfig(), SIZE), np.random.default_rng(3)
    for i in range(10):
        detector.detect(_noisy(scene, rng), i / FPS)
    lit = np.clip(scene.astype(np.int16) * 1.6 + 40, 0, 255).astype(np.uint8)
    first = detector.detect(_noisy(lit, rng), 1.0)
    assert first.recalibrated and not first
    after = [detector.detect(_noisy(lit, rng), 1.0 + i / FPS) for i in range(1, 30)]
    assert not any(after), "the next frames are the new background already"


def test_a_slow_change_of_light_is_followed_without_motion(scene: np.ndarray) -> None:
    detector, rng = MotionDetector(MotionConfig(), SIZE), np.random.default_rng(4)
    frames = int(120 * FPS)  # two minutes of dusk: 40 % darker, evenly
    moved = 0
    for i in range(frames):
        dimmed = np.clip(scene.astype(np.float32) * (1.0 - 0.4 * i / frames), 0, 255).astype(np.uint8)
        moved += bool(detector.detect(_noisy(dimmed, rng), i / FPS))
    assert moved == 0


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"threshold": 0}, "motion.threshold must be between 1 and 255"),
        ({"contour_area": 0}, "motion.contour_area"),
        ({"mask": (((0.0, 0.0), (1.0, 1.0)),)}, "at least 3 points"),
        ({"mask": (((0.0, 0.0), (2.0, 0.0), (0.0, 1.0)),), "normalized": True}, "normalized points lie in 0..1"),
    ],
)
def test_bad_settings_are_refused_naming_the_key(settings: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        MotionConfig(**settings)


def test_a_mask_point_outside_the_frame_is_refused() -> None:
    with pytest.raises(ValueError, match="outside the 427x240 frame"):
        MotionDetector(MotionConfig(mask=(((0, 0), (500, 0), (0, 100)),)), SIZE)
