"""The publish stage: every camera's results and frames to MQTT, as the contract (``detectord.contract``) says.

One process serves every camera of the daemon; each camera is an ``Outlet``
(``daemon/outlet.py``) with its own MQTT connection and will. For every
result, on a worker thread: the frame inference computed it on is adopted
(its pin was handed over with the result), with the camera's full frame
for it when one is kept (``daemon/native.py``), encoded as JPEG at
``publish.frame_size``, and shown to the camera's ``Scene``
(``detectord.events``), which renders snapshots from the full frame, while
the pixels are still pinned; then, on the event loop, the outlet publishes the detections, the
JPEG and whatever the result changed in the scene. Every ``stats_interval_s``
each outlet publishes the newest stats snapshot the supervisor relayed.
After the first connection, discovery entities this daemon announced before
but no longer has (a removed camera or zone) are removed.

A broker that is down at start or goes away later never stops the pipeline:
results keep flowing and are counted as unsent.
"""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from multiprocessing.connection import Connection
from threading import Event
from typing import Any

import cv2

from detectord.contract import discovery
from detectord.contract.homeassistant import discovery_messages
from detectord.contract.link import quiet_cancellations
from detectord.daemon import native
from detectord.daemon.config import DaemonConfig
from detectord.daemon.frame_record import FrameMotion, read_motion
from detectord.daemon.outlet import Outlet, client_id_for
from detectord.daemon.pipeline import control
from detectord.daemon.pipeline.ringset import RingHandles
from detectord.daemon.pipeline.telemetry import PipelineStats, StageMeter
from detectord.daemon.results import FrameResult, LoadedModel, read_result
from detectord.daemon.version import version
from detectord.detection import scores_of
from detectord.events import SceneChanges
from detectord.ipc import EndOfStream, SlotRef, wait_any

log = logging.getLogger(__name__)

READ_BATCH = 8
READ_TIMEOUT_S = 0.2
TICK_S = 1.0
PUBLISHING = "publishing"
WAITING = "broker not reached: results are counted as unsent"
"""A camera whose scene saw no frame for this long has time passed to it (events end, occupancy turns off)."""


@dataclass
class Delivery:
    """One thing for the loop to send: a camera's result with its frame's JPEG and motion, and what it changed
    in the scene; or only the scene's changes as time passed."""

    camera: int
    result: FrameResult | None = None
    jpeg: bytes | None = None
    motion: FrameMotion | None = None
    changes: SceneChanges | None = None


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
        self.frame_box = config.publish.frame_box
        self.node = config.node
        self.meter = meter
        self.inbox = control.Inbox(supervisor)
        self.model: LoadedModel | None = None
        self.outlets: list[Outlet] = []
        self.result_rings = [rings.attach_results(worker) for worker in range(rings.workers)]
        self.results = [ring.reader(0) for ring in self.result_rings]
        self.ended = [False] * len(self.results)
        self.reconciled = False
        """Home Assistant entities of an earlier run looked at (once, after the first connection)."""
        solo = len(rings.cameras) == 1
        scores = scores_of(config.model.name)
        cameras = {camera.name: camera for camera in config.live_cameras}
        self.announced: set[str] = set()
        for ring in rings.cameras:
            camera = cameras[ring.name]
            zones = config.zones_of(camera)
            motion = config.motion_of(camera)
            gated, mask = motion.enabled, motion.mask_in(config.frame_of(camera).size)
            messages = (
                discovery_messages(
                    prefix=mqtt.homeassistant_prefix,
                    node=config.node,
                    topics=mqtt.topics,
                    camera=camera.name,
                    zones=[zone.name for zone in zones],
                    model=config.model.name,
                    sw_version=version(),
                    inference_stages=inference_stages,
                    motion=gated,
                )
                if mqtt.homeassistant
                else {}
            )
            self.announced |= set(messages)
            client_id = client_id_for(mqtt, camera.name, solo)
            self.outlets.append(
                Outlet(ring, rings.downstream, mqtt, client_id, zones, config.events, scores, messages, gated, mask)
            )

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
            delivery = Delivery(result.camera)
            full = outlet.adopt_native(result.native)
            with outlet.frames.adopt(result.frame_slot, result.frame_seq) as frame:
                picture = native.pixels_of(full) if full is not None else frame.pixels
                shown = native.live_picture(frame.pixels, picture if full is not None else None, self.frame_box)
                ok, jpeg = cv2.imencode(".jpg", shown, quality)
                delivery.motion = read_motion(frame)
                if outlet.scene is not None and result.reason.model_ran:  # a skipped frame shows nothing new
                    delivery.changes = outlet.scene.observe(
                        result.frame_id, result.capture_ts, result.detections, picture
                    )
            if full is not None:
                full.release()
            ref.release()
            if ok:
                delivery.result, delivery.jpeg = result, jpeg.tobytes()
            else:
                log.warning("camera %s: cannot encode frame %d as JPEG; skipped", outlet.name, result.frame_id)
            out.append(delivery)
        now = time.time()
        for index, outlet in enumerate(self.outlets):
            if outlet.scene is not None and now - outlet.scene.last_time >= TICK_S:
                out.append(Delivery(index, changes=outlet.scene.tick(now)))
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
        """Entities this daemon announced in an earlier run that its configuration no longer has, and its own
        cameras' entities under the node every daemon of the host shared before (never another's)."""
        client, prefix = self.outlets[0].link.client, self.mqtt.homeassistant_prefix
        try:
            await discovery.remove(client, prefix, self.node, self.announced)
            if self.mqtt.legacy_node != self.node:
                cameras = [outlet.name for outlet in self.outlets]
                if await discovery.remove(client, prefix, self.mqtt.legacy_node, self.announced, cameras=cameras):
                    for outlet in self.outlets:  # Home Assistant kept the old ones' unique ids until now
                        outlet.announce()
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
        loop.set_exception_handler(quiet_cancellations)
        connecting = [asyncio.create_task(outlet.link.connect(stop.is_set)) for outlet in self.outlets]
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
                for delivery in batch:
                    outlet = self.outlets[delivery.camera]
                    if delivery.result is not None and delivery.jpeg is not None and self.model is not None:
                        outlet.publish(delivery.result, delivery.jpeg, self.model, delivery.motion)
                        done.append(outlet.name)
                    if delivery.changes is not None:
                        outlet.publish_changes(delivery.changes)
                if self.mqtt.homeassistant and not self.reconciled and self.outlets[0].connected:
                    self.reconciled = True
                    pending.append(asyncio.create_task(self._remove_stale()))
                for outlet in self.outlets:
                    if outlet.connected and not outlet.tidied:
                        outlet.tidied = True
                        pending.append(asyncio.create_task(outlet.clear_removed_zones()))
                self.meter.set_status(PUBLISHING if all(outlet.connected for outlet in self.outlets) else WAITING)
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
            outlet.close()


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
