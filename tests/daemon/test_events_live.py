"""Events, counts, occupancy, snapshots and Home Assistant discovery from the live daemon: real processes, a real
Mosquitto, a scripted video whose white rectangles the test double reports as people."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import uuid
from collections import defaultdict
from pathlib import Path

import cv2
import numpy as np
import pytest

from detectord.contract import parse_frame, parse_stats
from detectord.contract.homeassistant import node_for
from detectord.contract.scene import parse_count, parse_event, parse_occupancy

from ..mqtt import Gate, Mosquitto, Received, Subscriber
from .conftest import stop_group

REPO = Path(__file__).resolve().parents[2]
FPS = 25.0
WIDTH, HEIGHT = 854, 480
PASS_S = 12.0
"""The scripted video's length; the daemon plays it in a loop."""


def person(image: np.ndarray, x: int) -> None:
    image[120:420, x : x + 80] = 255


def scripted_video(path: Path) -> Path:
    """0-1 s nobody; 1-4 s one person walks from the left into the right half (the door zone); 4-6 s nobody;
    6-8 s two people, one on each side; 8-10.4 s nobody; one frame at 10.4 s with a person (a flicker); then
    nobody until the end at 12 s."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), FPS, (WIDTH, HEIGHT))
    for i in range(int(PASS_S * FPS)):
        image = np.full((HEIGHT, WIDTH, 3), 40, np.uint8)
        if 25 <= i < 100:
            person(image, 40 + (i - 25) * 9)
        elif 150 <= i < 200:
            person(image, 100)
            person(image, 600)
        elif i == 260:
            person(image, 300)
        writer.write(image)
    writer.release()
    return path


def start(
    tmp_path: Path, port: int, camera: str, zones: str, extra: str = "", default_node: bool = False
) -> tuple[subprocess.Popen[bytes], Path]:
    """The daemon on the scripted video; its Home Assistant node is ``testnode`` unless ``default_node``."""
    config = tmp_path / f"{camera}-{uuid.uuid4().hex[:4]}.toml"
    node = "" if default_node else 'homeassistant_node = "testnode"\n'
    config.write_text(
        f'camera = "{camera}"\n[mqtt]\nport = {port}\nstats_interval_s = 1.0\n{node}'
        "[detect]\nstationary_interval_s = 0.4\n[events]\nmin_frames = 3\nend_after_s = 0.8\nupdate_interval_s = 0.2\n"
        "[events.occupancy]\nmin_frames = 2\nwindow = 3\noff_after_s = 0.8\n"
        f"[events.snapshot]\ndraw_box = false\n{extra}{zones}"
    )
    log = tmp_path / f"{config.stem}.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.daemon.live_runner", "blobs", "--config", str(config),
         "--source", str(tmp_path / "script.mp4"), "--loop"],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=log.open("w"), start_new_session=True,
    )  # fmt: skip
    return process, log


DOOR = '[[zones]]\nname = "door"\npoints = [[0.5, 0.0], [1.0, 0.0], [1.0, 1.0], [0.5, 1.0]]\nnormalized = true\n'
YARD = '[[zones]]\nname = "yard"\npoints = [[0, 0], [100, 0], [100, 240], [0, 240]]\n'


def frame_id_of(message: Received) -> int:
    return parse_frame(message.payload, message.properties)[0]


@pytest.mark.slow
def test_a_scripted_scene_makes_the_documented_events_counts_occupancy_and_snapshots(
    tmp_path: Path, broker: Mosquitto, subscriber: Subscriber
) -> None:
    scripted_video(tmp_path / "script.mp4")
    camera = f"e{uuid.uuid4().hex[:6]}"
    process, log = start(tmp_path, broker.port, camera, DOOR)

    def events() -> list[dict]:
        return [parse_event(m.payload) for m in subscriber.on(f"{camera}/events")]

    def first_pass_over() -> bool:
        found = events()
        return bool(found) and time.time() > found[0]["start_time"] + PASS_S - 1.3

    try:
        assert subscriber.wait_for(first_pass_over, 90), log.read_text()
        time.sleep(0.5)
    finally:
        assert stop_group(process) == 0, log.read_text()
    found = events()
    window_end = found[0]["start_time"] + PASS_S - 1.2
    by_id: dict[str, list[dict]] = defaultdict(list)
    for event in found:
        if event["start_time"] < window_end:
            by_id[event["id"]].append(event)
    assert len(by_id) == 3, f"the walker and the two people; the flicker makes none: {dict(by_id)}"
    walker, *pair = sorted(by_id.values(), key=lambda messages: messages[0]["start_time"])
    types = [m["type"] for m in walker]
    assert types[0] == "new" and types[-1] == "end" and set(types[1:-1]) <= {"update"}
    assert any(m["type"] == "update" and m["entered_zones"] == ["door"] for m in walker)
    assert walker[0]["entered_zones"] == [] and walker[-1]["entered_zones"] == ["door"]
    assert len({m["track_id"] for m in walker}) == 1
    assert all(messages[-1]["type"] == "end" for messages in pair)
    first, second = (messages[-1] for messages in pair)
    assert first["start_time"] < second["end_time"] and second["start_time"] < first["end_time"], "at once"
    assert sorted(m[-1]["current_zones"] for m in pair) == [[], ["door"]]

    end = walker[-1]
    snapshots = [m for m in subscriber.on(f"{camera}/person/snapshot") if frame_id_of(m) == end["snapshot_frame_id"]]
    frames = [m for m in subscriber.on(f"{camera}/frame") if frame_id_of(m) == end["snapshot_frame_id"]]
    assert snapshots and frames
    snapshot = cv2.imdecode(np.frombuffer(snapshots[0].payload, np.uint8), cv2.IMREAD_COLOR)
    frame = cv2.imdecode(np.frombuffer(frames[0].payload, np.uint8), cv2.IMREAD_COLOR)
    assert snapshot.shape == (HEIGHT, WIDTH, 3), "the camera's full frame"
    assert frame.shape == (240, 427, 3), "the live frame at detection size (publish.frame_size)"
    small = cv2.resize(snapshot, (427, 240), interpolation=cv2.INTER_AREA)
    assert np.abs(small.astype(int) - frame).mean() < 3, "the snapshot is the frame its event names"

    counts = [parse_count(m.payload) for m in subscriber.on(f"{camera}/person")]
    assert 2 in counts and counts[0] == 0 and counts[-1] == 0
    occupancy = [parse_occupancy(m.payload) for m in subscriber.on(f"{camera}/occupancy")]
    assert occupancy[:3] == [False, True, False]
    door = [parse_occupancy(m.payload) for m in subscriber.on(f"{camera}/zones/door/occupancy")]
    assert True in door and door[-1] is False


def _configs(subscriber: Subscriber) -> dict[str, list[Received]]:
    found: dict[str, list[Received]] = defaultdict(list)
    for message in subscriber.on("/config"):
        if message.topic.startswith("homeassistant/") and "/testnode/" in message.topic:
            found[message.topic].append(message)
    return found


def test_home_assistant_discovers_every_entity_gets_states_reannounces_and_removes(
    tmp_path: Path, broker: Mosquitto, subscriber: Subscriber
) -> None:
    scripted_video(tmp_path / "script.mp4")
    camera = f"h{uuid.uuid4().hex[:6]}"
    process, log = start(tmp_path, broker.port, camera, DOOR + YARD)
    try:
        assert subscriber.wait_for(lambda: len(_configs(subscriber)) == 10, 60), log.read_text()
        assert subscriber.wait_for(lambda: bool(subscriber.on(f"{camera}/person/snapshot")), 60), log.read_text()
        assert subscriber.wait_for(lambda: bool(subscriber.on(f"{camera}/stats")), 10)
        for topic, messages in _configs(subscriber).items():
            config = json.loads(messages[-1].payload)
            component = topic.split("/")[1]
            assert config["unique_id"] and config["device"]["identifiers"]
            (availability,) = config["availability"]
            assert availability["topic"] == f"detector/{camera}/status"
            assert (availability["payload_available"], availability["payload_not_available"]) == ("online", "offline")
            state_topic = config["topic"] if component == "camera" else config["state_topic"]
            states = [m for m in subscriber.messages if m.topic == state_topic]
            assert states, f"{topic}: nothing on {state_topic}"
            for state in states:
                if component == "camera":
                    parse_frame(state.payload, state.properties)
                elif component == "binary_sensor":
                    parse_occupancy(state.payload)
                elif "value_template" in config:
                    parse_stats(state.payload)
                else:
                    parse_count(state.payload)
        late = Subscriber(broker.port, "homeassistant/#")
        try:
            assert late.wait_for(lambda: len(late.messages) >= 10, 10)
            assert all(m.retain for m in late.messages), "configurations are retained"
        finally:
            late.close()
        stats = json.loads(subscriber.on(f"{camera}/stats")[-1].payload)
        assert stats["stages"]["inference"]["fps"] >= 0 and sum(stats["drops"].values()) >= 0

        before = sum(len(messages) for messages in _configs(subscriber).values())
        subscriber.publish("homeassistant/status", "online")
        assert subscriber.wait_for(
            lambda: sum(len(messages) for messages in _configs(subscriber).values()) >= before + 10, 10
        ), "configurations are sent again when Home Assistant says it is online"
    finally:
        assert stop_group(process) == 0, log.read_text()
    assert subscriber.wait_for(lambda: subscriber.on(f"{camera}/status")[-1].payload == b"offline", 10)

    yard = [topic for topic in _configs(subscriber) if "_zone_yard_" in topic]
    assert len(yard) == 2
    process, log = start(tmp_path, broker.port, camera, DOOR)
    try:
        assert subscriber.wait_for(lambda: all(_configs(subscriber)[topic][-1].payload == b"" for topic in yard), 30), (
            f"a zone taken out of the configuration loses its entities\n{log.read_text()}"
        )
        assert all(_configs(subscriber)[topic][-1].payload for topic in _configs(subscriber) if topic not in yard)
    finally:
        assert stop_group(process) == 0, log.read_text()

    config = tmp_path / "remove.toml"
    config.write_text(f'[mqtt]\nport = {broker.port}\nhomeassistant_node = "testnode"\n')
    done = subprocess.run(
        [sys.executable, "-m", "detectord.daemon", "--config", str(config), "homeassistant-remove"],
        check=False, capture_output=True, text=True, timeout=60, cwd=REPO,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"removed 8 Home Assistant entities of node testnode from 127.0.0.1:{broker.port}"
    assert subscriber.wait_for(lambda: all(m[-1].payload == b"" for m in _configs(subscriber).values()), 10)


def test_removing_entities_from_a_broker_that_is_not_there_says_so_in_one_line(tmp_path: Path) -> None:
    config = tmp_path / "remove.toml"
    config.write_text("[mqtt]\nport = 9\n")
    done = subprocess.run(
        [sys.executable, "-m", "detectord.daemon", "--config", str(config), "homeassistant-remove"],
        check=False, capture_output=True, text=True, timeout=60, cwd=REPO,
    )  # fmt: skip
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "cannot connect to the broker at 127.0.0.1:9: connection refused" in done.stderr


@pytest.mark.slow
def test_two_daemons_on_one_host_keep_each_others_home_assistant_entities(
    tmp_path: Path, broker: Mosquitto, subscriber: Subscriber
) -> None:
    """Two single-camera daemons (``detector@x1``, ``detector@x2``) once shared the node ``detectord_<host>``,
    and the second one's stale-entity removal emptied the first one's configurations."""
    scripted_video(tmp_path / "script.mp4")
    x1, x2, x3 = (f"x{uuid.uuid4().hex[:6]}" for _ in range(3))
    host = socket.gethostname()
    legacy = node_for(host)

    def configs(node: str, camera: str) -> dict[str, bytes]:
        prefix = f"/{node}/{camera}_"
        return {m.topic: m.payload for m in subscriber.on("/config") if prefix in m.topic}

    first, first_log = start(tmp_path, broker.port, x1, "", default_node=True)
    second = None
    try:
        assert subscriber.wait_for(lambda: len(configs(node_for(host, x1), x1)) == 6, 60), first_log.read_text()
        for camera in (x2, x3):  # what x2 and x3 (not running) announced before node ids named the instance
            config = {"name": "Person count", "availability": [{"topic": f"detector/{camera}/status"}]}
            subscriber.publish(f"homeassistant/sensor/{legacy}/{camera}_person_count/config", json.dumps(config), True)
        assert subscriber.wait_for(lambda: len(configs(legacy, x2)) == len(configs(legacy, x3)) == 1, 10)
        second, second_log = start(tmp_path, broker.port, x2, "", default_node=True)
        assert subscriber.wait_for(lambda: list(configs(legacy, x2).values()) == [b""], 60), (
            f"the second daemon takes its own camera's old entity away\n{second_log.read_text()}"
        )
        assert subscriber.wait_for(lambda: len(configs(node_for(host, x2), x2)) == 6, 30), second_log.read_text()
        assert all(configs(node_for(host, x1), x1).values()), "the first daemon's entities are still announced"
        assert all(configs(legacy, x3).values()), "another camera's entity is not the second daemon's to remove"
    finally:
        if second is not None:
            assert stop_group(second) == 0, second_log.read_text()
        assert stop_group(first) == 0, first_log.read_text()

    done = subprocess.run(
        [sys.executable, "-m", "detectord.daemon", "--mqtt-port", str(broker.port), "--camera", x2,
         "homeassistant-remove"],
        check=False, capture_output=True, text=True, timeout=60, cwd=REPO,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"removed 6 Home Assistant entities of node {node_for(host, x2)} from")
    assert subscriber.wait_for(lambda: not any(configs(node_for(host, x2), x2).values()), 10)
    assert all(configs(node_for(host, x1), x1).values()) and all(configs(legacy, x3).values())


def always_someone(path: Path) -> Path:
    """A person stands in the left part of the picture in every frame."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), FPS, (WIDTH, HEIGHT))
    for _ in range(int(2 * FPS)):
        image = np.full((HEIGHT, WIDTH, 3), 40, np.uint8)
        person(image, 60)
        writer.write(image)
    writer.release()
    return path


