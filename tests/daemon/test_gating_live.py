"""Motion gating in the live daemon: real processes, a real Mosquitto, a scripted clip where a person walks
in, stands still, and walks out of an otherwise still picture (the test double reports the white rectangle,
and looks at regions of frames as hog-people and Faster R-CNN do)."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

import cv2
import numpy as np
import pytest

from detectord.contract import parse_detections, parse_stats
from detectord.contract.scene import parse_event
from detectord.detection.regions import WHOLE_SHARE

from ..mqtt import Mosquitto, Subscriber
from .conftest import stop_group

REPO = Path(__file__).resolve().parents[2]
FPS = 10.0
WIDTH, HEIGHT = 854, 480
LOOP_S = 16.0


def person_x(t: float) -> int | None:
    """0-2 s nobody; 2-4 s walks in from the left to x 400; 4-10 s stands there; 10-12 s walks out right."""
    if 2.0 <= t < 4.0:
        return int(40 + (t - 2.0) / 2.0 * 360)
    if 4.0 <= t < 10.0:
        return 400
    if 10.0 <= t < 12.0:
        return int(400 + (t - 10.0) / 2.0 * 400)
    return None


def scripted_clip(path: Path) -> Path:
    rng = np.random.default_rng(0)
    background = cv2.GaussianBlur(rng.integers(30, 120, (HEIGHT, WIDTH, 3), dtype=np.uint8), (31, 31), 0)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), FPS, (WIDTH, HEIGHT))
    for i in range(int(LOOP_S * FPS)):
        image = np.clip(background + rng.normal(0, 2, background.shape), 0, 255).astype(np.uint8)
        x = person_x(i / FPS)
        if x is not None:
            image[120:420, x : x + 80] = 255
        writer.write(image)
    writer.release()
    return path


@pytest.mark.slow
def test_the_model_runs_on_motion_rechecks_a_still_person_and_idles_on_a_still_scene(
    tmp_path: Path, broker: Mosquitto, subscriber: Subscriber
) -> None:
    clip = scripted_clip(tmp_path / "clip.mp4")
    camera = f"g{uuid.uuid4().hex[:6]}"
    config = tmp_path / "gated.toml"
    config.write_text(
        f'camera = "{camera}"\n[mqtt]\nport = {broker.port}\nstats_interval_s = 1.0\nhomeassistant_node = "gnode"\n'
        "[detect]\nstationary_interval_s = 1.0\nidle_interval_s = 3.0\nidle_fps = 2.0\n"
        "[events]\nmin_frames = 2\nend_after_s = 2.5\n"
    )
    log = tmp_path / "daemon.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.daemon.live_runner", "region-blobs", "--config", str(config),
         "--source", str(clip), "--loop"],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=log.open("w"), start_new_session=True,
    )  # fmt: skip

    def frames() -> list[dict]:
        return [parse_detections(m.payload) for m in subscriber.on(f"{camera}/detections")]

    def two_loops() -> bool:
        found = frames()
        return len(found) > 2 and found[-1]["ts"]["capture"] - found[0]["ts"]["capture"] > 2 * LOOP_S + 4

    try:
        assert subscriber.wait_for(two_loops, 90), log.read_text()
    finally:
        assert stop_group(process) == 0, log.read_text()

    found = frames()
    start = next(f["ts"]["capture"] for f in found if f["inference"]["reason"] == "motion") - 2.0  # walk-in at 2 s
    second = [f for f in found if LOOP_S <= f["ts"]["capture"] - start < 2 * LOOP_S]  # a whole loop, warmed up

    def during(low: float, high: float, frames: list[dict] = second) -> list[dict]:
        return [f for f in frames if low <= f["ts"]["capture"] - start - LOOP_S < high]

    walking = during(2.2, 3.8) + during(10.2, 11.8)
    assert walking and all(f["inference"]["ran"] and f["inference"]["reason"] == "motion" for f in walking)
    assert all(f["motion"] for f in walking), "the frame's motion boxes travel with it"
    looked = [f for f in walking if "regions" in f["inference"]]
    assert len(looked) >= len(walking) // 2, "the model looked where the person moved, not at the whole frame"
    for f in looked:
        area = sum((x2 - x1) * (y2 - y1) for x1, y1, x2, y2 in f["inference"]["regions"])
        assert area <= WHOLE_SHARE * f["size"][0] * f["size"][1], f["inference"]
        (person,) = [d["box"] for d in f["detections"]]  # 80x300 of 854x480, analysed at 427x240
        assert abs(person[2] - person[0] - 40) <= 3 and abs(person[3] - person[1] - 150) <= 3, "found whole"
    standing = during(4.5, 9.8)
    reasons = [f["inference"]["reason"] for f in standing]
    assert reasons.count("tracking") >= 4 and reasons.count("motion") == 0, reasons
    assert all("regions" in f["inference"] for f in standing if f["inference"]["reason"] == "tracking")
    assert reasons.count("idle") >= 4, "the viewer keeps getting frames while the model rests"
    assert all(f["detections"] for f in standing), "an idle frame carries the last run's detections"
    empty = during(12.5, LOOP_S + 1.8, found)  # the second loop's end and the third's start: 5.3 s, nobody
    times = [round(f["ts"]["capture"] - start, 2) for f in found]
    # idle frames come every 1 / idle_fps s of capture time, or one frame (0.1 s) later when the capture clock's
    # jitter makes the interval a hair short: the window's last frame is after 17.0 s, not always after 17.5 s
    assert empty[-1]["ts"]["capture"] - start - LOOP_S > LOOP_S + 1.0, f"the third loop began: {times[-40:]}"
    assert "keepalive" in [f["inference"]["reason"] for f in empty]
    assert sum(f["inference"]["ran"] for f in empty) <= 3, "a still, empty picture costs a keep-alive only"
    gaps = np.diff([f["ts"]["capture"] for f in second])
    assert gaps.max() <= 0.5 + 0.25, "never more than 1 / idle_fps without a frame"

    events = [parse_event(m.payload) for m in subscriber.on(f"{camera}/events")]
    in_loop = [e for e in events if LOOP_S + 1 <= e["start_time"] - start < 2 * LOOP_S]
    assert [e["type"] for e in in_loop if e["type"] != "update"] == ["new", "end"], "one person, one event"
    end = next(e for e in in_loop if e["type"] == "end")
    assert end["end_time"] - start - LOOP_S > 10.0, "standing still did not end the event"

    motion = [(m.at, m.payload) for m in subscriber.on(f"{camera}/motion")]
    assert b"ON" in [payload for _, payload in motion] and motion[-1][1] == b"OFF"
    stats = parse_stats(subscriber.on(f"{camera}/stats")[-1].payload)
    assert stats["gating"] is not None and 0 < (stats["gating"]["model_share"] or 1) < 0.8, stats["gating"]
    assert 0 < (stats["gating"]["model_area"] or 1) < 1, "some looks were at regions, smaller than the frame"
    configs = {m.topic: json.loads(m.payload) for m in subscriber.on("/config") if m.payload and "/gnode/" in m.topic}
    sensor = configs[f"homeassistant/binary_sensor/gnode/{camera}_motion/config"]
    assert sensor["device_class"] == "motion" and sensor["state_topic"] == f"detector/{camera}/motion"
