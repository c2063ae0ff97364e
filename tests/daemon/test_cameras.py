"""Many cameras, one model: real processes, a real Mosquitto, test-double detectors where boxes must be predictable."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psutil
import pytest

from detectord.daemon.cli.mosquitto import Mosquitto, free_port

from ..mqtt import Subscriber
from ..web.conftest import start_viewer
from .conftest import stop_group, write_video

REPO = Path(__file__).resolve().parents[2]


class Cameras:
    """A daemon running the ``[[cameras]]`` of a configuration it writes, with a test-double detector."""

    def __init__(
        self,
        tmp_path: Path,
        port: int,
        sources: dict[str, str],
        factory: str = "bright",
        extra: str = "",
        tag: str | None = None,
        fps: dict[str, float] | None = None,
    ) -> None:
        self.tag = tag or uuid.uuid4().hex[:6]
        self.names = {camera: f"{camera}{self.tag}" for camera in sources}
        tables = []
        for camera, given in sources.items():
            rate = (fps or {}).get(camera, 25.0)
            uri = str(write_video(tmp_path / f"{self.names[camera]}.mp4", 40, rate).path) if given == "video" else given
            tables.append(
                f'[[cameras]]\nname = "{self.names[camera]}"\n[cameras.source]\nuri = "{uri}"\nloop = true\n'
                "reconnect_max_s = 2.0\n"
            )
        self.config = tmp_path / f"cameras-{self.tag}.toml"
        self.config.write_text(f"[mqtt]\nport = {port}\nstats_interval_s = 1.0\n{extra}\n" + "\n".join(tables))
        self.log = tmp_path / f"daemon-{self.tag}.log"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.daemon.live_runner", factory, "--config", str(self.config)],
            cwd=REPO, stdout=subprocess.DEVNULL, stderr=self.log.open("w"), start_new_session=True,
        )  # fmt: skip

    def topic(self, camera: str, kind: str) -> str:
        return f"detector/{self.names[camera]}/{kind}"

    def segments(self) -> list[str]:
        return [f for f in os.listdir("/dev/shm") if any(f.startswith(f"detectord-{n}-") for n in self.names.values())]

    def stage_pids(self, prefix: str) -> list[int]:
        return [c.pid for c in psutil.Process(self.process.pid).children() if c.name().startswith(prefix)]

    def stop(self, sig: int = signal.SIGTERM) -> int:
        return stop_group(self.process, sig)


def _payloads(sub: Subscriber, topic: str) -> list[dict]:
    return [json.loads(m.payload) for m in sub.messages if m.topic == topic]


def _last(sub: Subscriber, topic: str) -> bytes | None:
    found = [m.payload for m in sub.messages if m.topic == topic]
    return found[-1] if found else None


def test_three_cameras_in_one_daemon_each_publish_on_their_own_topics(
    tmp_path: Path, broker: Mosquitto, subscriber: Subscriber
) -> None:
    daemon = Cameras(tmp_path, broker.port, {"a": "video", "b": "video", "c": "video"})
    try:
        everyone = lambda: all(len(_payloads(subscriber, daemon.topic(c, "detections"))) >= 3 for c in "abc")  # noqa: E731
        assert subscriber.wait_for(everyone, 90), daemon.log.read_text()
        assert len(daemon.stage_pids("detectord-infer")) == 1, "one inference process, one model"
        assert len(daemon.stage_pids("detectord-captu")) == 3, "one capture process per camera"
        for camera in "abc":
            payloads = _payloads(subscriber, daemon.topic(camera, "detections"))
            assert {p["camera"] for p in payloads} == {daemon.names[camera]}
            assert all(p["main_person"]["index"] == 0 for p in payloads)
            assert _last(subscriber, daemon.topic(camera, "status")) == b"online"

        def counted(camera: str) -> bool:
            stats = _payloads(subscriber, daemon.topic(camera, "stats"))
            return bool(stats) and stats[-1]["stages"]["inference"]["frames"] > 0

        assert subscriber.wait_for(lambda: all(counted(c) for c in "abc"), 20), "each camera's share of inference"
        stats = _payloads(subscriber, daemon.topic("a", "stats"))[-1]
        assert stats["camera"] == daemon.names["a"] and stats["host"] == os.uname().nodename
        assert {"capture", "inference", "publish"} <= set(stats["stages"])
    finally:
        assert daemon.stop() == 0, daemon.log.read_text()
    for camera in "abc":
        assert subscriber.wait_for(lambda c=camera: _last(subscriber, daemon.topic(c, "status")) == b"offline", 10)
    assert daemon.segments() == [], "SIGTERM leaves /dev/shm clean"


def test_a_camera_that_cannot_be_opened_does_not_stop_the_others_and_its_stats_say_so(
    tmp_path: Path, broker: Mosquitto, subscriber: Subscriber
) -> None:
    daemon = Cameras(tmp_path, broker.port, {"good": "video", "bad": f"rtsp://127.0.0.1:{free_port()}/none"})
    try:
        assert subscriber.wait_for(lambda: len(_payloads(subscriber, daemon.topic("good", "detections"))) >= 5, 90)

        def reported() -> bool:
            stats = _payloads(subscriber, daemon.topic("bad", "stats"))
            return any(s["source"]["status"].startswith("reconnecting") for s in stats)

        assert subscriber.wait_for(reported, 30), daemon.log.read_text()
        assert _payloads(subscriber, daemon.topic("bad", "detections")) == []
    finally:
        assert daemon.stop() == 0, daemon.log.read_text()


def test_a_killed_inference_process_is_restarted_and_every_camera_resumes(
    tmp_path: Path, broker: Mosquitto, subscriber: Subscriber
) -> None:
    daemon = Cameras(tmp_path, broker.port, {"a": "video", "b": "video"})
    try:
        count = lambda c: len(_payloads(subscriber, daemon.topic(c, "detections")))  # noqa: E731
        assert subscriber.wait_for(lambda: count("a") >= 2 and count("b") >= 2, 90), daemon.log.read_text()
        (victim,) = daemon.stage_pids("detectord-infer")
        os.kill(victim, signal.SIGKILL)
        seen = {c: count(c) for c in "ab"}
        assert subscriber.wait_for(lambda: all(count(c) >= seen[c] + 3 for c in "ab"), 60), daemon.log.read_text()
        assert daemon.stage_pids("detectord-infer") != [victim]
    finally:
        assert daemon.stop() == 0
    assert "the inference stage was killed by SIGKILL; restarting it" in daemon.log.read_text()


def test_a_fast_camera_does_not_starve_a_slow_one(tmp_path: Path, broker: Mosquitto, subscriber: Subscriber) -> None:
    """One frame per camera per round, the first camera turning: the slow camera's frames all get their turn."""
    daemon = Cameras(
        tmp_path,
        broker.port,
        {"fast": "video", "slow": "video"},
        factory="slow",
        extra="[inference]\nbatch = 1\n",
        fps={"fast": 30.0, "slow": 4.0},
    )

    def frames(stage: str) -> int:
        stats = _payloads(subscriber, daemon.topic("slow", "stats"))
        return stats[-1]["stages"][stage]["frames"] if stats else 0

    try:
        assert subscriber.wait_for(lambda: frames("inference") > 0, 120), daemon.log.read_text()
        before = {stage: frames(stage) for stage in ("capture", "inference")}
        assert subscriber.wait_for(lambda: frames("capture") >= before["capture"] + 24, 60)
        captured = frames("capture") - before["capture"]
        processed = frames("inference") - before["inference"]
        assert processed >= 0.8 * captured, f"slow camera: {processed} of {captured} frames processed"
        fast = len(_payloads(subscriber, daemon.topic("fast", "detections")))
        assert fast >= len(_payloads(subscriber, daemon.topic("slow", "detections"))), "fast gets the other rounds"
    finally:
        assert daemon.stop() == 0


