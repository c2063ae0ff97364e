"""The viewer end to end: a real Mosquitto, the real server process, a real headless Chromium."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.action_chains import ActionChains
from tornado.httpclient import HTTPClientError, HTTPRequest
from tornado.websocket import websocket_connect

from detectord.contract.scene import build_event, build_zones
from detectord.daemon.cli.mosquitto import Mosquitto
from detectord.web.client import frames

from ..mqtt import Subscriber
from .conftest import Viewer, jpeg, publish_frame, start_viewer, stats

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
browser_available = pytest.mark.skipif(
    not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)),
    reason="needs Debian's chromium and chromium-driver",
)


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[webdriver.Chrome]:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-sync",
                 "--disable-background-networking", "--disable-component-update", "--disable-quic",
                 f"--user-data-dir={tmp_path / 'chromium'}"):  # fmt: skip
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def _wait(condition: Any, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    return None


PIXEL = """
const canvas = document.querySelector(`section[data-camera="${arguments[0]}"] canvas`);
return Array.from(canvas.getContext("2d").getImageData(arguments[1], arguments[2], 1, 1).data);
"""


def test_the_page_draws_frames_and_the_main_person_box_where_it_belongs(
    viewer: Viewer, mqtt: Subscriber, browser: webdriver.Chrome
) -> None:
    browser.get(viewer.url)
    _wait(lambda: browser.execute_script("return document.getElementById('connection').textContent") == "live")
    mqtt.publish("detector/front/status", "online", retain=True)
    mqtt.publish("detector/back/status", "offline", retain=True)
    box = [100.0, 50.0, 200.0, 200.0]
    for frame_id in range(3):
        publish_frame(mqtt, "front", frame_id, box, jpeg(value=128))
        time.sleep(0.1)
    drawn = _wait(lambda: browser.execute_script(
        "const s = document.querySelector('section[data-camera=\"front\"]'); return s && s.dataset.frameId"
    ))  # fmt: skip
    assert drawn is not None, viewer.log.read_text()
    edge = browser.execute_script(PIXEL, "front", 100, 125)
    inside = browser.execute_script(PIXEL, "front", 150, 125)
    outside = browser.execute_script(PIXEL, "front", 300, 125)
    assert edge[1] > 180 and edge[0] < 60 and edge[2] < 60, f"main person's green edge, got {edge}"
    for pixel in (inside, outside):
        assert all(abs(c - 128) < 12 for c in pixel[:3]), f"the frame's gray, got {pixel}"
    badges = browser.execute_script(
        "return Array.from(document.querySelectorAll('section')).map(s => [s.dataset.camera, "
        "s.querySelector('.status').textContent])"
    )
    assert sorted(badges) == [["back", "offline"], ["front", "online"]]
    options = browser.execute_script("return Array.from(document.querySelectorAll('#picker option')).map(o => o.value)")
    assert sorted(options) == ["", "back", "front"], "a camera picker once several cameras publish"


def test_a_full_resolution_frame_is_shown_at_its_size_with_the_boxes_scaled_onto_it(
    viewer: Viewer, mqtt: Subscriber, browser: webdriver.Chrome
) -> None:
    """``publish.frame_size = "native"``: the boxes stay in detection pixels (427x240), the picture is 3x."""
    browser.get(viewer.url)
    _wait(lambda: browser.execute_script("return document.getElementById('connection').textContent") == "live")
    for frame_id in range(3):
        publish_frame(mqtt, "wide", frame_id, [100.0, 50.0, 200.0, 200.0], jpeg(1281, 720, value=128))
        time.sleep(0.1)
    size = _wait(lambda: browser.execute_script(
        "const c = document.querySelector('section[data-camera=\"wide\"] canvas'); return c && c.width > 427 && "
        "[c.width, c.height]"
    ))  # fmt: skip
    assert size == [1281, 720], viewer.log.read_text()
    edge = browser.execute_script(PIXEL, "wide", 300, 375)
    assert edge[1] > 180 and edge[0] < 60 and edge[2] < 60, f"the main person's edge at 3x, got {edge}"
    for x in (450, 900):
        assert all(abs(c - 128) < 12 for c in browser.execute_script(PIXEL, "wide", x, 375)[:3])


def test_payload_text_is_drawn_as_text_never_inserted_as_html(
    viewer: Viewer, mqtt: Subscriber, browser: webdriver.Chrome
) -> None:
    browser.get(viewer.url)
    _wait(lambda: browser.execute_script("return document.getElementById('connection').textContent") == "live")
    mqtt.publish("detector/front/stats", json.dumps(stats(source_status="<img src=x onerror=window.owned=1>")))
    assert _wait(lambda: "onerror" in browser.execute_script("return document.body.innerText"))
    assert browser.execute_script("return document.querySelectorAll('img').length") == 0
    assert browser.execute_script("return window.owned === undefined")


def test_malformed_retained_stats_never_reach_the_page(viewer: Viewer, mqtt: Subscriber) -> None:
    mqtt.publish("detector/evil/stats", json.dumps({"stages": "x", "drops": 5, "latency": [1]}), retain=True)
    mqtt.publish("detector/evil/status", "online", retain=True)

    def seen() -> dict[str, Any] | None:
        _, body = viewer.get("/api/cameras")
        data = json.loads(body)
        return data if data["cameras"].get("evil", {}).get("status") == "online" and data["malformed"] else None

    found = _wait(seen)
    assert found is not None and found["cameras"]["evil"]["stats"] is None


def test_a_nul_byte_in_a_static_path_is_a_bad_request_without_a_traceback(viewer: Viewer) -> None:
    status, _ = viewer.get("/static/viewer.js%00.css")
    assert status in (400, 404)
    assert viewer.get("/static/viewer.js")[0] == 200
    assert "Traceback" not in viewer.log.read_text()


def test_the_access_log_keeps_a_long_url_to_one_short_line(viewer: Viewer, mqtt: Subscriber) -> None:
    assert viewer.get("/static/" + "a" * 10_000)[0] == 404
    mqtt.publish("detector/front/stats", b'{"v": 1, "stages": ' + b"[" * 100_000 + b"]" * 100_000 + b"}")
    assert _wait(lambda: "nests deeper than" in viewer.log.read_text(), 10), viewer.log.read_text()
    log = viewer.log.read_text()
    assert "(10008 characters)" in log and max(len(line) for line in log.splitlines()) < 1000
    assert "Traceback" not in log and "RecursionError" not in log


def test_healthz_and_api_cameras_are_json(viewer: Viewer, mqtt: Subscriber) -> None:
    mqtt.publish("detector/front/status", "online", retain=True)
    mqtt.publish("detector/front/stats", json.dumps(stats(inference_fps=3.5)), retain=True)
    publish_frame(mqtt, "front", 7, [1, 2, 3, 4], jpeg())

    def cameras() -> dict[str, Any] | None:
        status, body = viewer.get("/api/cameras")
        data = json.loads(body)["cameras"]
        return data if status == 200 and data.get("front", {}).get("frames") == 1 else None

    found = _wait(cameras)
    assert found is not None
    assert found["front"]["status"] == "online" and found["front"]["stats"]["stages"]["inference"]["fps"] == 3.5
    status, body = viewer.get("/healthz")
    assert status == 200 and json.loads(body) == {"ok": True, "mqtt_connected": True, "clients": 0}


async def _collect(url: str, seconds: float, **kw: Any) -> list[dict[str, Any]]:
    return [
        {**header, "jpeg_bytes": len(jpeg), "at": time.time()}
        async for header, jpeg in frames(HTTPRequest(url, **kw), seconds)
    ]


def _stalled_client(port: int) -> socket.socket:
    """A WebSocket client that completes the handshake and then never reads."""
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nOrigin: http://127.0.0.1:{port}\r\n\r\n".encode()
    )
    assert b"101" in sock.recv(1024).split(b"\r\n")[0]
    return sock


def test_a_client_that_stops_reading_does_not_stall_another(viewer: Viewer, mqtt: Subscriber) -> None:
    stalled = _stalled_client(viewer.port)
    image = jpeg(noise=True)
    assert len(image) > 100_000

    async def run() -> list[dict[str, Any]]:
        reader = asyncio.create_task(_collect(f"ws://127.0.0.1:{viewer.port}/ws", 12.0))
        await asyncio.sleep(1.0)
        for frame_id in range(150):
            publish_frame(mqtt, "front", frame_id, [10, 10, 50, 50], image)
            await asyncio.sleep(1 / 15)
        return await reader

    try:
        frames = asyncio.run(run())
    finally:
        stalled.close()
    ids = [f["frame_id"] for f in frames]
    assert len(ids) >= 120, f"the reading client got {len(ids)} of 150 frames while the other one stalled"
    assert ids == sorted(ids) and all(f["jpeg_bytes"] == len(image) for f in frames)
    assert viewer.get("/healthz")[0] == 200


def test_malformed_and_unpaired_messages_are_logged_and_skipped(viewer: Viewer, mqtt: Subscriber) -> None:
    good = jpeg()
    mqtt.publish("detector/front/detections", b"{not json")
    mqtt.publish("detector/front/detections", json.dumps({"frame_id": "one", "size": [427, 240]}))
    mqtt.publish("detector/front/detections", b"[" + b"1," * 200_000 + b"1]")
    mqtt.publish("detector/front/frame", b"not a jpeg", user_property=[("frame_id", "1")])
    mqtt.publish("detector/front/frame", good)
    mqtt.publish("detector/front/status", "maybe")
    mqtt.publish("detector/../etc/status", "online")
    mqtt.publish("detector/front/frame", good, user_property=[("frame_id", "99")])

    async def run() -> list[dict[str, Any]]:
        reader = asyncio.create_task(_collect(f"ws://127.0.0.1:{viewer.port}/ws", 5.0))
        await asyncio.sleep(1.0)
        publish_frame(mqtt, "front", 5, [10, 10, 50, 50], good)
        return await reader

    frames = asyncio.run(run())
    assert [f["frame_id"] for f in frames] == [5]
    assert viewer.process.poll() is None
    _, body = viewer.get("/api/cameras")
    assert json.loads(body)["malformed"] >= 6
    assert "skipped a malformed message" in viewer.log.read_text()


def test_a_foreign_origin_and_a_missing_token_are_refused(tmp_path: Path, broker: Mosquitto) -> None:
    viewer = start_viewer(tmp_path, broker, "--token", "s3cret")
    base = f"ws://127.0.0.1:{viewer.port}/ws"
    try:

        async def status_of(url: str, origin: str | None = None) -> int:
            headers = {"Origin": origin} if origin else {}
            try:
                connection = await websocket_connect(HTTPRequest(url, headers=headers))
            except HTTPClientError as exc:
                return exc.code
            connection.close()
            return 101

        assert asyncio.run(status_of(base)) == 401
        assert asyncio.run(status_of(base + "?token=wrong")) == 401
        assert asyncio.run(status_of(base + "?token=s3cret", "http://evil.example")) == 403
        assert asyncio.run(status_of(base + "?token=s3cret", f"http://127.0.0.1:{viewer.port}")) == 101
        assert viewer.get("/api/cameras")[0] == 401
        assert viewer.get("/api/cameras", {"Authorization": "Bearer s3cret"})[0] == 200
        assert viewer.get("/healthz")[0] == 200
    finally:
        viewer.process.terminate()
        viewer.process.wait(10)


def test_a_request_naming_another_host_is_refused_however_it_came(tmp_path: Path, broker: Mosquitto) -> None:
    """DNS rebinding: a page on evil.example whose name now resolves to 127.0.0.1 sends ``Host: evil.example``,
    and with no token the viewer answered it and opened its WebSocket to it."""
    viewer = start_viewer(tmp_path, broker, "--allow-host", "cam.example")
    try:

        async def websocket_status(host: str) -> int:
            headers = {"Host": host, "Origin": f"http://{host}"}
            try:
                connection = await websocket_connect(HTTPRequest(f"ws://127.0.0.1:{viewer.port}/ws", headers=headers))
            except HTTPClientError as exc:
                return exc.code
            connection.close()
            return 101

        for path in ("/", "/api/cameras", "/healthz", "/static/viewer.js"):
            assert viewer.get(path, {"Host": f"evil.example:{viewer.port}"})[0] == 403, path
            assert viewer.get(path)[0] == 200, path
        assert viewer.get("/api/cameras", {"Host": f"localhost:{viewer.port}"})[0] == 200
        assert viewer.get("/api/cameras", {"Host": "cam.example"})[0] == 200, "--allow-host names another"
        assert asyncio.run(websocket_status(f"evil.example:{viewer.port}")) == 403
        assert asyncio.run(websocket_status(f"127.0.0.1:{viewer.port}")) == 101
        assert "refused a request for host 'evil.example" in viewer.log.read_text()
    finally:
        viewer.process.terminate()
        viewer.process.wait(10)


SCENE = """
const s = document.querySelector(`section[data-camera="${arguments[0]}"]`);
if (!s) return null;
const items = [...s.querySelectorAll(".events li")];
return {
  occupancy: s.querySelector(".occupancy").textContent,
  count: s.querySelector(".count").textContent,
  events: items.map((li) => {
    const c = li.querySelector("canvas");
    const drawn = c.dataset.crop ? [...c.getContext("2d").getImageData(c.width >> 1, c.height >> 1, 1, 1).data] : null;
    return {id: li.dataset.id, type: li.dataset.type, text: li.textContent, crop: c.dataset.crop || null,
      size: [c.width, c.height], centre: drawn, full: li.querySelector("a").href.startsWith("blob:")};
  }),
};
"""


def _event(event_id: str, kind: str, start: float, zones: list[str], snapshot: int | None) -> str:
    """An event of the person at (10, 10)-(50, 120); the snapshot it names shows them there."""
    return json.dumps(
        build_event(
            type=kind,
            id=event_id,
            camera="front",
            label="person",
            track_id=1,
            start_time=start,
            end_time=start + 5 if kind == "end" else None,
            score=0.8,
            top_score=0.9,
            box=[10, 10, 50, 120],
            current_zones=zones,
            entered_zones=zones,
            snapshot_frame_id=snapshot,
            snapshot_box=None if snapshot is None else [10, 10, 50, 120],
        )
    )


@browser_available
def test_the_page_shows_occupancy_counts_events_with_thumbnails_and_draws_zones(
    viewer: Viewer, mqtt: Subscriber, browser: webdriver.Chrome
) -> None:
    browser.get(viewer.url)
    _wait(lambda: browser.execute_script("return document.getElementById('connection').textContent") == "live")
    zones = build_zones("front", (427, 240), {"door": [[300, 0], [427, 0], [427, 240], [300, 240]]})
    mqtt.publish("detector/front/zones", json.dumps(zones), retain=True)
    mqtt.publish("detector/front/occupancy", "ON", retain=True)
    mqtt.publish("detector/front/person", "2", retain=True)
    mqtt.publish("detector/front/zones/door/person", "1", retain=True)
    mqtt.publish("detector/front/zones/door/occupancy", "ON", retain=True)
    snapshot = np.full((240, 427, 3), 30, np.uint8)
    snapshot[10:120, 10:50] = 230  # the person, where the event's snapshot_box says
    mqtt.publish(
        "detector/front/person/snapshot", cv2.imencode(".jpg", snapshot)[1].tobytes(), user_property=[("frame_id", "7")]
    )
    mqtt.publish("detector/front/events", _event("e-old", "new", 1000.0, [], 7))
    mqtt.publish("detector/front/events", _event("e-new", "new", 2000.0, ["door"], None))
    mqtt.publish("detector/front/events", _event("e-old", "end", 1000.0, [], 7))
    publish_frame(mqtt, "front", 1, [10.0, 10.0, 50.0, 120.0], jpeg(value=0))

    def shown() -> dict | None:
        scene = browser.execute_script(SCENE, "front")
        ended = scene and any(e["type"] == "end" and e["crop"] for e in scene["events"])
        counted = ended and "door" in scene["count"] and "in view" in scene["count"]  # the frame came last
        return scene if counted and len(scene["events"]) == 2 else None

    scene = _wait(shown)
    assert scene is not None, (browser.execute_script(SCENE, "front"), viewer.log.read_text())
    assert scene["occupancy"] == "occupied"
    assert scene["count"] == "2 people (1 in view) · door: 1", "events going on, and the boxes drawn"
    assert [e["id"] for e in scene["events"]] == ["e-new", "e-old"], "newest first"
    assert "zones: door" in scene["events"][0]["text"]
    thumb = scene["events"][1]
    assert thumb["crop"] == "person" and thumb["full"], "a crop around the person, the whole snapshot on click"
    width, height = thumb["size"]
    assert height == 72 and width < height, f"the person's shape, not the frame's: {thumb['size']}"
    assert min(thumb["centre"][:3]) > 180, f"the person fills the thumbnail: {thumb['centre']}"
    assert _wait(lambda: browser.execute_script(
        "const s = document.querySelector('section[data-camera=\"front\"]'); return s && s.dataset.frameId"
    ))  # fmt: skip
    inside, outside = browser.execute_script(PIXEL, "front", 360, 200), browser.execute_script(PIXEL, "front", 200, 200)
    assert inside[0] > outside[0] + 20, f"the occupied zone is shaded: {inside} vs {outside}"

    browser.refresh()
    again = _wait(lambda: (s := browser.execute_script(SCENE, "front")) and len(s["events"]) == 2 and s)
    assert again and again["occupancy"] == "occupied", "a page opened later shows the same"

    viewer.process.terminate()  # the page's own connection goes down: what it shows is no longer current
    viewer.process.wait(10)
    stale = _wait(lambda: browser.execute_script(
        "return document.body.classList.contains('stale') && document.getElementById('connection').textContent"
    ))  # fmt: skip
    assert stale and stale.startswith("viewer disconnected"), "occupied, 2 people: greyed, not shown as live"


STILL = """
const s = document.querySelector(`section[data-camera="${arguments[0]}"]`);
return s && {frame: s.dataset.frameId, reason: s.dataset.inference, idle: !s.querySelector(".idle").hidden};
"""


@browser_available
def test_a_still_camera_stays_live_marked_idle_and_motion_and_its_mask_can_be_shown(
    viewer: Viewer, mqtt: Subscriber, browser: webdriver.Chrome
) -> None:
    browser.get(viewer.url)
    _wait(lambda: browser.execute_script("return document.getElementById('connection').textContent") == "live")
    zones = build_zones("front", (427, 240), {}, motion_mask=[[[0, 0], [100, 0], [100, 240], [0, 240]]])
    mqtt.publish("detector/front/zones", json.dumps(zones), retain=True)
    idle = {"ran": False, "reason": "idle"}
    publish_frame(mqtt, "front", 1, [200.0, 20.0, 260.0, 200.0], jpeg(value=0), inference=idle, motion=[])
    shown = _wait(lambda: (state := browser.execute_script(STILL, "front")) and state["frame"] == "1" and state)
    assert shown and shown["idle"] and shown["reason"] == "idle", "the model rests, and the page says so"
    publish_frame(mqtt, "front", 2, [200.0, 20.0, 260.0, 200.0], jpeg(value=0), inference=idle, motion=[])
    assert _wait(lambda: browser.execute_script(STILL, "front")["frame"] == "2"), "frames keep coming"

    browser.find_element("id", "show-motion").click()
    moving = {"ran": True, "reason": "motion", "regions": [[272.0, 80.0, 400.0, 224.0]]}
    publish_frame(mqtt, "front", 3, [200.0, 20.0, 260.0, 200.0], jpeg(value=0), inference=moving,
                  motion=[[300.0, 100.0, 380.0, 200.0]])  # fmt: skip
    state = _wait(lambda: (st := browser.execute_script(STILL, "front")) and st["frame"] == "3" and st)
    assert state and not state["idle"] and state["reason"] == "motion"
    mask, open_ = browser.execute_script(PIXEL, "front", 50, 120), browser.execute_script(PIXEL, "front", 150, 120)
    assert mask[0] > open_[0] + 30, f"the mask is drawn over the picture: {mask} vs {open_}"
    edge = [browser.execute_script(PIXEL, "front", 300, y) for y in range(140, 160)]  # a dashed line
    assert max(p[0] for p in edge) > 100 and max(p[2] for p in edge) > 80, f"the motion box is drawn: {edge}"
    looked = [browser.execute_script(PIXEL, "front", 272, y) for y in range(140, 150)]
    assert all(p[2] > 80 and p[2] > p[0] + 50 for p in looked), f"where the model looked: {looked}"


def test_metrics_parse_as_prometheus_exposition_and_follow_the_stats(viewer: Viewer, mqtt: Subscriber) -> None:
    mqtt.publish("detector/front/status", "online", retain=True)
    mqtt.publish("detector/front/stats", json.dumps(stats(inference_fps=3.5)), retain=True)
    mqtt.publish("detector/front/person", "2", retain=True)
    mqtt.publish("detector/front/occupancy", "ON", retain=True)
    mqtt.publish("detector/front/events", _event("e-1", "new", 1000.0, [], None))

    def scraped() -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        status, body = viewer.get("/metrics")
        assert status == 200
        return {
            (sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(body.decode())
            for sample in family.samples
        }

    front = (("camera", "front"),)
    heard = [("detectord_events_started_total", front), ("detectord_people", front), ("detectord_occupancy", front)]
    samples = _wait(lambda: (found := scraped()) and all(key in found for key in heard) and found)  # every message
    assert samples, scraped()
    assert samples[("detectord_up", front)] == 1.0
    assert samples[("detectord_people", front)] == 2.0 and samples[("detectord_occupancy", front)] == 1.0
    assert samples[("detectord_stage_fps", (("camera", "front"), ("stage", "inference")))] == 3.5
    assert samples[("detectord_stage_frames_total", (("camera", "front"), ("stage", "inference")))] == 10.0
    assert samples[("detectord_dropped_frames_total", (("camera", "front"), ("stage", "capture")))] == 0.0
    memory = (("camera", "front"), ("kind", "rss"), ("stage", "inference"))
    assert samples[("detectord_process_memory_bytes", memory)] == 900.0 * 2**20
    assert samples[("detectord_events_started_total", front)] == 1.0
    assert samples[("detectord_model_frames_total", front)] == 40.0 and samples[("detectord_model_area", front)] == 0.25


def test_metrics_keep_the_viewers_token_rule_or_their_own(tmp_path: Path, broker: Mosquitto) -> None:
    viewer = start_viewer(tmp_path, broker, "--token", "page", "--metrics-token", "scrape")
    try:
        assert viewer.get("/metrics")[0] == 401
        assert viewer.get("/metrics", {"Authorization": "Bearer page"})[0] == 401
        assert viewer.get("/metrics", {"Authorization": "Bearer scrape"})[0] == 200
        assert viewer.get("/api/cameras", {"Authorization": "Bearer page"})[0] == 200
    finally:
        viewer.process.terminate()
        viewer.process.wait(10)


@browser_available
def test_a_zone_and_a_mask_drawn_on_the_picture_give_toml_the_daemon_accepts(
    viewer: Viewer, mqtt: Subscriber, browser: webdriver.Chrome, tmp_path: Path
) -> None:
    browser.set_window_size(1200, 1400)  # the whole picture in view, for the clicks
    browser.get(viewer.url)
    _wait(lambda: browser.execute_script("return document.getElementById('connection').textContent") == "live")
    publish_frame(mqtt, "front", 1, [10.0, 10.0, 50.0, 120.0], jpeg(value=60))
    _wait(lambda: browser.execute_script(STILL, "front") and browser.execute_script(STILL, "front")["frame"] == "1")
    section = browser.find_element("css selector", 'section[data-camera="front"]')
    section.find_element("css selector", ".editor summary").click()
    canvas = section.find_element("css selector", "canvas")
    width, height = canvas.size["width"], canvas.size["height"]

    def click_at(fx: float, fy: float, double: bool = False) -> None:
        actions = ActionChains(browser).move_to_element_with_offset(
            canvas, round((fx - 0.5) * width), round((fy - 0.5) * height)
        )
        (actions.double_click() if double else actions.click()).perform()

    name = section.find_element("css selector", ".zone-name")
    name.clear()
    name.send_keys("door")
    section.find_element("css selector", ".new-zone").click()
    for fx, fy in ((0.6, 0.1), (0.9, 0.1), (0.9, 0.9), (0.6, 0.9), (0.75, 0.5)):
        click_at(fx, fy)
    click_at(0.75, 0.5, double=True)  # that last point was a slip: a double click deletes it
    section.find_element("css selector", ".new-mask").click()
    for fx, fy in ((0.02, 0.02), (0.3, 0.02), (0.3, 0.3)):
        click_at(fx, fy)
    toml = section.find_element("css selector", ".toml").get_attribute("value")
    assert '[[zones]]\nname = "door"' in toml and "[motion]\nmask = [[[0.0" in toml, toml
    assert toml.count("], [") == 3 + 2, f"four zone points and three mask points: {toml}"

    config = tmp_path / "drawn.toml"
    config.write_text('[source]\nuri = "0"\n' + toml)
    done = subprocess.run(
        [sys.executable, "-m", "detectord.daemon", "--check-config", "--config", str(config)],
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, f"{done.stderr}\n{toml}"