def test_retained_states_do_not_outlive_the_daemon_or_a_removed_zone(
    tmp_path: Path, broker: Mosquitto, subscriber: Subscriber
) -> None:
    """After a clean stop ``person`` was 0 but the retained ``occupancy`` stayed ON; a zone taken out of the
    configuration kept its retained ``zones/<zone>/person`` and ``…/occupancy``."""
    always_someone(tmp_path / "script.mp4")
    camera = f"r{uuid.uuid4().hex[:6]}"

    def last(kind: str) -> bytes | None:
        found = subscriber.on(f"{camera}/{kind}")
        return found[-1].payload if found else None

    process, log = start(tmp_path, broker.port, camera, YARD)
    try:
        assert subscriber.wait_for(lambda: last("occupancy") == b"ON" and last("zones/yard/occupancy") == b"ON", 60), (
            log.read_text()
        )
    finally:
        assert stop_group(process) == 0, log.read_text()
    assert subscriber.wait_for(lambda: last("status") == b"offline", 10)
    late = Subscriber(broker.port, f"detector/{camera}/#")
    try:
        assert late.wait_for(lambda: len(late.on("/status")) == 1 and len(late.on("/occupancy")) == 2, 10)
        retained = {m.topic.removeprefix(f"detector/{camera}/"): m.payload for m in late.messages}
    finally:
        late.close()
    assert retained["occupancy"] == retained["zones/yard/occupancy"] == b"OFF", retained
    assert retained["person"] == retained["zones/yard/person"] == b"0", retained

    process, log = start(tmp_path, broker.port, camera, "")
    try:
        assert subscriber.wait_for(
            lambda: last("zones/yard/occupancy") == b"" and last("zones/yard/person") == b"", 30
        ), f"the removed zone's states are emptied\n{log.read_text()}"
    finally:
        assert stop_group(process) == 0, log.read_text()


