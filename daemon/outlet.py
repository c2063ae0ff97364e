"""One camera's side of the publisher: its frames' messages, its scene's, its stats, its discovery.

An ``Outlet`` turns what the publish stage hands it (a result with its
frame's JPEG, what the result changed in the scene, the supervisor's stats
snapshot) into messages of the contract, over the camera's own MQTT
connection (``contract.link.CameraLink``). After every (re)connection it
sends the retained states as they are now (zones, count, occupancy, per
zone) and, unless turned off, the camera's Home Assistant discovery
configuration (again whenever Home Assistant says ``online``).
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from typing import Any

from detectord.contract import ONLINE, Malformed, build_detections, frame_properties
from detectord.contract import discovery as ha_discovery
from detectord.contract.broker import retained
from detectord.contract.homeassistant import status_topic
from detectord.contract.link import CameraLink
from detectord.contract.payloads import InferenceJson
from detectord.contract.scene import build_event, build_zones, count_payload, occupancy_payload
from detectord.daemon.config import MqttConfig
from detectord.daemon.frame_record import FrameMotion
from detectord.daemon.outbox import EventOutbox
from detectord.daemon.pipeline.ringset import CameraRing
from detectord.daemon.pipeline.stats import LatencyWindow, camera_stats
from detectord.daemon.pipeline.telemetry import PipelineStats
from detectord.daemon.results import FrameResult, LoadedModel
from detectord.detection import Scores
from detectord.events import EventsConfig, EventUpdate, Occupancy, OccupancyConfig, Scene, SceneChanges, Zone
from detectord.ipc import FrameRef, RingReader

log = logging.getLogger(__name__)

MOTION_OFF_S = 2.0
"""The motion sensor turns ``OFF`` this long after the last frame that moved."""


def client_id_for(mqtt: MqttConfig, camera: str, solo: bool) -> str:
    """Each camera's connection needs a client id of its own: ``mqtt.client_id`` as it is for a single
    camera, with the camera's name appended for several, ``detectord-<camera>`` when none is set."""
    if not mqtt.client_id:
        return f"detectord-{camera}"
    return mqtt.client_id if solo else f"{mqtt.client_id}-{camera}"


def inference_json(result: FrameResult) -> InferenceJson:
    """Whether the model ran on the frame, why, and where it looked when not at the whole frame."""
    inference: InferenceJson = {"ran": result.reason.model_ran, "reason": result.reason.label}
    if result.regions is not None:
        inference["regions"] = [list(region) for region in result.regions]
    return inference


