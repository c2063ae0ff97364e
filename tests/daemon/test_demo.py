"""``detectord demo``: broker, daemon and viewer from one command, and all of it gone after Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from detectord.daemon.cli.mosquitto import free_port

from ..mqtt import Mosquitto, Subscriber
from .conftest import write_video

PEDESTRIANS = Path("/usr/share/doc/opencv-doc/examples/data/vtest.avi")

REPO = Path(__file__).resolve().parents[2]


def _cameras(port: int) -> dict:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/cameras", timeout=2) as response:
            return json.loads(response.read())["cameras"]
    except OSError:
        return {}


@pytest.mark.slow
def test_demo_on_a_video_file_serves_live_frames_and_stops_cleanly_on_ctrl_c(tmp_path: Path) -> None:
    clip = write_video(tmp_path / "clip.mp4", frames=20)
    port = free_port()
    demo = subprocess.Popen(
        [sys.executable, "-m", "detectord.daemon", "demo", "--source", str(clip.path), "--weights", "random",
         "--port", str(port), "--mqtt-port", str(free_port())],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert demo.stdout is not None
    assert demo.stdout.readline().startswith(f"detectord demo: open http://127.0.0.1:{port}/")
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and _cameras(port).get("default", {}).get("frames", 0) < 2:
        time.sleep(0.5)
    assert _cameras(port)["default"]["status"] == "online"
    demo.send_signal(signal.SIGINT)
    _, stderr = demo.communicate(timeout=60)
    assert demo.returncode == 0, stderr
    assert "started Mosquitto" in stderr and "Traceback" not in stderr
    assert not [f for f in os.listdir("/dev/shm") if f.startswith("detectord-default-")]
    assert _cameras(port) == {}, "the viewer is gone"


def test_demo_without_a_source_or_camera_says_what_to_pass() -> None:
    if Path("/dev/video0").exists():
        return
    done = subprocess.run(
        [sys.executable, "-m", "detectord.daemon", "demo"], cwd=REPO, capture_output=True, text=True, check=False
    )
    assert done.returncode == 2
    assert "pass --source with a video file" in done.stderr and len(done.stderr.splitlines()) == 1


def test_demo_without_torchvision_weights_says_so_and_shows_real_people_with_ssdlite_people(
    tmp_path: Path, broker: Mosquitto, subscriber: Subscriber
) -> None:
    port = free_port()
    offline = {**os.environ, "DETECTORD_OFFLINE": "1", "TORCH_HOME": str(tmp_path / "torch")}
    demo = subprocess.Popen(
        [sys.executable, "-m", "detectord.daemon", "demo", "--source", str(PEDESTRIANS), "--port", str(port),
         "--mqtt-port", str(broker.port)],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=offline,
    )  # fmt: skip
    try:
        assert subscriber.wait_for(lambda: bool(subscriber.on("default/events")), 120), "a person event"
        detections = [json.loads(m.payload) for m in subscriber.on("default/detections")]
        assert {d["model"]["name"] for d in detections} == {"ssdlite-people"}
        assert any(d["detections"] and d["detections"][0]["label"] == "person" for d in detections)
        assert json.loads(subscriber.on("default/events")[0].payload)["type"] == "new"
        assert _cameras(port)["default"]["scene"]["occupancy"] is True
    finally:
        demo.send_signal(signal.SIGINT)
        _, stderr = demo.communicate(timeout=60)
    assert demo.returncode == 0, stderr
    (fallback,) = [line for line in stderr.splitlines() if "running ssdlite-people" in line]
    assert "DETECTORD_OFFLINE is set: running ssdlite-people" in fallback and "--weights random" in fallback
