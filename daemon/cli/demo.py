"""``detectord demo --source …``: broker, daemon and viewer in one command, stopped together on Ctrl-C.

It uses the broker at ``--mqtt-host:--mqtt-port`` if one answers there, and
otherwise starts a private Mosquitto on a free loopback port. The daemon and
the viewer run as child processes in sessions of their own, so that Ctrl-C
reaches only this command, which then stops them in order: daemon (which
publishes ``offline``), viewer, broker. The daemon gets its configuration as
a TOML file (``loading.to_toml``), the same way a user's daemon does.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import tempfile
import threading
from dataclasses import replace
from pathlib import Path

from detectord.daemon.config import DaemonConfig, DemoConfig, ModelConfig
from detectord.detection.registry import (
    LAST_RESORT_DETECTOR,
    OFFLINE_DETECTOR,
    DetectorOptions,
    family,
    weights_unavailable,
)

from ..pipeline.signals import stop_signals
from .loading import to_toml
from .mosquitto import Mosquitto, free_port, reachable, stop_process

log = logging.getLogger(__name__)


def _child(args: list[str], log_file: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", *args], stdout=subprocess.DEVNULL, stderr=log_file.open("w"), start_new_session=True
    )


def without_download(config: DaemonConfig) -> DaemonConfig:
    """``config``, or the same with ``ssdlite-people`` when the detector's pretrained weights cannot be had
    here (``hog-people`` where that network's package is missing too).

    An untrained network's boxes are noise; ssdlite-people is a trained person detector whose graph comes
    with a package, and OpenCV's person detector comes with OpenCV.
    """
    model = config.model
    if not family(model.name).downloads:
        return config
    reason = weights_unavailable(model)
    if reason is None:
        return config
    fallback = OFFLINE_DETECTOR
    missing = weights_unavailable(DetectorOptions(name=OFFLINE_DETECTOR))
    if missing is not None:
        fallback = LAST_RESORT_DETECTOR
        reason = f"{reason}; {missing}"
    log.warning(
        "%s: running %s (%s) instead; --weights random runs the untrained %s, for timing only",
        reason,
        fallback,
        "a trained person detector, nothing to download"
        if fallback == OFFLINE_DETECTOR
        else "OpenCV's built-in person detector, far less accurate",
        model.name,
    )
    return replace(config, model=ModelConfig(name=fallback, score_threshold=model.score_threshold))


def run_demo(config: DemoConfig) -> int:
    with stop_signals() as stop:
        return _demo(config, stop)


def _demo(config: DemoConfig, stop: threading.Event) -> int:
    broker: Mosquitto | None = None
    daemon = viewer = None
    with tempfile.TemporaryDirectory(prefix="detectord-demo-") as tmp:
        logs = Path(tmp)
        try:
            daemon_config = without_download(config.daemon)
            mqtt = daemon_config.mqtt
            if reachable(mqtt.host, mqtt.port):
                log.info("using the broker at %s", mqtt.address)
            else:
                broker = Mosquitto(logs, free_port())
                broker.start()
                daemon_config = replace(daemon_config, mqtt=replace(mqtt, host="127.0.0.1", port=broker.port))
                log.info("no broker at %s; started Mosquitto on %s", mqtt.address, daemon_config.mqtt.address)
            settings = logs / "detector.toml"
            settings.write_text(to_toml(daemon_config))
            settings.chmod(0o600)  # it may hold the MQTT password
            daemon = _child(["detectord.daemon", "--config", str(settings)], logs / "daemon.log")
            host, port = daemon_config.mqtt.host, daemon_config.mqtt.port
            web_mqtt = [
                "--mqtt-host",
                host,
                "--mqtt-port",
                str(port),
                "--topic-prefix",
                daemon_config.mqtt.topic_prefix,
            ]
            viewer = _child(
                ["detectord.web", "--host", config.web_host, "--port", str(config.web_port), *web_mqtt],
                logs / "viewer.log",
            )
            url = f"http://{config.web_host}:{config.web_port}/"
            sys.stdout.write(f"detectord demo: open {url}  (Ctrl-C stops everything)\n")
            sys.stdout.flush()
            while not stop.wait(0.5):
                for name, process, log_file in (("daemon", daemon, "daemon.log"), ("viewer", viewer, "viewer.log")):
                    if process.poll() is not None:
                        tail = (logs / log_file).read_text().strip().splitlines()[-5:]
                        log.error("the %s stopped (status %s):\n%s", name, process.returncode, "\n".join(tail))
                        return 1
            return 0
        finally:
            for child in (daemon, viewer):
                if child is not None:
                    stop_process(child, grace_s=15.0)
            if broker is not None:
                broker.stop()
