"""The publish stage: every camera's results and frames to MQTT, as the contract (``detectord.contract``) says.

One process serves every camera of the daemon, with one MQTT connection per
camera: each connection carries its camera's will (``offline`` on the
camera's retained ``status`` topic), so every camera turns ``offline`` when
the daemon dies, whichever way it dies.

For every result: the detections JSON, then the JPEG of exactly the frame
inference computed them on (its pin was handed over with the result), with
the MQTT 5 user property ``frame_id``. The retained ``status`` topic says
``online`` after every (re)connection and ``offline`` on a clean stop. The
retained ``stats`` topic carries, every ``stats_interval_s``, the newest
snapshot the supervisor assembled for the camera (rates, drops, CPU and
memory per stage) with this stage's own latencies and connection.

Beside that, each camera's ``Scene`` (``detectord.events``) turns the
results into events, person counts, occupancy and snapshots, with the
frame's pixels at hand while its pin is held; their retained states are
published again after every (re)connection, together with the camera's
zones and, unless turned off, its Home Assistant discovery configuration
(again whenever Home Assistant says ``online`` on its status topic). After
the first connection, discovery entities this daemon announced before but
no longer has (a removed camera or zone) are removed.

A broker that is down at start or goes away later never stops the pipeline:
results keep flowing and are counted as unsent, the first connection is
retried with backoff, and gmqtt reconnects after that; a connection whose
session another client took over (the same client id: the same camera name
on another daemon) says so once and gives up.
"""

from __future__ import annotations

import asyncio
import contextlib
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
from detectord.contract.homeassistant import discovery_messages, status_topic
from detectord.contract.scene import build_event, build_zones, count_payload, occupancy_payload
from detectord.contract.topics import KINDS
from detectord.daemon.config import DaemonConfig, MqttConfig
from detectord.daemon.pipeline import control
from detectord.daemon.pipeline.ringset import CameraRing, RingHandles
from detectord.daemon.pipeline.telemetry import PipelineStats, StageMeter
from detectord.daemon.results import FrameResult, LoadedModel, read_result
from detectord.daemon.version import version
from detectord.detection.devices import cpu_description
from detectord.events import EventsConfig, Scene, SceneChanges, Zone
from detectord.ipc import EndOfStream, FrameRef, RingReader, SlotRef, wait_any

from . import discovery
from .latency import LatencyWindow

log = logging.getLogger(__name__)

READ_BATCH = 8
READ_TIMEOUT_S = 0.2
TICK_S = 1.0
"""A camera whose scene saw no frame for this long has time passed to it (events end, occupancy turns off)."""
SESSION_TAKEN_OVER = 0x8E
"""MQTT 5 DISCONNECT reason code: another client connected with this client id."""
SHORT_LIVED_S = 10.0
TAKEN_OVER_AFTER = 3
"""Connections in a row that the broker closed within ``SHORT_LIVED_S`` of accepting them: two clients with
one client id take the session from each other on every reconnect (a broker that does not send reason
code 0x8E, like Mosquitto 2.0.11, only closes the socket)."""


def client_id_for(mqtt: MqttConfig, camera: str, solo: bool) -> str:
    """Each camera's connection needs a client id of its own: ``mqtt.client_id`` as it is for a single
    camera, with the camera's name appended for several, ``detectord-<camera>`` when none is set."""
    if not mqtt.client_id:
        return f"detectord-{camera}"
    return mqtt.client_id if solo else f"{mqtt.client_id}-{camera}"


