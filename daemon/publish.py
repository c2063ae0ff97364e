"""The publish stage: results and their frames to MQTT, as DESIGN.md's contract says.

For every result: the detections JSON, then the JPEG of exactly the frame
inference computed them on (its pin was handed over with the result), with
the MQTT 5 user property ``frame_id``. The retained ``status`` topic says
``online`` after every (re)connection and ``offline`` on a clean stop; the
broker publishes the same ``offline`` as the will message if the daemon
dies. The retained ``stats`` topic carries the pipeline's rates, drops,
latencies and per-process CPU and memory every few seconds.

A broker that is down at start or goes away later never stops the pipeline:
results keep flowing and are counted as unsent, the first connection is
retried with backoff, and gmqtt reconnects after that.
"""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
import time
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.connection import Connection
from threading import Event
from typing import Any

import cv2
import gmqtt

from detectord.detection import COCO_CATEGORIES
from detectord.ipc import EndOfStream

from .config import MqttConfig
from .records import FrameResult, detections_message, read_result
from .rings import DOWNSTREAM_READER, PipelineRings
from .stats import LatencyWindow, StageRates, drops
from .telemetry import StageMeter

log = logging.getLogger(__name__)
logging.getLogger("gmqtt").setLevel(logging.WARNING)  # it logs every connection event at INFO

READ_BATCH = 8
READ_TIMEOUT_S = 0.2
CONNECT_BACKOFF_MAX_S = 30.0