class Outlet:
    """One camera: its frame ring reader, its MQTT link, its scene, its counters."""

    def __init__(
        self,
        camera: CameraRing,
        reader_index: int,
        mqtt: MqttConfig,
        client_id: str,
        zones: tuple[Zone, ...],
        events: EventsConfig,
        scores: Scores,
        discovery: dict[str, dict[str, Any]],
        gated: bool,
        motion_mask: list[list[tuple[float, float]]],
    ) -> None:
        """Attaches the camera's frame ring as reader ``reader_index`` (the frames inference hands over);
        ``scores`` is what the configured detector's scores mean (``registry.scores_of``); ``gated``: motion is
        computed for the camera (its motion sensor is published), ``motion_mask`` where it is ignored."""
        self.name = camera.name
        self.size = camera.frame_size
        """(width, height) of the published frames."""
        self.ring = camera.attach()
        self.frames: RingReader[FrameRef] = self.ring.reader(reader_index)
        self.native_ring = camera.attach_native()
        self.natives = self.native_ring.reader(reader_index) if self.native_ring is not None else None
        """The camera's full frames inference hands over with its results, when they are kept."""
        self.mqtt = mqtt
        self.latency = LatencyWindow()
        self.stats: PipelineStats | None = None
        self.sent = 0
        self.unsent = 0
        self.zones = zones
        self.scene = Scene(self.name, self.size, zones, events, scores=scores) if events.enabled else None
        self.discovery = discovery
        self.outbox = EventOutbox(mqtt.outbox_events)
        self.gated = gated
        self.motion_mask = motion_mask
        """Where the camera's motion is ignored, in pixels of its frames (for viewers)."""
        self.motion = Occupancy(OccupancyConfig(min_frames=1, window=1, off_after_s=MOTION_OFF_S))
        """Motion ``ON`` on a frame that moved, ``OFF`` after ``MOTION_OFF_S`` of frames that did not."""
        self.tidied = False
        """The retained states of zones no longer configured were looked for (once, after connecting)."""
        self.link = CameraLink(mqtt, self.name, client_id, self._connected, self._on_message)

    @property
    def connected(self) -> bool:
        return self.link.connected

    def _on_message(self, topic: str, payload: bytes) -> None:
        """Home Assistant (re)started: it has forgotten what was announced before it came up."""
        if self.discovery and topic == status_topic(self.mqtt.homeassistant_prefix) and payload == ONLINE.encode():
            log.info("camera %s: Home Assistant is online; announcing the camera again", self.name)
            self.announce()

    def _connected(self) -> None:
        """After every (re)connection: the events that waited, then the states as they are now."""
        self._send_events(self.outbox.take())
        self._send_states()

    def _send_states(self) -> None:
        """The retained states as they are now: after a (re)connection the broker may hold old ones, or none."""
        send = self.link.send
        zones = {zone.name: zone.points() for zone in self.zones}
        send("zones", json.dumps(build_zones(self.name, self.size, zones, self.motion_mask)))
        if self.gated:
            send("motion", occupancy_payload(self.motion.on))
        if self.scene is not None:
            send("person", count_payload(self.scene.count))
            send("occupancy", occupancy_payload(self.scene.occupancy.on))
            for zone in self.zones:
                send("zone_person", count_payload(self.scene.zone_counts[zone.name]), zone.name)
                send("zone_occupancy", occupancy_payload(self.scene.zone_occupancy[zone.name].on), zone.name)
        if self.discovery:
            self.announce()
            self.link.subscribe(status_topic(self.mqtt.homeassistant_prefix))

    async def clear_removed_zones(self) -> list[str]:
        """Empty the retained states (``zones/<zone>/person``, ``…/occupancy``) of zones this camera no longer
        has: they would outlive the zone, as their discovery configurations do not."""
        topics = self.link.topics
        zones = {zone.name for zone in self.zones}
        try:
            found = await retained(self.link.client, f"{topics.prefix}/{self.name}/zones/+/+")
        except Exception as exc:  # the connection broke: the next start looks again
            log.warning("camera %s: could not look for removed zones' states: %s", self.name, exc)
            return []
        stale = []
        for topic in found:
            try:
                zone = topics.parse(topic).zone
            except Malformed:  # not a state this daemon publishes
                continue
            if zone is not None and zone not in zones:
                stale.append(topic)
        for topic in stale:
            self.link.publish(topic, b"", qos=1, retain=True)
        if stale:
            log.info("camera %s: emptied %d retained states of zones no longer configured", self.name, len(stale))
        return stale

    def announce(self) -> None:
        """The camera's Home Assistant discovery configuration (retained)."""
        if self.discovery and self.connected:
            ha_discovery.announce(self.link.client, self.discovery)

    def publish(self, result: FrameResult, jpeg: bytes, model: LoadedModel, motion: FrameMotion | None) -> None:
        """The detections JSON, then the JPEG of exactly that frame (``frame_id`` pairs them); the motion
        sensor when it turns."""
        published = time.time()
        if motion is not None and motion.computed:
            self._motion_state(motion.moved, result.capture_ts)
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
            inference=inference_json(result),
            motion=None if motion is None or not motion.computed else motion.boxes.tolist(),
        )
        try:
            self.link.send("detections", json.dumps(message))
            self.link.send("frame", jpeg, **frame_properties(result.frame_id))
        except Exception as exc:  # the connection broke under us: counted, gmqtt reconnects
            log.debug("publish failed: %s", exc)
            self.unsent += 1
            return
        self.sent += 1
        if result.reason.model_ran:  # an idle frame's timestamps say nothing of the model
            self.latency.add(result, published)

    def _motion_state(self, moved: bool, now: float) -> None:
        """The retained ``motion`` (``ON``/``OFF``, Home Assistant's motion sensor) when it turns."""
        turned = self.motion.observe(moved, now)
        if turned is not None and self.connected:
            with contextlib.suppress(Exception):  # sent again as it is at the next connection
                self.link.send("motion", occupancy_payload(turned))

    def publish_changes(self, changes: SceneChanges) -> None:
        """Snapshots before the event messages that name them, then counts and occupancy. Without a connection
        the events wait in the outbox; the states go out as they are then, after reconnecting."""
        self._send_events(changes.events)
        if not self.connected:
            return
        send = self.link.send
        try:
            if changes.count is not None:
                send("person", count_payload(changes.count))
            if changes.occupancy is not None:
                send("occupancy", occupancy_payload(changes.occupancy))
            for zone, count in changes.zone_counts.items():
                send("zone_person", count_payload(count), zone)
            for zone, on in changes.zone_occupancy.items():
                send("zone_occupancy", occupancy_payload(on), zone)
        except Exception as exc:  # the connection broke under us; the states go out again on reconnection
            log.debug("publish failed: %s", exc)

    def _send_events(self, updates: list[EventUpdate]) -> None:
        """Each event message (its snapshot first), in order; from the first that cannot go, into the outbox."""
        for position, update in enumerate(updates):
            if not self.connected:
                for waiting in updates[position:]:
                    self.outbox.put(waiting)
                return
            try:
                if update.snapshot is not None:
                    frame_id = update.message["snapshot_frame_id"] or 0
                    self.link.send("snapshot", update.snapshot, **frame_properties(frame_id))
                self.link.send("events", json.dumps(build_event(**update.message)))
            except Exception as exc:  # the connection broke under us: this one and the rest wait
                log.debug("publish failed: %s", exc)
                for waiting in updates[position:]:
                    self.outbox.put(waiting)
                return

    def publish_stats(self, model: LoadedModel | None) -> None:
        """The newest stats snapshot of the camera, with this stage's latencies and connection."""
        if self.stats is None or not self.connected:
            return
        mqtt = {"connected": self.connected, "connections": self.link.connections, "sent": self.sent}
        stats = camera_stats(self.name, self.stats, self.latency, mqtt, self.unsent, self.outbox.dropped, model)
        self.link.send("stats", json.dumps(stats))

    async def go_offline(self, model: LoadedModel | None) -> None:
        """Clean stop: every event ends, the last stats go out, then ``offline``."""
        self.link.stopping = True
        if self.scene is not None:
            self.publish_changes(self.scene.close())
        if self.gated and self.motion.clear() is not None and self.connected:
            self.link.send("motion", occupancy_payload(False))
        self.publish_stats(model)
        await self.link.close()

    def adopt_native(self, native: tuple[int, int] | None) -> FrameRef | None:
        """The full frame a result names (its pin was handed over with it), or None."""
        if native is None or self.natives is None:
            return None
        return self.natives.adopt(*native)

    def close(self) -> None:
        self.ring.close()
        if self.native_ring is not None:
            self.native_ring.close()