class Outlet:
    """One camera's side of the stage: its frame ring reader, its MQTT connection, its counters."""

    def __init__(
        self,
        camera: CameraRing,
        reader_index: int,
        mqtt: MqttConfig,
        client_id: str,
        zones: tuple[Zone, ...],
        events: EventsConfig,
        discovery: dict[str, dict[str, Any]],
    ) -> None:
        """Attaches the camera's frame ring as reader ``reader_index`` (the frames inference hands over)."""
        self.name = camera.name
        self.size = camera.frame_size
        """(width, height) of the published frames."""
        self.ring = camera.attach()
        self.frames: RingReader[FrameRef] = self.ring.reader(reader_index)
        self.client_id = client_id
        self.mqtt = mqtt
        self.topics = mqtt.topics
        self.latency = LatencyWindow()
        self.stats: PipelineStats | None = None
        self.sent = 0
        self.unsent = 0
        self.connections = 0
        self.stopping = False
        self.taken_over = False
        self.connected_at = 0.0
        self.short_lived = 0
        self.zones = zones
        self.scene = Scene(self.name, self.size, zones, events) if events.enabled else None
        self.discovery = discovery
        will = gmqtt.Message(self.topics.topic(self.name, "status"), OFFLINE, qos=KINDS["status"].qos, retain=True)
        self.client = make_client(mqtt, self.client_id, will=will)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message

    def send(self, kind: str, payload: str | bytes, zone: str | None = None, **properties: Any) -> None:
        spec = KINDS[kind]
        topic = self.topics.topic(self.name, kind, zone)
        self.client.publish(topic, payload, qos=spec.qos, retain=spec.retain, **properties)

    def _on_connect(self, client: Any, flags: int, rc: int, properties: Any) -> None:
        self.connections += 1
        self.connected_at = time.monotonic()
        log.info("camera %s: connected to %s", self.name, self.mqtt.address)
        self.send("status", ONLINE)
        self._send_states()
        if self.discovery:
            discovery.announce(self.client, self.discovery)
            self.client.subscribe(status_topic(self.mqtt.homeassistant_prefix), qos=1)

    def _on_message(self, client: Any, topic: str, payload: bytes, qos: int, properties: Any) -> int:
        """Home Assistant (re)started: it has forgotten what was announced before it came up."""
        if self.discovery and topic == status_topic(self.mqtt.homeassistant_prefix) and payload == ONLINE.encode():
            log.info("camera %s: Home Assistant is online; announcing the camera again", self.name)
            discovery.announce(self.client, self.discovery)
        return 0

    def _send_states(self) -> None:
        """The retained states as they are now: after a (re)connection the broker may hold old ones, or none."""
        zones = {zone.name: zone.points() for zone in self.zones}
        self.send("zones", json.dumps(build_zones(self.name, self.size, zones)))
        if self.scene is None:
            return
        self.send("person", count_payload(self.scene.count))
        self.send("occupancy", occupancy_payload(self.scene.occupancy.on))
        for zone in self.zones:
            self.send("zone_person", count_payload(self.scene.zone_counts[zone.name]), zone.name)
            self.send("zone_occupancy", occupancy_payload(self.scene.zone_occupancy[zone.name].on), zone.name)

    def _on_disconnect(self, client: Any, packet: Any, exc: Exception | None = None) -> None:
        if self.stopping or self.taken_over:
            return
        lived = time.monotonic() - self.connected_at
        self.short_lived = self.short_lived + 1 if self.connected_at and lived < SHORT_LIVED_S else 0
        reason = packet[:1] if isinstance(packet, bytes | bytearray) else b""
        if reason == bytes([SESSION_TAKEN_OVER]) or self.short_lived >= TAKEN_OVER_AFTER:
            self.taken_over = True
            log.error(
                "camera %s: the broker at %s keeps handing this connection's session to another client with "
                "client id %r; is camera %r running in another daemon too? Camera names must be unique across "
                "hosts; not reconnecting",
                self.name,
                self.mqtt.address,
                self.client_id,
                self.name,
            )
            self._giving_up = asyncio.ensure_future(self._give_up())
            return
        log.warning("camera %s: lost the broker at %s; reconnecting", self.name, self.mqtt.address)

    async def _give_up(self) -> None:
        """Stop for good: cancel the reconnection gmqtt scheduled before telling us, then disconnect.

        A reconnection that went ahead would take the session back from the
        other client, which would then give up in turn.
        """
        for task in asyncio.all_tasks():
            coro = task.get_coro()
            frame = getattr(coro, "cr_frame", None)
            name = getattr(coro, "__qualname__", "")
            if frame is not None and name.endswith(".reconnect") and frame.f_locals.get("self") is self.client:
                task.cancel()
        with contextlib.suppress(Exception):  # the broker has closed the connection already
            await self.client.disconnect()

    @property
    def connected(self) -> bool:
        return bool(self.client.is_connected) and not self.taken_over

    def publish(self, result: FrameResult, jpeg: bytes, model: LoadedModel) -> None:
        published = time.time()
        if not self.connected:
            self.unsent += 1
            return
        message = build_detections(
            camera=self.name,
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
            self.send("detections", json.dumps(message))
            self.send("frame", jpeg, **frame_properties(result.frame_id))
        except Exception as exc:  # the connection broke under us: counted, gmqtt reconnects
            log.debug("publish failed: %s", exc)
            self.unsent += 1
            return
        self.sent += 1
        self.latency.add(result, published)

    def publish_changes(self, changes: SceneChanges) -> None:
        """Snapshots before the event messages that name them, then counts and occupancy."""
        if not self.connected:
            return
        try:
            for update in changes.events:
                if update.snapshot is not None:
                    self.send("snapshot", update.snapshot, **frame_properties(update.snapshot_frame_id or 0))
                self.send("events", json.dumps(build_event(**update.fields())))  # type: ignore[arg-type]
            if changes.count is not None:
                self.send("person", count_payload(changes.count))
            if changes.occupancy is not None:
                self.send("occupancy", occupancy_payload(changes.occupancy))
            for zone, count in changes.zone_counts.items():
                self.send("zone_person", count_payload(count), zone)
            for zone, on in changes.zone_occupancy.items():
                self.send("zone_occupancy", occupancy_payload(on), zone)
        except Exception as exc:  # the connection broke under us; the states go out again on reconnection
            log.debug("publish failed: %s", exc)

    def publish_stats(self, model: LoadedModel | None) -> None:
        snapshot = self.stats
        if snapshot is None or not self.connected:
            return
        cpu, flags = cpu_description()
        device: dict[str, Any] = {"cpu": cpu, "cpu_flags": list(flags)}
        if model is not None:
            info = model.info
            device |= {"name": info.name, "precision": info.precision, "device": info.device, "reason": info.reason}
        stats = build_stats(
            camera=self.name,
            host=snapshot.host,
            ts=time.time(),
            uptime_s=snapshot.uptime_s,
            source_status=snapshot.source_status,
            stages=snapshot.stages,
            drops={**snapshot.drops, "mqtt_unsent": self.unsent},
            latency=self.latency.summary(),
            mqtt={"connected": self.connected, "connections": self.connections, "sent": self.sent},
            supervisor=snapshot.supervisor,
            device=device,
        )
        self.send("stats", json.dumps(stats))

    async def go_offline(self, model: LoadedModel | None) -> None:
        """Clean stop: say ``offline`` ourselves (a clean disconnect does not fire the will)."""
        self.stopping = True
        if self.scene is not None:
            self.publish_changes(self.scene.close(time.time()))
        if self.connected:
            self.publish_stats(model)
            self.send("status", OFFLINE)
            await asyncio.sleep(0.05)
            await self.client.disconnect()


Delivery = tuple[int, FrameResult | None, bytes | None, SceneChanges | None]
"""(camera index, result, its frame's JPEG, what it changed in the scene): one thing for the loop to send."""


class Publisher:
    def __init__(
        self,
        rings: RingHandles,
        config: DaemonConfig,
        inference_stages: list[str],
        meter: StageMeter,
        supervisor: Connection,
    ) -> None:
        self.rings = rings
        self.mqtt = mqtt = config.mqtt
        self.meter = meter
        self.inbox = control.Inbox(supervisor)
        self.model: LoadedModel | None = None
        self.outlets: list[Outlet] = []
        self.result_rings = [rings.attach_results(worker) for worker in range(rings.workers)]
        self.results = [ring.reader(0) for ring in self.result_rings]
        self.ended = [False] * len(self.results)
        self.reconciled = False
        solo = len(rings.cameras) == 1
        cameras = {camera.name: camera for camera in config.live_cameras}
        self.announced: set[str] = set()
        for ring in rings.cameras:
            camera = cameras[ring.name]
            zones = config.zones_of(camera)
            messages = (
                discovery_messages(
                    prefix=mqtt.homeassistant_prefix,
                    node=mqtt.node,
                    topics=mqtt.topics,
                    camera=camera.name,
                    zones=[zone.name for zone in zones],
                    model=config.model.name,
                    sw_version=version(),
                    inference_stages=inference_stages,
                )
                if mqtt.homeassistant
                else {}
            )
            self.announced |= set(messages)
            client_id = client_id_for(mqtt, camera.name, solo)
            self.outlets.append(Outlet(ring, rings.downstream, mqtt, client_id, zones, config.events, messages))

    # -- results -------------------------------------------------------------------

    def take(self) -> list[Delivery] | None:
        """Ready results with their frames encoded and their scenes updated (worker thread); None once every
        result stream ended."""
        refs = self._poll()
        if not refs:
            live = [reader for reader, ended in zip(self.results, self.ended, strict=True) if not ended]
            if not live:
                return None
            wait_any(live, self.rings.downstream_wake, READ_TIMEOUT_S)
            refs = self._poll()
        out: list[Delivery] = []
        quality = [cv2.IMWRITE_JPEG_QUALITY, self.mqtt.jpeg_quality]
        for ref in refs:
            result = read_result(ref)
            outlet = self.outlets[result.camera]
            changes = None
            with outlet.frames.adopt(result.frame_slot, result.frame_seq) as frame:
                ok, jpeg = cv2.imencode(".jpg", frame.pixels, quality)
                if outlet.scene is not None:
                    changes = outlet.scene.observe(result.frame_id, result.capture_ts, result.detections, frame.pixels)
            ref.release()
            if not ok:
                log.warning("camera %s: cannot encode frame %d as JPEG; skipped", outlet.name, result.frame_id)
            out.append((result.camera, result if ok else None, jpeg.tobytes() if ok else None, changes))
        now = time.time()
        for index, outlet in enumerate(self.outlets):
            if outlet.scene is not None and now - outlet.scene.last_time >= TICK_S:
                out.append((index, None, None, outlet.scene.tick(now)))
        return out

    def _poll(self) -> list[SlotRef]:
        refs: list[SlotRef] = []
        for index, reader in enumerate(self.results):
            if self.ended[index]:
                continue
            try:
                refs += reader.read(READ_BATCH, timeout=0)
            except EndOfStream:
                self.ended[index] = True
        return refs

    async def _remove_stale(self) -> None:
        """Entities this daemon announced in an earlier run that its configuration no longer has."""
        try:
            await discovery.remove(
                self.outlets[0].client, self.mqtt.homeassistant_prefix, self.mqtt.node, self.announced
            )
        except Exception as exc:  # the connection broke: the next start tries again
            log.warning("Home Assistant: could not look for stale entities: %s", exc)

    # -- the supervisor's news -------------------------------------------------------

    def poll_supervisor(self) -> None:
        """The model (once) and the newest stats snapshot of every camera."""
        latest = self.inbox.poll()
        self.model = latest.get(control.MODEL, self.model)
        snapshots: dict[str, PipelineStats] = latest.get(control.STATS, {})
        for outlet in self.outlets:
            outlet.stats = snapshots.get(outlet.name, outlet.stats)

    # -- lifetime ------------------------------------------------------------------

    async def run(self, stop: Event) -> None:
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(_quiet_cancellations)
        connecting = [
            asyncio.create_task(connect_with_backoff(outlet.client, self.mqtt, stop.is_set)) for outlet in self.outlets
        ]
        pending: list[asyncio.Task[Any]] = []
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
                done = []
                for camera, result, jpeg, changes in batch:
                    outlet = self.outlets[camera]
                    if result is not None and jpeg is not None and self.model is not None:
                        outlet.publish(result, jpeg, self.model)
                        done.append(outlet.name)
                    if changes is not None:
                        outlet.publish_changes(changes)
                if self.mqtt.homeassistant and not self.reconciled and self.outlets[0].connected:
                    self.reconciled = True
                    pending.append(asyncio.create_task(self._remove_stale()))
                if done:
                    self.meter.add(len(done), time.perf_counter() - clock, done)
                else:
                    self.meter.tick()
                if time.monotonic() >= next_stats:
                    next_stats = time.monotonic() + self.mqtt.stats_interval_s
                    for outlet in self.outlets:
                        outlet.publish_stats(self.model)
        for task in connecting:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        self.poll_supervisor()
        await asyncio.gather(*(outlet.go_offline(self.model) for outlet in self.outlets))

    def close(self) -> None:
        for ring in self.result_rings:
            ring.close()
        for outlet in self.outlets:
            outlet.ring.close()


def _quiet_cancellations(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """A reconnection we cancelled (``Outlet._give_up``) is no error; anything else is reported as usual."""
    if isinstance(context.get("exception"), asyncio.CancelledError):
        log.debug("cancelled: %s", context.get("message"))
        return
    loop.default_exception_handler(context)


def run_publisher(
    stop: Event,
    reports: Connection,
    rings: RingHandles,
    config: DaemonConfig,
    inference_stages: list[str],
    supervisor: Connection,
) -> None:
    meter = StageMeter("publish", reports)
    publisher = Publisher(rings, config, inference_stages, meter, supervisor)
    try:
        asyncio.run(publisher.run(stop))
    finally:
        meter.close()
        publisher.close()