class Publisher:
    def __init__(
        self,
        rings: PipelineRings,
        camera: str,
        mqtt: MqttConfig,
        model: dict[str, str],
        meter: StageMeter,
        control: Connection,
    ) -> None:
        self.rings = rings
        self.camera = camera
        self.mqtt = mqtt
        self.model = model
        self.meter = meter
        self.control = control
        self.frame_ring = rings.attach_frames()
        self.result_ring = rings.attach_results()
        self.frames = self.frame_ring.reader(DOWNSTREAM_READER)
        self.results = self.result_ring.reader(0)
        height, width, _ = rings.frame_shape
        self.size = (width, height)
        self.latency = LatencyWindow()
        self.rates = StageRates()
        self.stages: dict[str, dict[str, Any]] = {}
        self.sent = 0
        self.unsent = 0
        self.connections = 0
        self.stopping = False
        self.started = time.time()
        self.client = gmqtt.Client(
            mqtt.client_id or f"detectord-{camera}",
            will_message=gmqtt.Message(self.topic("status"), "offline", qos=1, retain=True),
        )
        self.client.set_config({"reconnect_retries": -1, "reconnect_delay": 2})
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        if mqtt.username is not None:
            self.client.set_auth_credentials(mqtt.username, mqtt.password)

    def topic(self, kind: str) -> str:
        return self.mqtt.topic(self.camera, kind)

    # -- connection --------------------------------------------------------------

    def _on_connect(self, client: gmqtt.Client, flags: int, rc: int, properties: Any) -> None:
        self.connections += 1
        log.info("connected to %s:%d", self.mqtt.host, self.mqtt.port)
        client.publish(self.topic("status"), "online", qos=1, retain=True)

    def _on_disconnect(self, client: gmqtt.Client, packet: Any, exc: Exception | None = None) -> None:
        if not self.stopping:
            log.warning("lost the broker at %s:%d; reconnecting", self.mqtt.host, self.mqtt.port)

    async def keep_connecting(self, stop: Event) -> None:
        """Until the first connection succeeds (gmqtt reconnects by itself afterwards)."""
        delay = 1.0
        tls = ssl.create_default_context() if self.mqtt.tls else False
        while not stop.is_set():
            try:
                await self.client.connect(self.mqtt.host, self.mqtt.port, ssl=tls, keepalive=self.mqtt.keepalive_s)
                return
            except Exception as exc:  # refused, unreachable, bad credentials: all retried
                log.warning(
                    "cannot reach the broker at %s:%d (%s); retrying in %.0f s",
                    self.mqtt.host,
                    self.mqtt.port,
                    exc or type(exc).__name__,
                    delay,
                )
                await asyncio.sleep(delay)
                delay = min(2 * delay, CONNECT_BACKOFF_MAX_S)

    # -- results -------------------------------------------------------------------

    def take(self) -> list[tuple[FrameResult, bytes]] | None:
        """Ready results with their frames encoded (worker thread); None at end of stream."""
        try:
            refs = self.results.read(READ_BATCH, timeout=READ_TIMEOUT_S)
        except EndOfStream:
            return None
        out = []
        quality = [cv2.IMWRITE_JPEG_QUALITY, self.mqtt.jpeg_quality]
        for ref in refs:
            result = read_result(ref)
            with self.frames.adopt(result.frame_slot, result.frame_seq) as frame:
                ok, jpeg = cv2.imencode(".jpg", frame.pixels, quality)
            ref.release()
            if ok:
                out.append((result, jpeg.tobytes()))
            else:
                log.warning("cannot encode frame %d as JPEG; skipped", result.frame_id)
        return out

    def publish(self, result: FrameResult, jpeg: bytes) -> None:
        published = time.time()
        if not self.client.is_connected:
            self.unsent += 1
            return
        message = detections_message(result, self.camera, self.size, self.model, published, COCO_CATEGORIES)
        try:
            self.client.publish(self.topic("detections"), json.dumps(message), qos=0)
            self.client.publish(
                self.topic("frame"),
                jpeg,
                qos=0,
                content_type="image/jpeg",
                user_property=[("frame_id", str(result.frame_id))],
            )
        except Exception as exc:  # the connection broke under us: counted, gmqtt reconnects
            log.debug("publish failed: %s", exc)
            self.unsent += 1
            return
        self.sent += 1
        self.latency.add(result, published)

    # -- stats ---------------------------------------------------------------------

    def poll_control(self) -> None:
        """The supervisor's view of the stages (pids, restarts, progress), sent every second."""
        try:
            while self.control.poll():
                self.stages = self.control.recv()
        except (EOFError, OSError):
            pass

    def stats(self) -> dict[str, Any]:
        self.stages.setdefault("publish", {})["frames"] = self.meter.frames
        return {
            "v": 1,
            "camera": self.camera,
            "ts": time.time(),
            "uptime_s": round(time.time() - self.started, 1),
            "source": {"status": self.stages.get("capture", {}).get("status", "")},
            "stages": self.rates.describe(self.stages),
            "drops": drops(self.frame_ring.stats(), self.result_ring.stats(), self.unsent),
            "latency": self.latency.summary(),
            "mqtt": {"connected": bool(self.client.is_connected), "connections": self.connections, "sent": self.sent},
        }

    def publish_stats(self) -> None:
        if self.client.is_connected:
            self.client.publish(self.topic("stats"), json.dumps(self.stats()), qos=0, retain=True)

    # -- lifetime ------------------------------------------------------------------

    async def run(self, stop: Event) -> None:
        loop = asyncio.get_running_loop()
        connecting = asyncio.create_task(self.keep_connecting(stop))
        next_stats = time.monotonic() + self.mqtt.stats_interval_s
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="publish-read") as worker:
            self.meter.ready()
            while not stop.is_set():
                batch = await loop.run_in_executor(worker, self.take)
                if batch is None:
                    break
                clock = time.perf_counter()
                for result, jpeg in batch:
                    self.publish(result, jpeg)
                if batch:
                    self.meter.add(len(batch), time.perf_counter() - clock)
                else:
                    self.meter.tick()
                self.poll_control()
                if time.monotonic() >= next_stats:
                    next_stats = time.monotonic() + self.mqtt.stats_interval_s
                    self.publish_stats()
        connecting.cancel()
        await self.go_offline()

    async def go_offline(self) -> None:
        """Clean stop: say ``offline`` ourselves (a clean disconnect does not fire the will)."""
        self.stopping = True
        if self.client.is_connected:
            self.publish_stats()
            self.client.publish(self.topic("status"), "offline", qos=1, retain=True)
            await asyncio.sleep(0.05)
            await self.client.disconnect()

    def close(self) -> None:
        self.result_ring.close()
        self.frame_ring.close()


def run_publisher(
    stop: Event,
    reports: Connection,
    rings: PipelineRings,
    camera: str,
    mqtt: MqttConfig,
    model: dict[str, str],
    control: Connection,
) -> None:
    meter = StageMeter("publish", reports)
    publisher = Publisher(rings, camera, mqtt, model, meter, control)
    try:
        asyncio.run(publisher.run(stop))
    finally:
        meter.close()
        publisher.close()