def test_two_workers_never_take_the_same_frame(tmp_path: Path, broker: Mosquitto, subscriber: Subscriber) -> None:
    daemon = Cameras(
        tmp_path, broker.port, {"a": "video", "b": "video"}, factory="slow", extra="[inference]\nworkers = 2\n"
    )
    try:
        count = lambda c: len(_payloads(subscriber, daemon.topic(c, "detections")))  # noqa: E731
        assert subscriber.wait_for(lambda: count("a") >= 15 and count("b") >= 15, 120), daemon.log.read_text()
        assert len(daemon.stage_pids("detectord-infer")) == 2
    finally:
        assert daemon.stop() == 0
    for camera in "ab":
        ids = [(p["ts"]["capture"], p["frame_id"]) for p in _payloads(subscriber, daemon.topic(camera, "detections"))]
        assert len(ids) == len(set(ids)), f"camera {camera}: a frame was published twice"
    stats = _payloads(subscriber, daemon.topic("a", "stats"))[-1]
    assert {"inference-0", "inference-1"} <= set(stats["stages"])


def test_sigkill_of_the_daemon_turns_every_camera_offline(
    tmp_path: Path, broker: Mosquitto, subscriber: Subscriber
) -> None:
    """Each camera publishes over its own connection with its own will; stages die with the supervisor."""
    daemon = Cameras(tmp_path, broker.port, {"a": "video", "b": "video", "c": "video"})
    online = lambda: all(_last(subscriber, daemon.topic(c, "status")) == b"online" for c in "abc")  # noqa: E731
    assert subscriber.wait_for(online, 90), daemon.log.read_text()
    stages = psutil.Process(daemon.process.pid).children()
    os.kill(daemon.process.pid, signal.SIGKILL)  # the supervisor alone, as a crash would
    daemon.process.wait(10)
    offline = lambda: all(_last(subscriber, daemon.topic(c, "status")) == b"offline" for c in "abc")  # noqa: E731
    statuses = lambda: {c: _last(subscriber, daemon.topic(c, "status")) for c in "abc"}  # noqa: E731
    assert subscriber.wait_for(offline, 30), f"{statuses()}\n{daemon.log.read_text()}"
    _, alive = psutil.wait_procs(stages, timeout=20)
    assert alive == [], f"stages outlived their supervisor: {alive}"
    before = len(_payloads(subscriber, daemon.topic("a", "detections")))
    again = Cameras(tmp_path, broker.port, {"a": "video", "b": "video", "c": "video"}, tag=daemon.tag)
    try:
        assert subscriber.wait_for(lambda: len(_payloads(subscriber, again.topic("a", "detections"))) > before, 90), (
            again.log.read_text()
        )
    finally:
        assert again.stop() == 0
    assert again.segments() == []


