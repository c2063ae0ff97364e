"""``detectord demo --source …``: broker, daemon and viewer in one command, stopped together on Ctrl-C.

It uses the broker at ``--mqtt-host:--mqtt-port`` if one answers there, and
otherwise starts a private Mosquitto on a free loopback port. The daemon and
the viewer run as child processes in sessions of their own, so that Ctrl-C
reaches only this command, which then stops them in order: daemon (which
publishes ``offline``), viewer, broker.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from .broker import Mosquitto, free_port, reachable, stop_process

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DemoConfig:
    source: str
    daemon_flags: tuple[str, ...]
    mqtt_host: str = "127.0.0.1"
    mqtt_port: int = 1883
    web_host: str = "127.0.0.1"
    web_port: int = 8080


def _child(args: list[str], log_file: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", *args], stdout=subprocess.DEVNULL, stderr=log_file.open("w"), start_new_session=True
    )


def run_demo(config: DemoConfig) -> int:
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    broker: Mosquitto | None = None
    daemon = viewer = None
    with tempfile.TemporaryDirectory(prefix="detectord-demo-") as tmp:
        logs = Path(tmp)
        try:
            host, port = config.mqtt_host, config.mqtt_port
            if reachable(host, port):
                log.info("using the broker at %s:%d", host, port)
            else:
                broker = Mosquitto(logs, free_port())
                broker.start()
                host, port = "127.0.0.1", broker.port
                log.info(
                    "no broker at %s:%d; started Mosquitto on %s:%d", config.mqtt_host, config.mqtt_port, host, port
                )
            mqtt = ["--mqtt-host", host, "--mqtt-port", str(port)]
            daemon = _child(
                ["detectord.daemon", "--source", config.source, *mqtt, *config.daemon_flags], logs / "daemon.log"
            )
            viewer = _child(
                ["detectord.web", "--host", config.web_host, "--port", str(config.web_port), *mqtt],
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
            for process in (daemon, viewer):
                if process is not None:
                    stop_process(process, grace_s=15.0)
            if broker is not None:
                broker.stop()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