@pytest.mark.slow
def test_events_survive_a_broker_outage_whole_and_in_order(
    tmp_path: Path, broker: Mosquitto, subscriber: Subscriber
) -> None:
    """The broker killed (kill -9) for seconds mid-scene and restarted: of 54 event ids, 7 had ``update`` or
    ``end`` without ``new`` and 4 ``new`` without ``end``. The daemon reaches the broker through a gate that
    the test opens only once it has subscribed to the restarted broker, so that nothing goes by unseen."""
    scripted_video(tmp_path / "script.mp4")
    camera = f"o{uuid.uuid4().hex[:6]}"
    gate = Gate(broker.port)
    process, log = start(tmp_path, gate.port, camera, DOOR)
    after = None
    try:
        assert subscriber.wait_for(lambda: bool(subscriber.on(f"{camera}/events")), 60), log.read_text()
        assert broker.process is not None
        broker.process.kill()  # kill -9: no goodbye, no session kept
        broker.process.wait(10)
        broker.process = None
        gate.shut()
        time.sleep(8)  # the outage: people come and go meanwhile (the scripted scene lasts 12 s)
        broker.start()
        after = Subscriber(broker.port)
        gate.open()

        def reconnected_and_quiet() -> bool:
            stats = [json.loads(m.payload) for m in after.on(f"{camera}/stats")]
            return any(s["mqtt"]["connections"] >= 2 for s in stats) and len(after.on(f"{camera}/events")) > 0

        assert after.wait_for(reconnected_and_quiet, 60), log.read_text()
    finally:
        assert stop_group(process) == 0, log.read_text()
        gate.close()
    assert after is not None
    assert after.wait_for(lambda: after.on(f"{camera}/status")[-1].payload == b"offline", 10)
    after.close()
    seen: dict[bytes, None] = {}
    for message in sorted(subscriber.on(f"{camera}/events") + after.on(f"{camera}/events"), key=lambda m: m.at):
        seen.setdefault(message.payload, None)  # the first subscriber may be back on the broker too
    by_id: dict[str, list[str]] = defaultdict(list)
    for payload in seen:
        event = parse_event(payload)
        by_id[event["id"]].append(event["type"])
    assert len(by_id) >= 3, by_id
    broken = {key: kinds for key, kinds in by_id.items() if kinds[0] != "new" or kinds[-1] != "end"}
    assert not broken, f"every event whole, new first and end last: {broken}\n{log.read_text()}"
    assert all(kinds.count("new") == 1 and kinds.count("end") == 1 for kinds in by_id.values()), by_id
