from __future__ import annotations

import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from detectord.contract import Detection, build_detections, build_stats
from detectord.daemon.cli.mosquitto import Mosquitto, free_port

from ..mqtt import Subscriber

REPO = Path(__file__).resolve().parents[2]


@dataclass
class Viewer:
    url: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    def get(self, path: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        request = urllib.request.Request(self.url + path.lstrip("/"), headers=headers or {})
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()


def start_viewer(tmp_path: Path, broker: Mosquitto, *extra: str) -> Viewer:
    port = free_port()
    log = tmp_path / f"viewer-{port}.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "detectord.web", "--port", str(port), "--mqtt-port", str(broker.port), *extra],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=log.open("w"),
    )  # fmt: skip
    viewer = Viewer(f"http://127.0.0.1:{port}/", port, process, log)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            status, body = viewer.get("/healthz")
            if status == 200 and b'"mqtt_connected": true' in body:
                return viewer
        except OSError:
            pass
        time.sleep(0.1)
    process.terminate()
    raise RuntimeError(f"viewer did not start: {log.read_text()}")


@pytest.fixture
def viewer(tmp_path: Path, broker: Mosquitto) -> Iterator[Viewer]:
    v = start_viewer(tmp_path, broker)
    yield v
    v.process.terminate()
    v.process.wait(10)


@pytest.fixture
def mqtt(broker: Mosquitto) -> Iterator[Subscriber]:
    client = Subscriber(broker.port, topic="nothing/#")
    yield client
    client.close()


def jpeg(width: int = 427, height: int = 240, value: int = 128, noise: bool = False) -> bytes:
    if noise:
        image = np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)
    else:
        image = np.full((height, width, 3), value, np.uint8)
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 95])
    assert ok
    return data.tobytes()


def detections(
    frame_id: int,
    box: list[float],
    main: bool = True,
    capture: float | None = None,
    camera: str = "front",
    inference: dict[str, Any] | None = None,
    motion: list[list[float]] | None = None,
) -> dict[str, Any]:
    now = capture if capture is not None else time.time()
    x1, y1, x2, y2 = box
    return build_detections(
        camera=camera,
        frame_id=frame_id,
        size=(427, 240),
        ts={"capture": now, "inference_start": now, "inference_end": now, "publish": now},
        model={"name": "fasterrcnn_resnet50_fpn", "precision": "fp32", "device": "cpu"},
        detections=[Detection("person", 1, 0.97, (x1, y1, x2, y2))],
        main_person=(0, 3) if main else None,
        inference=inference,  # type: ignore[arg-type]
        motion=motion,
    )


def stats(source_status: str = "streaming", inference_fps: float = 3.5) -> dict[str, Any]:
    stage = {"fps": inference_fps, "frames": 10, "pid": 1234, "restarts": 0, "status": "", "cpu_percent": 50.0,
             "rss_mb": 900.0}  # fmt: skip
    return build_stats(
        camera="front",
        host="cellar",
        ts=time.time(),
        uptime_s=10.0,
        source_status=source_status,
        stages={"inference": stage},
        drops={"capture": 0},
        latency={"end_to_end": None},
        mqtt={"connected": True, "connections": 1, "sent": 10},
        supervisor={"pid": 1233, "cpu_percent": 1.0, "rss_mb": 50.0, "uss_mb": 25.0},
        device={"cpu": "Some CPU", "cpu_flags": ["avx2"], "precision": "bf16", "reason": "auto: …"},
        gating={"frames": 100, "motion_frames": 30, "model_frames": 40, "motion_fps": 1.0, "model_share": 0.4,
                "model_s_saved": 6.0, "model_area": 0.25},
    )  # fmt: skip


def publish_frame(client: Subscriber, camera: str, frame_id: int, box: list[float], image: bytes, **kw: Any) -> None:
    import json

    client.publish(f"detector/{camera}/detections", json.dumps(detections(frame_id, box, camera=camera, **kw)))
    client.publish(f"detector/{camera}/frame", image, user_property=[("frame_id", str(frame_id))])
