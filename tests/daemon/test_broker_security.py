"""A broker with TLS from a private CA and a password file, made here with openssl and mosquitto_passwd: the
daemon, the viewer and ``homeassistant-remove`` trust the CA given and log in; what goes wrong is one line."""

from __future__ import annotations

import os
import shutil
import ssl
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from detectord.daemon.cli.mosquitto import Mosquitto

from ..mqtt import Subscriber
from ..web.conftest import start_viewer
from .conftest import stop_group, write_video

REPO = Path(__file__).resolve().parents[2]
USER, PASSWORD = "detector", "s3cret pass"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not shutil.which("openssl") or not shutil.which("mosquitto_passwd"), reason="no openssl"),
]


@dataclass
class SecureBroker:
    broker: Mosquitto
    ca: Path

    @property
    def port(self) -> int:
        return self.broker.port

    def subscriber(self) -> Subscriber:
        return Subscriber(self.port, tls=ssl.create_default_context(cafile=str(self.ca)), credentials=(USER, PASSWORD))


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture
def secure_broker(tmp_path: Path) -> Iterator[SecureBroker]:
    """Mosquitto speaking only TLS, with a certificate for 127.0.0.1 from a CA made for this test."""
    pki = tmp_path / "pki"
    pki.mkdir()
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
             "-subj", "/CN=detectord test CA", cwd=pki)  # fmt: skip
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
             "-subj", "/CN=127.0.0.1", cwd=pki)  # fmt: skip
    (pki / "san.cnf").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    _openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
             "-out", "server.pem", "-days", "2", "-extfile", "san.cnf", cwd=pki)  # fmt: skip
    subprocess.run(["mosquitto_passwd", "-c", "-b", str(pki / "passwords"), USER, PASSWORD], check=True)
    broker = Mosquitto(tmp_path)
    broker.config.write_text(
        f"listener {broker.port} 127.0.0.1\ncafile {pki / 'ca.pem'}\ncertfile {pki / 'server.pem'}\n"
        f"keyfile {pki / 'server.key'}\npassword_file {pki / 'passwords'}\nallow_anonymous false\n"
        "persistence false\n" + ("user root\n" if os.geteuid() == 0 else "")  # it reads the key after dropping root
    )
    broker.start()
    try:
        yield SecureBroker(broker, pki / "ca.pem")
    finally:
        broker.stop()


def _daemon(tmp_path: Path, mqtt: str, camera: str) -> tuple[subprocess.Popen[bytes], Path]:
    config = tmp_path / f"{camera}.toml"
    config.write_text(f'camera = "{camera}"\n[mqtt]\nstats_interval_s = 1.0\nhomeassistant = false\n{mqtt}')
    log = tmp_path / f"{camera}.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.daemon.live_runner", "bright", "--config", str(config),
         "--source", str(write_video(tmp_path / "live.mp4", frames=40).path), "--loop"],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=log.open("w"), start_new_session=True,
        env={**os.environ, "DETECTORD_MQTT_PASSWORD": PASSWORD},
    )  # fmt: skip
    return process, log


def test_the_daemon_the_viewer_and_homeassistant_remove_trust_a_private_ca_and_log_in(
    tmp_path: Path, secure_broker: SecureBroker, monkeypatch: pytest.MonkeyPatch
) -> None:
    camera = f"s{uuid.uuid4().hex[:6]}"
    mqtt = f'port = {secure_broker.port}\ntls = true\ntls_ca = "{secure_broker.ca}"\nusername = "{USER}"\n'
    process, log = _daemon(tmp_path, mqtt, camera)
    subscriber = secure_broker.subscriber()
    try:
        assert subscriber.wait_for(lambda: len(subscriber.on(f"{camera}/frame")) >= 2, 60), log.read_text()
    finally:
        subscriber.close()
        assert stop_group(process) == 0, log.read_text()

    flags = ["--mqtt-tls", "--mqtt-tls-ca", str(secure_broker.ca), "--mqtt-username", USER]
    monkeypatch.setenv("DETECTORD_MQTT_PASSWORD", PASSWORD)
    viewer = start_viewer(tmp_path, secure_broker.broker, *flags)  # waits for mqtt_connected
    viewer.process.terminate()
    viewer.process.wait(10)

    done = subprocess.run(
        [sys.executable, "-m", "detectord.daemon", "--mqtt-port", str(secure_broker.port), *flags,
         "homeassistant-remove"],
        cwd=REPO, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("removed 0 Home Assistant entities of node")


@pytest.mark.parametrize(
    ("mqtt", "says"),
    [
        (f'tls = true\nusername = "{USER}"\n', "cannot verify the broker's certificate"),
        ('tls = true\ntls_ca = "{ca}"\nusername = "wrong"\n', "refused: not authorised"),
        (f'username = "{USER}"\n', "no MQTT answer within 10 s: a TLS port? (set mqtt.tls)"),
    ],
    ids=["unknown-ca", "wrong-user", "plain-to-tls"],
)
def test_a_connection_that_cannot_work_is_one_line_saying_why_and_is_retried_with_backoff(
    tmp_path: Path, secure_broker: SecureBroker, mqtt: str, says: str
) -> None:
    """Before: four lines a try from gmqtt's internals (\"not reconnecting\", then \"reconnecting\"), or
    ``lost the broker …; reconnecting`` every 2 s with no reason, and tracebacks."""
    settings = f"port = {secure_broker.port}\n" + mqtt.format(ca=secure_broker.ca)
    process, log = _daemon(tmp_path, settings, f"f{uuid.uuid4().hex[:6]}")
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and says not in log.read_text():
            time.sleep(0.2)
        time.sleep(3)  # long enough for gmqtt's 2-second retries to show, were they still going
        assert process.poll() is None, "a broker that refuses does not stop the daemon"
    finally:
        assert stop_group(process) == 0, log.read_text()
    text = log.read_text()
    lines = [line for line in text.splitlines() if "broker" in line]
    assert len([line for line in lines if says in line]) == 1, text
    assert "retrying every 30 s" in text and "Traceback" not in text and "gmqtt" not in text, text
    assert not any("lost the broker" in line or "reconnecting" in line for line in lines), text
