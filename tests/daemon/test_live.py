"""The live daemon end to end: real processes, a real Mosquitto, a video file as the camera."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import psutil
import pytest

from detectord.daemon.cli.mosquitto import free_port

from ..mqtt import Mosquitto, Subscriber
from .conftest import stop_group, write_video

REPO = Path(__file__).resolve().parents[2]
PAYLOAD_KEYS = {"v", "camera", "frame_id", "size", "ts", "model", "detections", "main_person", "inference", "motion"}


class Running:
    def __init__(
        self,
        tmp_path: Path,
        port: int,
        factory: str = "bright",
        env: dict[str, str] | None = None,
        camera: str | None = None,
        source: str | None = None,
    ) -> None:
        self.camera = camera or f"t{uuid.uuid4().hex[:8]}"
        run = uuid.uuid4().hex[:8]  # each daemon its own files: a second one must not overwrite the first's log
        source = source or str(write_video(tmp_path / f"live-{run}.mp4", frames=40).path)
        config = tmp_path / f"detector-{run}.toml"
        config.write_text(f'camera = "{self.camera}"\n[mqtt]\nport = {port}\nstats_interval_s = 1.0\n')
        self.log = tmp_path / f"daemon-{run}.log"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.daemon.live_runner", factory, "--config", str(config),
             "--source", source, "--loop", "--weights", "random"],
            cwd=REPO, stdout=subprocess.DEVNULL, stderr=self.log.open("w"), start_new_session=True,
            env={**os.environ, **(env or {})},
        )  # fmt: skip

    def topic(self, kind: str) -> str:
        return f"detector/{self.camera}/{kind}"

    def segments(self) -> list[str]:
        return [f for f in os.listdir("/dev/shm") if f.startswith(f"detectord-{self.camera}-")]

    def stage_pid(self, name: str) -> int:
        for child in psutil.Process(self.process.pid).children():
            if child.name() == f"detectord-{name}"[:15]:
                return child.pid
        raise LookupError(name)

    def stop(self, sig: int = signal.SIGTERM) -> int:
        return stop_group(self.process, sig)


def _last(sub: Subscriber, topic: str) -> bytes | None:
    found = [m for m in sub.messages if m.topic == topic]
    return found[-1].payload if found else None


def _bright_box(image: np.ndarray) -> np.ndarray:
    ys, xs = np.nonzero(image.min(axis=2) > 200)
    return np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], np.float32)


def test_frames_reach_a_subscriber_with_the_documented_payloads(
    tmp_path: Path, broker: Mosquitto, subscriber: Subscriber
) -> None:
    daemon = Running(tmp_path, broker.port)

    def measured() -> bool:
        """Stats published after frames were: a stats message before the first frame has no latencies yet."""
        stats = subscriber.on("/stats")
        return bool(stats) and json.loads(stats[-1].payload)["latency"]["end_to_end"] is not None

    try:
        assert subscriber.wait_for(lambda: len(subscriber.on("/frame")) >= 8 and measured()), daemon.log.read_text()
        assert _last(subscriber, daemon.topic("status")) == b"online"
        detections = {}
        for message in subscriber.on("/detections"):
            payload = json.loads(message.payload)
            assert set(payload) == PAYLOAD_KEYS
            assert payload["v"] == 1 and payload["camera"] == daemon.camera and payload["size"] == [427, 240]
            ts = payload["ts"]
            assert ts["capture"] <= ts["inference_start"] <= ts["inference_end"] <= ts["publish"] <= message.at
            assert payload["model"] == {"name": "bright-box", "precision": "fp32", "device": "cpu"}, "what ran"
            assert payload["main_person"]["track_id"] >= 1
            assert payload["main_person"]["box"] == payload["detections"][payload["main_person"]["index"]]["box"]
            detections[payload["frame_id"]] = payload
        for message in subscriber.on("/frame"):
            (frame_id,) = [int(v) for k, v in message.properties["user_property"] if k == "frame_id"]
            image = cv2.imdecode(np.frombuffer(message.payload, np.uint8), cv2.IMREAD_COLOR)
            assert image.shape == (240, 427, 3)
            box = detections[frame_id]["detections"][0]["box"]
            np.testing.assert_allclose(_bright_box(image), box, atol=2.0, err_msg="the JPEG is that frame")
        stats = json.loads(subscriber.on("/stats")[-1].payload)
        assert set(stats["stages"]) == {"capture", "inference", "publish"}
        assert stats["stages"]["inference"]["pid"] and stats["stages"]["inference"]["rss_mb"] > 0
        assert stats["mqtt"]["connected"] and set(stats["drops"]) >= {"capture", "inference", "mqtt_unsent"}
        assert stats["latency"]["end_to_end"]["p50_ms"] > 0
    finally:
        assert daemon.stop(signal.SIGTERM) == 0, daemon.log.read_text()
    assert subscriber.wait_for(lambda: _last(subscriber, daemon.topic("status")) == b"offline", 10)
    assert daemon.segments() == []
    late = Subscriber(broker.port)
    try:
        assert late.wait_for(lambda: bool(late.on("/stats")) and bool(late.on("/status")), 10)
        assert all(m.retain for m in late.messages), "status and stats are retained, nothing else is"
        assert _last(late, daemon.topic("status")) == b"offline"
    finally:
        late.close()


def test_status_goes_offline_by_the_will_after_sigkill_and_the_next_start_reclaims_memory(
    tmp_path: Path, broker: Mosquitto, subscriber: Subscriber
) -> None:
    """The second daemon is waited for by its own frames: the first one's frames must not count (a past flake)."""
    daemon = Running(tmp_path, broker.port)
    assert subscriber.wait_for(lambda: _last(subscriber, daemon.topic("status")) == b"online")
    daemon.stop(signal.SIGKILL)
    assert subscriber.wait_for(lambda: _last(subscriber, daemon.topic("status")) == b"offline", 15)
    assert daemon.segments(), "SIGKILL of the whole group leaves the segments behind"
    again = _next_start_reclaims(tmp_path, broker, subscriber, daemon)
    assert again.segments() == []