@pytest.mark.slow
def test_two_daemons_on_one_broker_and_one_viewer_that_shows_both(
    tmp_path: Path, broker: Mosquitto, subscriber: Subscriber
) -> None:
    """Two hosts' daemons as a broker sees them; then a third that reuses a camera name says so once."""
    first = Cameras(tmp_path, broker.port, {"door": "video"}, tag="hosta")
    second = Cameras(tmp_path, broker.port, {"yard": "video"}, tag="hostb")
    viewer = start_viewer(tmp_path, broker)
    clash = None
    try:
        pairs = ((first, "door"), (second, "yard"))
        assert subscriber.wait_for(lambda: all(_payloads(subscriber, d.topic(c, "detections")) for d, c in pairs), 90)

        def shown() -> bool:
            status, body = viewer.get("/api/cameras")
            cameras = json.loads(body)["cameras"] if status == 200 else {}
            return all(cameras.get(name, {}).get("frames", 0) > 0 for name in ("doorhosta", "yardhostb"))

        assert subscriber.wait_for(shown, 30)
        same_id = 'client_id = "detectord-doorhosta"'  # another host's daemon with camera "doorhosta"
        clash = Cameras(tmp_path, broker.port, {"door": "video"}, tag="hostc", extra=same_id)
        logs = (first.log, clash.log)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and not any("keeps handing" in log.read_text() for log in logs):
            time.sleep(0.5)
        connections = [log.read_text().count("connected to") for log in logs]
        time.sleep(8)  # a fight over the session would go on reconnecting meanwhile
        texts = [log.read_text() for log in logs]
        assert sum(text.count("keeps handing") for text in texts) == 1, texts
        assert "Camera names must be unique across hosts" in "".join(texts)
        assert [text.count("connected to") for text in texts] == connections, "the fight stopped"
    finally:
        viewer.process.terminate()
        viewer.process.wait(10)
        for daemon in (first, second, clash):
            if daemon is not None:
                daemon.stop()


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ('[[cameras]]\nname = "a"\n[cameras.source]\nuri = "0"\nloop = "yes"\n', "cameras.a.source.loop: expected"),
        ('[[cameras]]\nname = "a b"\n[cameras.source]\nuri = "0"\n', "camera 'a b': use 1-64 letters"),
        (
            '[[cameras]]\nname = "a"\n[cameras.source]\nuri = "0"\n[[cameras]]\nname = "a"\n[cameras.source]\n'
            'uri = "1"\n',
            "two cameras are called 'a'",
        ),
        ('camera = "x"\n[[cameras]]\nname = "a"\n[cameras.source]\nuri = "0"\n', "both forms"),
        (
            '[[cameras]]\nname = "a"\n[cameras.source]\nuri = "0"\n[cameras.frame]\nwidth = 5\nheight = 240\n',
            "frame.width must be between 16 and 8192",
        ),
        ('[[cameras]]\nname = "a"\nenabled = false\n[cameras.source]\nuri = "0"\n', "every camera is disabled"),
        ('[[cameras]]\n[cameras.source]\nuri = "0"\n', "cameras[0]: name is not set"),
        (
            '[[cameras]]\nname = "a"\n[cameras.source]\nuri = "0"\n[cameras.motion]\nthreshold = 0\n',
            "cameras.a.motion.threshold must be between 1 and 255",
        ),
        (
            '[[cameras]]\nname = "a"\n[cameras.source]\nuri = "0"\n'
            "[cameras.motion]\nmask = [[[0, 0], [500, 0], [0, 9]]]\n",
            "cameras.a.motion.mask: point [500, 0] lies outside the 427x240 frame",
        ),
        ('[source]\nuri = "0"\n[motion]\ncontour_area = -3\n', "motion.contour_area must be between"),
        ('[source]\nuri = "0"\n[detect]\nidle_fps = 0\n', "detect.idle_fps must be between 0.1 and 30"),
        (
            '[source]\nuri = "0"\n[events]\nend_after_s = 1.5\n',
            "detect.stationary_interval_s (2) must be below events.end_after_s (1.5) with motion gating on",
        ),
        ('[source]\nuri = "0"\n[publish]\nframe_size = "big"\n', "publish.frame_size must be WIDTHxHEIGHT"),
        ('[source]\nuri = "0"\n[publish]\nframe_size = "0x720"\n', "publish.frame_size: width and height must"),
        ('[source]\nuri = "0"\n[publish]\nnative_max = "4k"\n', "publish.native_max must be WIDTHxHEIGHT"),
        (
            '[source]\nuri = "0"\n[publish]\nnative = false\nframe_size = "native"\n',
            "publish.frame_size = 'native' needs the full frame",
        ),
    ],
    ids=[
        "bad-value",
        "bad-name",
        "duplicate",
        "both-forms",
        "frame",
        "all-disabled",
        "no-name",
        "motion-threshold",
        "motion-mask",
        "motion-area",
        "idle-fps",
        "looks-slower-than-events-end",
        "frame-size-word",
        "frame-size-zero",
        "native-max",
        "frame-size-without-native",
    ],
)
def test_configuration_errors_name_the_camera_and_the_key(tmp_path: Path, config: str, message: str) -> None:
    path = tmp_path / "cameras.toml"
    path.write_text(config)
    done = subprocess.run(
        [sys.executable, "-m", "detectord.daemon", "--check-config", "--config", str(path)],
        cwd=REPO, capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert message in done.stderr


def test_check_config_lists_every_enabled_camera(tmp_path: Path) -> None:
    path = tmp_path / "cameras.toml"
    path.write_text(
        '[[cameras]]\nname = "front"\n[cameras.source]\nuri = "0"\n[cameras.main_person]\nscore_threshold = 0.8\n'
        '[[cameras]]\nname = "back"\nenabled = false\n[cameras.source]\nuri = "1"\n'
        '[main_person]\nmax_gap = 3\n'
    )  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-m", "detectord.daemon", "--check-config", "--config", str(path)],
        cwd=REPO, capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "camera 'front', source '0'" in done.stdout and "'back'" not in done.stdout
