"""Full-resolution pictures from the live daemon: a 1280x720 camera, detection at 427x240, snapshots and live
frames at 1280x720 that are exactly the frames the boxes were computed on, with inference the bottleneck."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

import cv2
import numpy as np
import pytest

from detectord.contract import parse_detections, parse_frame
from detectord.contract.scene import parse_event

from ..mqtt import Mosquitto, Received, Subscriber
from .conftest import stop_group

REPO = Path(__file__).resolve().parents[2]
WIDTH, HEIGHT = 1280, 720
DETECT = (427, 240)
STEP_PX = 15
"""The person moves this far between frames: a picture of another frame than the boxes' is that far off."""
TOLERANCE_PX = 6.0
"""A box found at 427x240 lands within this many full-size pixels of the person (one detection pixel is 3)."""


def moving_person(path: Path, frames: int = 150, fps: float = 25.0) -> Path:
    """A bright 120x360 person crossing a dark 1280x720 picture, ``STEP_PX`` a frame, over and over."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (WIDTH, HEIGHT))
    for i in range(frames):
        image = np.full((HEIGHT, WIDTH, 3), 40, np.uint8)
        x = 40 + (i * STEP_PX) % 1080
        image[200:560, x : x + 120] = 255
        writer.write(image)
    writer.release()
    return path


def bright_box(image: np.ndarray) -> np.ndarray:
    ys, xs = np.nonzero(image.min(axis=2) > 200)
    return np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], float)


def scaled(box: list[float], size: tuple[int, int]) -> np.ndarray:
    sx, sy = size[0] / DETECT[0], size[1] / DETECT[1]
    return np.array(box) * [sx, sy, sx, sy]


def decode(message: Received) -> np.ndarray:
    return cv2.imdecode(np.frombuffer(message.payload, np.uint8), cv2.IMREAD_COLOR)


@pytest.mark.slow
def test_full_resolution_frames_and_snapshots_are_the_frames_the_boxes_were_found_on(
    tmp_path: Path, broker: Mosquitto, subscriber: Subscriber
) -> None:
    moving_person(tmp_path / "walk.mp4")
    camera = f"p{uuid.uuid4().hex[:6]}"
    config = tmp_path / "pictures.toml"
    config.write_text(
        f'camera = "{camera}"\n[mqtt]\nport = {broker.port}\n[publish]\nframe_size = "native"\n'
        "[events]\nmin_frames = 2\n[events.snapshot]\ndraw_box = false\n"
    )
    log = tmp_path / "daemon.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.daemon.live_runner", "slow", "--config", str(config),
         "--source", str(tmp_path / "walk.mp4"), "--loop"],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=log.open("w"), start_new_session=True,
    )  # fmt: skip

    def enough() -> bool:
        return len(subscriber.on(f"{camera}/frame")) >= 25 and bool(subscriber.on(f"{camera}/person/snapshot"))

    try:
        assert subscriber.wait_for(enough, 90), log.read_text()
    finally:
        assert stop_group(process) == 0, log.read_text()

    detections = {}
    for message in subscriber.on(f"{camera}/detections"):
        parsed = parse_detections(message.payload)
        detections[parsed["frame_id"]] = parsed
    checked = 0
    for message in subscriber.on(f"{camera}/frame"):
        frame_id = parse_frame(message.payload, message.properties)[0]
        found = detections.get(frame_id)
        if found is None or len(found["detections"]) != 1:
            continue
        assert found["size"] == list(DETECT), "boxes stay in detection coordinates"
        image = decode(message)
        assert image.shape == (HEIGHT, WIDTH, 3), "native: the camera's own size"
        where = scaled(found["detections"][0]["box"], (WIDTH, HEIGHT))
        assert np.abs(where - bright_box(image)).max() <= TOLERANCE_PX, (frame_id, where, bright_box(image))
        checked += 1
    assert checked >= 20, f"only {checked} frames with a person"

    events = [parse_event(m.payload) for m in subscriber.on(f"{camera}/events")]
    named = {event["snapshot_frame_id"]: event["snapshot_box"] for event in events if event["snapshot_box"]}
    for message in subscriber.on(f"{camera}/person/snapshot"):
        frame_id = parse_frame(message.payload, message.properties)[0]
        snapshot = decode(message)
        assert snapshot.shape == (HEIGHT, WIDTH, 3), "Home Assistant's camera gets the full frame"
        assert frame_id in named
        assert np.abs(scaled(named[frame_id], (WIDTH, HEIGHT)) - bright_box(snapshot)).max() <= TOLERANCE_PX
