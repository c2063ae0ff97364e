"""The viewer under load: one camera at 15 fps through Mosquitto, many WebSocket clients.

    python -m bench.web [--clients 20] [--fps 15] [--seconds 20] [--json PATH]

Starts a private Mosquitto and ``detector-web``, publishes 427x240 JPEG frames
(a textured synthetic scene, about the size a camera's are) with their
detections at ``--fps`` for ``--seconds``, and reads them on ``--clients``
WebSocket connections in this process: frames per second delivered per
client (min and median), capture-to-client latency p50/p99 (from the
payload's capture timestamp to the moment a client holds the JPEG), and the
server process's CPU use over the run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import cv2
import gmqtt
import numpy as np
import psutil

from bench.results_io import machine_line, report
from detectord.contract import Detection, build_detections
from detectord.daemon.cli.mosquitto import Mosquitto, free_port
from detectord.detection.devices import describe_machine
from detectord.web.client import frames

BOX = (100.0, 40.0, 180.0, 230.0)


def scene_jpegs(count: int = 30) -> list[bytes]:
    """427x240 JPEGs of a textured scene with a moving figure: as large as a camera's frames are."""
    rng = np.random.default_rng(0)
    background = cv2.GaussianBlur(rng.integers(0, 255, (240, 427, 3), dtype=np.uint8), (0, 0), 1.5)
    out = []
    for i in range(count):
        image = background.copy()
        cv2.rectangle(image, (40 + 8 * i, 60), (90 + 8 * i, 220), (60, 60, 150), -1)
        out.append(cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 80])[1].tobytes())
    return out


async def client(url: str, until: float, latencies: list[float]) -> int:
    received = 0
    async for header, _ in frames(url, until - time.time()):
        latencies.append(time.time() - header["ts"]["capture"])
        received += 1
    return received


async def publish(port: int, jpegs: list[bytes], fps: float, seconds: float) -> int:
    mqtt = gmqtt.Client(f"web-bench-{os.getpid()}")
    await mqtt.connect("127.0.0.1", port)
    start = time.monotonic()
    sent = 0
    while time.monotonic() - start < seconds:
        await asyncio.sleep(max(0.0, start + sent / fps - time.monotonic()))
        now = time.time()
        payload = build_detections(
            camera="bench",
            frame_id=sent,
            size=(427, 240),
            ts={"capture": now, "inference_start": now, "inference_end": now, "publish": now},
            model={"name": "bench", "precision": "fp32", "device": "cpu"},
            detections=[Detection("person", 1, 0.9, BOX)],
            main_person=(0, 1),
        )
        mqtt.publish("detector/bench/detections", json.dumps(payload))
        mqtt.publish("detector/bench/frame", jpegs[sent % len(jpegs)], user_property=[("frame_id", str(sent))])
        sent += 1
    await mqtt.disconnect()
    return sent


async def run(args: argparse.Namespace, broker_port: int, web_port: int, jpegs: list[bytes]) -> dict[str, Any]:
    latencies: list[float] = []
    until = time.time() + args.seconds + 1.0
    clients = [
        asyncio.create_task(client(f"ws://127.0.0.1:{web_port}/ws", until, latencies)) for _ in range(args.clients)
    ]
    await asyncio.sleep(0.5)
    published = await publish(broker_port, jpegs, args.fps, args.seconds)
    received = await asyncio.gather(*clients)
    rates = np.asarray(received) / args.seconds
    lat_ms = np.asarray(latencies) * 1000.0
    return {
        "clients": args.clients,
        "publish_fps": published / args.seconds,
        "client_fps_min": float(rates.min()),
        "client_fps_median": float(np.median(rates)),
        "latency_p50_ms": float(np.percentile(lat_ms, 50)) if len(lat_ms) else None,
        "latency_p99_ms": float(np.percentile(lat_ms, 99)) if len(lat_ms) else None,
    }


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--fps", type=float, default=15.0)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--json", type=Path, metavar="PATH")
    return parser


def main(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        jpegs = scene_jpegs()
        broker = Mosquitto(Path(tmp))
        broker.start()
        web_port = free_port()
        server = subprocess.Popen(
            [sys.executable, "-m", "detectord.web", "--port", str(web_port), "--mqtt-port", str(broker.port)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            _wait_healthy(web_port)
            usage = psutil.Process(server.pid)
            usage.cpu_percent(None)
            results = asyncio.run(run(args, broker.port, web_port, jpegs))
            results["server_cpu_percent"] = usage.cpu_percent(None)
        finally:
            server.terminate()
            server.wait(10)
            broker.stop()
    results["jpeg_bytes"] = int(np.mean([len(j) for j in jpegs]))
    results |= describe_machine()
    return report(results, "web", args.json, format_table)


def _wait_healthy(port: int) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as response:
                if json.loads(response.read())["mqtt_connected"]:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise SystemExit("detector-web did not come up")


def format_table(r: dict[str, Any]) -> str:
    return "\n".join(
        [
            f"viewer load: {r['clients']} WebSocket clients, one camera publishing {r['publish_fps']:.1f} fps of "
            f"427x240 JPEG (~{r['jpeg_bytes'] / 1000:.0f} kB) through Mosquitto",
            machine_line(r) + " (clients, broker and server on the same machine)",
            "",
            "| client fps min | client fps median | capture->client p50 ms | p99 ms | server CPU % |",
            "| ---: | ---: | ---: | ---: | ---: |",
            f"| {r['client_fps_min']:.1f} | {r['client_fps_median']:.1f} | {r['latency_p50_ms']:.1f} | "
            f"{r['latency_p99_ms']:.1f} | {r['server_cpu_percent']:.0f} |",
        ]
    )


if __name__ == "__main__":
    main(get_args_parser().parse_args())
