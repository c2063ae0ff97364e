"""A private Mosquitto on a free loopback port, for ``detectord demo``, the benchmarks and the tests.

It runs from a throwaway configuration (anonymous, no persistence) in a
directory of the caller's, listening on 127.0.0.1 only.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path


class BrokerError(RuntimeError):
    """Mosquitto is not installed or did not start."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def reachable(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


class Mosquitto:
    def __init__(self, directory: Path, port: int | None = None) -> None:
        self.port = port or free_port()
        self.config = directory / "mosquitto.conf"
        self.config.write_text(f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 10.0) -> None:
        executable = shutil.which("mosquitto") or next(
            (p for p in ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto") if Path(p).is_file()), None
        )
        if executable is None:
            raise BrokerError("mosquitto is not installed (Debian/Ubuntu: apt-get install mosquitto)")
        self.process = subprocess.Popen(
            [executable, "-c", str(self.config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BrokerError(f"mosquitto exited with status {self.process.returncode}")
            if reachable("127.0.0.1", self.port, 0.2):
                return
            time.sleep(0.05)
        self.stop()
        raise BrokerError(f"mosquitto did not listen on 127.0.0.1:{self.port} within {timeout:.0f} s")

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process, grace_s=10.0)
            self.process = None


def stop_process(process: subprocess.Popen[bytes], grace_s: float) -> None:
    """SIGTERM, then SIGKILL if it is still there after ``grace_s``."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(grace_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)