def _next_start_reclaims(tmp_path: Path, broker: Mosquitto, subscriber: Subscriber, killed: Running) -> Running:
    """A daemon of ``killed``'s camera started after it, stopped once it published two frames of its own; its
    log says it reclaimed the segments ``killed`` left."""
    before = len(subscriber.on("/frame"))
    again = Running(tmp_path, broker.port, camera=killed.camera)
    try:
        assert subscriber.wait_for(lambda: len(subscriber.on("/frame")) >= before + 2), again.log.read_text()
    finally:
        again.stop()
    assert "reclaiming stale shared-memory segment" in again.log.read_text()
    return again


def test_publishing_resumes_after_the_broker_restarts(tmp_path: Path, broker: Mosquitto) -> None:
    daemon = Running(tmp_path, broker.port)
    try:
        first = Subscriber(broker.port)
        assert first.wait_for(lambda: len(first.on("/frame")) >= 2), daemon.log.read_text()
        first.close()
        broker.stop()
        time.sleep(3)
        broker.start()
        second = Subscriber(broker.port)
        try:
            assert second.wait_for(lambda: len(second.on("/frame")) >= 2, 60), daemon.log.read_text()
            assert _last(second, daemon.topic("status")) == b"online"
            assert second.wait_for(lambda: bool(second.on("/stats")))
            stats = json.loads(second.on("/stats")[-1].payload)
            assert stats["mqtt"]["connections"] >= 2
        finally:
            second.close()
    finally:
        assert daemon.stop() == 0


@pytest.mark.slow
def test_the_daemon_starts_without_a_broker_and_connects_when_it_comes(tmp_path: Path) -> None:
    broker = Mosquitto(tmp_path)
    daemon = Running(tmp_path, broker.port)
    try:
        running = "first result through the pipeline; running (broker not reached: results are counted as unsent)"

        def waited() -> bool:
            text = daemon.log.read_text()
            return text.count("cannot connect to the broker") >= 2 and running in text

        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not waited():
            time.sleep(0.1)
        assert daemon.process.poll() is None, "a missing broker does not stop the daemon"
        assert waited() and "connection refused" in daemon.log.read_text(), "the log says the broker was not reached"
        broker.start()
        sub = Subscriber(broker.port)
        try:
            assert sub.wait_for(lambda: len(sub.on("/frame")) >= 2, 60), daemon.log.read_text()
        finally:
            sub.close()
    finally:
        daemon.stop()
        broker.stop()


