"""The publish stage: results and their frames to MQTT, as the contract (``detectord.contract``) says.

For every result: the detections JSON, then the JPEG of exactly the frame
inference computed them on (its pin was handed over with the result), with
the MQTT 5 user property ``frame_id``. The retained ``status`` topic says
``online`` after every (re)connection and ``offline`` on a clean stop; the
broker publishes the same ``offline`` as the will message if the daemon
dies. The retained ``stats`` topic carries, every ``stats_interval_s``, the
newest snapshot the supervisor assembled (rates, drops, CPU and memory per
stage) with this stage's own latencies and connection.

A broker that is down at start or goes away later never stops the pipeline:
results keep flowing and are counted as unsent, the first connection is
retried with backoff, and gmqtt reconnects after that.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.connection import Connection
from threading import Event
from typing import Any

import cv2
import gmqtt

from detectord.contract import (
    OFFLINE,
    ONLINE,
    build_detections,
    build_stats,
    connect_with_backoff,
    frame_properties,
    make_client,
)
from detectord.contract.topics import KINDS
from detectord.daemon.config import MqttConfig
from detectord.daemon.pipeline import control
from detectord.daemon.pipeline.ringset import DOWNSTREAM_READER, RingHandles
from detectord.daemon.pipeline.telemetry import PipelineStats, StageMeter
from detectord.daemon.results import FrameResult, LoadedModel, read_result
from detectord.ipc import EndOfStream

from .latency import LatencyWindow

log = logging.getLogger(__name__)

READ_BATCH = 8
READ_TIMEOUT_S = 0.2


class Publisher:
    def __init__(
        self, rings: RingHandles, camera: str, mqtt: MqttConfig, meter: StageMeter, supervisor: Connection
    ) -> None:
        self.camera = camera
        self.mqtt = mqtt
        self.topics = mqtt.topics
        self.meter = meter
        self.inbox = control.Inbox(supervisor)
        self.frame_ring = rings.attach_frames()
        self.result_ring = rings.attach_results()
        self.frames = self.frame_ring.reader(DOWNSTREAM_READER)
        self.results = self.result_ring.reader(0)
        self.size = rings.frame_size
        self.latency = LatencyWindow()
        self.model: LoadedModel | None = None
        self.pipeline_stats: PipelineStats | None = None
        self.sent = 0
        self.unsent = 0
        self.connections = 0
        self.stopping = False
        status = self.topics.topic(camera, "status")
        self.client = make_client(
            mqtt, f"detectord-{camera}", will=gmqtt.Message(status, OFFLINE, qos=KINDS["status"].qos, retain=True)
        )
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect

    def _send(self, kind: str, payload: str | bytes, **properties: Any) -> None:
        spec = KINDS[kind]
        self.client.publish(
            self.topics.topic(self.camera, kind), payload, qos=spec.qos, retain=spec.retain, **properties
        )

    # -- connection --------------------------------------------------------------

    def _on_connect(self, client: Any, flags: int, rc: int, properties: Any) -> None:
        self.connections += 1
        log.info("connected to %s", self.mqtt.address)
        self._send("status", ONLINE)

    def _on_disconnect(self, client: Any, packet: Any, exc: Exception | None = None) -> None:
        if not self.stopping:
            log.warning("lost the broker at %s; reconnecting", self.mqtt.address)

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

    def publish(self, result: FrameResult, jpeg: bytes, model: LoadedModel) -> None:
        published = time.time()
        if not self.client.is_connected:
            self.unsent += 1
            return
        message = build_detections(
            camera=self.camera,
            frame_id=result.frame_id,
            size=self.size,
            ts={
                "capture": result.capture_ts,
                "inference_start": result.inference_start,
                "inference_end": result.inference_end,
                "publish": published,
            },
            model={"name": model.info.name, "precision": model.info.precision, "device": model.info.device},
            detections=result.contract_detections(model.categories),
            main_person=result.contract_main_person(),
        )
        try:
            self._send("detections", json.dumps(message))
            self._send("frame", jpeg, **frame_properties(result.frame_id))
        except Exception as exc:  # the connection broke under us: counted, gmqtt reconnects
            log.debug("publish failed: %s", exc)
            self.unsent += 1
            return
        self.sent += 1
        self.latency.add(result, published)

    # -- stats ---------------------------------------------------------------------

    def publish_stats(self) -> None:
        snapshot = self.pipeline_stats
        if snapshot is None or not self.client.is_connected:
            return
        stats = build_stats(
            camera=self.camera,
            ts=time.time(),
            uptime_s=snapshot.uptime_s,
            source_status=snapshot.source_status,
            stages=snapshot.stages,
            drops={**snapshot.drops, "mqtt_unsent": self.unsent},
            latency=self.latency.summary(),
            mqtt={"connected": bool(self.client.is_connected), "connections": self.connections, "sent": self.sent},
        )
        self._send("stats", json.dumps(stats))

    def poll_supervisor(self) -> None:
        """The model (once) and the newest stats snapshot from the supervisor."""
        latest = self.inbox.poll()
        self.model = latest.get(control.MODEL, self.model)
        self.pipeline_stats = latest.get(control.STATS, self.pipeline_stats)

    # -- lifetime ------------------------------------------------------------------

    async def run(self, stop: Event) -> None:
        loop = asyncio.get_running_loop()
        connecting = asyncio.create_task(connect_with_backoff(self.client, self.mqtt, stop.is_set))
        next_stats = time.monotonic() + self.mqtt.stats_interval_s
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="publish-read") as worker:
            self.meter.ready()
            while not stop.is_set():
                batch = await loop.run_in_executor(worker, self.take)
                if batch is None:
                    break
                self.poll_supervisor()
                while batch and self.model is None and not stop.is_set():
                    self.meter.tick()
                    await asyncio.sleep(0.05)
                    self.poll_supervisor()
                clock = time.perf_counter()
                for result, jpeg in batch:
                    if self.model is not None:
                        self.publish(result, jpeg, self.model)
                if batch:
                    self.meter.add(len(batch), time.perf_counter() - clock)
                else:
                    self.meter.tick()
                if time.monotonic() >= next_stats:
                    next_stats = time.monotonic() + self.mqtt.stats_interval_s
                    self.publish_stats()
        connecting.cancel()
        await self.go_offline()

    async def go_offline(self) -> None:
        """Clean stop: say ``offline`` ourselves (a clean disconnect does not fire the will)."""
        self.stopping = True
        self.poll_supervisor()
        if self.client.is_connected:
            self.publish_stats()
            self._send("status", OFFLINE)
            await asyncio.sleep(0.05)
            await self.client.disconnect()

    def close(self) -> None:
        self.result_ring.close()
        self.frame_ring.close()


def run_publisher(
    stop: Event, reports: Connection, rings: RingHandles, camera: str, mqtt: MqttConfig, supervisor: Connection
) -> None:
    meter = StageMeter("publish", reports)
    publisher = Publisher(rings, camera, mqtt, meter, supervisor)
    try:
        asyncio.run(publisher.run(stop))
    finally:
        meter.close()
        publisher.close()