def test_a_killed_stage_is_restarted(tmp_path: Path, broker: Mosquitto, subscriber: Subscriber) -> None:
    daemon = Running(tmp_path, broker.port)
    try:
        assert subscriber.wait_for(lambda: len(subscriber.on("/frame")) >= 2), daemon.log.read_text()
        victim = daemon.stage_pid("inference")
        os.kill(victim, signal.SIGKILL)
        seen = len(subscriber.on("/frame"))
        assert subscriber.wait_for(lambda: len(subscriber.on("/frame")) >= seen + 3, 60), daemon.log.read_text()
        assert daemon.stage_pid("inference") != victim

        def restarted() -> bool:
            stats = [json.loads(m.payload) for m in subscriber.on("/stats")]
            return any(s["stages"]["inference"]["restarts"] >= 1 for s in stats)

        assert subscriber.wait_for(restarted, 10)
    finally:
        assert daemon.stop() == 0
    assert "the inference stage was killed by SIGKILL; restarting it" in daemon.log.read_text()


class _NotifySocket:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.2)
        self.received: list[tuple[float, str]] = []

    def collect(self, seconds: float, until: Callable[[], bool] = lambda: False) -> bool:
        """Receive for ``seconds``, or until ``until()`` holds (True then)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if until():
                return True
            try:
                data = self.sock.recv(4096).decode()
            except TimeoutError:
                continue
            self.received += [(time.monotonic(), line) for line in data.splitlines()]
        return until()

    def lines(self, prefix: str) -> list[float]:
        return [t for t, line in self.received if line.startswith(prefix)]


@pytest.mark.slow
def test_systemd_hears_ready_status_watchdog_and_stopping(tmp_path: Path, broker: Mosquitto) -> None:
    notify = _NotifySocket(tmp_path / "notify.sock")
    daemon = Running(tmp_path, broker.port, env={"NOTIFY_SOCKET": str(notify.path), "WATCHDOG_USEC": "1000000"})

    def pings_after_ready() -> list[float]:
        ready = notify.lines("READY=1")
        return [t for t in notify.lines("WATCHDOG=1") if ready and t > ready[0]]

    try:
        assert notify.collect(30, lambda: len(pings_after_ready()) >= 5), (
            f"every half of WATCHDOG_USEC while frames flow\n{daemon.log.read_text()}"
        )
        assert notify.lines("STATUS=capture ")
    finally:
        daemon.stop()
    notify.collect(1)
    assert notify.lines("STOPPING=1")


@pytest.mark.slow
def test_watchdog_pings_stop_when_inference_is_stuck(tmp_path: Path, broker: Mosquitto) -> None:
    notify = _NotifySocket(tmp_path / "notify.sock")
    daemon = Running(
        tmp_path, broker.port, "stuck", env={"NOTIFY_SOCKET": str(notify.path), "WATCHDOG_USEC": "1000000"}
    )

    def pings_stopped() -> bool:
        """Ready and pinging once, then withheld, and no ping for the last 5 seconds: inference hangs."""
        pings = notify.lines("WATCHDOG=1")
        return (
            bool(notify.lines("READY=1") and pings)
            and time.monotonic() - pings[-1] > 5
            and "withholding the watchdog ping" in daemon.log.read_text()
        )

    try:
        assert notify.collect(40, pings_stopped), daemon.log.read_text()
        assert notify.received[-1][0] - notify.lines("WATCHDOG=1")[-1] > 4, "the daemon still speaks, without pings"
    finally:
        daemon.stop()


def test_a_source_that_cannot_be_opened_is_retried_and_the_stats_say_so(
    tmp_path: Path, broker: Mosquitto, subscriber: Subscriber
) -> None:
    """A camera stream that is down keeps the daemon up: capture retries with backoff and reports it."""
    daemon = Running(tmp_path, broker.port, source=f"rtsp://127.0.0.1:{free_port()}/stream")

    def reconnecting() -> bool:
        stats = [json.loads(m.payload) for m in subscriber.on("/stats")]
        return any(s["source"]["status"].startswith("reconnecting") for s in stats)

    try:
        assert subscriber.wait_for(reconnecting, 30), daemon.log.read_text()
        assert daemon.process.poll() is None
        assert _last(subscriber, daemon.topic("status")) == b"online"
    finally:
        assert daemon.stop() == 0
    assert "cannot open rtsp://127.0.0.1" in daemon.log.read_text()


def test_a_bad_source_or_config_is_one_line_and_a_nonzero_exit(tmp_path: Path) -> None:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "detectord.daemon", *args], capture_output=True, text=True, check=False, timeout=60
        )

    missing = run("--source", str(tmp_path / "nope.mp4"))
    said = f"detectord: error: source.uri: no such file: {tmp_path}/nope.mp4"
    assert missing.returncode == 2 and missing.stderr.strip() == said
    checked = run("--check-config", "--source", str(tmp_path / "nope.mp4"))
    assert (checked.returncode, checked.stderr.strip(), checked.stdout) == (2, said, ""), "both say it, or neither"
    config = tmp_path / "bad.toml"
    config.write_text('camera = "x"\n[mqtt]\nprot = 1883\n')
    for args in (["--check-config"], []):
        bad = run(*args, "--config", str(config), "--source", "0")
        assert bad.returncode == 2 and "unknown setting 'mqtt.prot'" in bad.stderr, "one code for a bad file"
        assert len(bad.stderr.strip().splitlines()) == 1
    config.write_text("[mqtt]\nport = 70000\n")
    assert "mqtt.port must be between 1 and 65535" in run("--config", str(config), "--source", "0").stderr


def test_a_utf8_byte_order_mark_in_a_configuration_file_is_accepted(tmp_path: Path) -> None:
    """Windows editors save one; it was reported as ``Invalid statement (at line 1, column 1)``."""
    config = tmp_path / "bom.toml"
    config.write_bytes(b'\xef\xbb\xbfcamera = "bom"\n[source]\nuri = "0"\n')
    done = subprocess.run(
        [sys.executable, "-m", "detectord.daemon", "--check-config", "--config", str(config)],
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0 and "camera 'bom'" in done.stdout, done.stderr


def test_only_the_inference_stage_loads_torch_and_the_stats_say_what_each_process_holds(
    tmp_path: Path, broker: Mosquitto, subscriber: Subscriber
) -> None:
    """The real command line with the real (untrained, small) model: no torch outside inference."""
    video = write_video(tmp_path / "live.mp4", frames=40)
    camera = f"m{uuid.uuid4().hex[:8]}"
    log = tmp_path / "daemon.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "detectord.daemon", "--source", str(video.path), "--loop", "--camera", camera,
         "--model", "fasterrcnn_mobilenet_v3_large_320_fpn", "--weights", "random",
         "--mqtt-port", str(broker.port)],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=log.open("w"), start_new_session=True,
    )  # fmt: skip
    try:
        assert subscriber.wait_for(lambda: len(subscriber.on(f"{camera}/stats")) >= 1, 120), log.read_text()
        supervisor = psutil.Process(process.pid)
        stages = {child.name(): child for child in supervisor.children() if child.name().startswith("detectord-")}
        assert set(stages) == {"detectord-captu", "detectord-infer", "detectord-publi"}

        def maps_torch(proc: psutil.Process) -> bool:
            return any("libtorch" in m.path for m in proc.memory_maps())

        assert maps_torch(stages["detectord-infer"])
        for proc in (supervisor, stages["detectord-captu"], stages["detectord-publi"]):
            assert not maps_torch(proc), f"{proc.name()} loaded torch"
        stats = json.loads(subscriber.on(f"{camera}/stats")[-1].payload)
        assert stats["supervisor"]["pid"] == process.pid and stats["supervisor"]["uss_mb"] > 0
        assert all(stage["uss_mb"] > 0 for stage in stats["stages"].values())
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        assert process.wait(30) == 0, log.read_text()


def test_a_second_daemon_with_the_same_camera_name_is_one_line_naming_the_first(
    tmp_path: Path, broker: Mosquitto
) -> None:
    first = Running(tmp_path, broker.port)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not first.segments():
            time.sleep(0.2)
        video = write_video(tmp_path / "second.mp4", frames=5)
        done = subprocess.run(
            [sys.executable, "-m", "detectord.daemon", "--source", str(video.path), "--camera", first.camera,
             "--weights", "random", "--mqtt-port", str(broker.port)],
            cwd=REPO, capture_output=True, text=True, check=False, timeout=120,
        )  # fmt: skip
        assert done.returncode == 1 and len(done.stderr.strip().splitlines()) == 1, done.stderr
        assert f"belongs to running process {first.process.pid}" in done.stderr
    finally:
        assert first.stop() == 0


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b'camera = "caf\xe9"\n', "not UTF-8 text"),
        (b'[source]\nuri = "0"\nstall_timeout_s = nan\n', "source.stall_timeout_s: expected a finite number"),
        (b'[source]\nuri = "0"\n[mqtt]\nstats_interval_s = inf\n', "mqtt.stats_interval_s: expected a finite number"),
        (b'camera = 5\n[source]\nuri = "0"\n', "camera: expected a string"),
    ],
    ids=["latin-1", "nan", "inf", "camera-int"],
)
def test_bad_values_in_a_configuration_file_are_one_line(tmp_path: Path, content: bytes, message: str) -> None:
    config = tmp_path / "bad.toml"
    config.write_bytes(content)
    done = subprocess.run(
        [sys.executable, "-m", "detectord.daemon", "--check-config", "--config", str(config)],
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert (
        message in done.stderr and str(config) in done.stderr if message == "not UTF-8 text" else message in done.stderr
    )


def test_a_password_in_a_configuration_every_user_can_read_is_warned_about(tmp_path: Path) -> None:
    config = tmp_path / "detector.toml"
    config.write_text('[source]\nuri = "0"\n[mqtt]\nusername = "u"\npassword = "secret"\n')
    config.chmod(0o644)
    check = [sys.executable, "-m", "detectord.daemon", "--check-config", "--config", str(config)]
    done = subprocess.run(check, capture_output=True, text=True, check=False, timeout=60)
    assert done.returncode == 0, done.stderr
    assert f"{config} holds the MQTT password and every user can read it (mode -rw-r--r--)" in done.stderr
    config.chmod(0o640)
    done = subprocess.run(check, capture_output=True, text=True, check=False, timeout=60)
    assert done.returncode == 0 and "every user can read" not in done.stderr


def _group_gone(pgid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        alive = []
        for process in psutil.process_iter():
            try:
                if os.getpgid(process.pid) == pgid and process.status() != psutil.STATUS_ZOMBIE:
                    alive.append(process.pid)
            except (ProcessLookupError, psutil.NoSuchProcess):
                continue
        if not alive:
            return True
        time.sleep(0.2)
    return False


def test_sigkill_of_the_supervisor_alone_leaves_its_segments_to_the_next_start_and_no_tracker_warning(
    tmp_path: Path, broker: Mosquitto, subscriber: Subscriber
) -> None:
    """#35: multiprocessing's resource tracker outlived a SIGKILLed supervisor, unlinked its rings itself and
    logged "leaked shared_memory objects"; detectord owns that cleanup: the next start reclaims them."""
    daemon = Running(tmp_path, broker.port)
    assert subscriber.wait_for(lambda: _last(subscriber, daemon.topic("status")) == b"online")
    os.kill(daemon.process.pid, signal.SIGKILL)
    daemon.process.wait(timeout=10)
    assert _group_gone(daemon.process.pid, 30), "the stages and the tracker die with the supervisor"
    assert "leaked shared_memory" not in daemon.log.read_text()
    assert daemon.segments(), "the killed supervisor's rings wait for the next start"
    again = _next_start_reclaims(tmp_path, broker, subscriber, daemon)
    assert again.segments() == [] and "leaked" not in again.log.read_text()
