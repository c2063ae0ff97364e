"""The checks the systemd container test runs inside its container, as a one-shot unit, under a real systemd.

Run as ``/opt/detectord/bin/python /opt/detectord-test/inside.py RESULTS``: it exercises the units as
``detectord install-systemd`` installs them, writes what it saw as JSON to RESULTS, and powers the
container off. Every check is recorded, pass or fail, so the test on the host can say which one failed.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any

TEST = Path("/opt/detectord-test")
DETECTORD = Path("/opt/detectord/bin/detectord")
VIDEO = TEST / "clip.mp4"


def run(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, check=False, timeout=timeout)


def systemctl(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return run("systemctl", *args, timeout=timeout)


def active(unit: str) -> bool:
    return systemctl("is-active", unit).stdout.strip() == "active"


def main_pid(unit: str) -> int:
    return int(systemctl("show", "-p", "MainPID", "--value", unit).stdout.strip() or 0)


def unit_pids(unit: str) -> list[int]:
    group = systemctl("show", "-p", "ControlGroup", "--value", unit).stdout.strip()
    if not group:
        return []
    pids: list[int] = []
    for procs in Path("/sys/fs/cgroup").glob(f"*{group}/cgroup.procs"):
        pids += [int(p) for p in procs.read_text().split()]
    return sorted(set(pids))


def segments() -> list[str]:
    return sorted(name for name in os.listdir("/dev/shm") if name.startswith("detectord-"))


class Messages:
    """What ``mosquitto_sub`` printed: topic and payload per line."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.process = subprocess.Popen(
            ["mosquitto_sub", "-h", "127.0.0.1", "-v", "-t", "detector/#", "-W", "600"],
            stdout=path.open("w"),
            stderr=subprocess.DEVNULL,
        )

    def lines(self, suffix: str) -> list[str]:
        return [
            line for line in self.path.read_text(errors="replace").splitlines() if line.split(" ")[0].endswith(suffix)
        ]

    def wait(self, condition: Any, timeout: float) -> bool:
        """Whether ``condition()`` came true within ``timeout`` seconds (asked every half second)."""
        for _ in range(max(1, round(timeout / 0.5))):
            if condition():
                return True
            time.sleep(0.5)
        return bool(condition())

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(10)


def checks(results: dict[str, Any]) -> None:
    def record(name: str, ok: bool, detail: str = "") -> None:
        results[name] = {"ok": bool(ok), "detail": detail[-2000:]}

    home_venv = str(TEST / "homevenv" / "bin" / "detectord")
    refused = run(str(DETECTORD), "install-systemd", "--executable", home_venv)
    record(
        "install refuses a venv whose interpreter ProtectHome=yes would hide",
        refused.returncode == 1 and len(refused.stderr.strip().splitlines()) == 1 and "hides" in refused.stderr,
        refused.stderr,
    )
    refused = run(str(DETECTORD), "install-systemd", "--executable", home_venv, "--allow-home")
    record(
        "--allow-home does not pretend to open a 0700 home",
        refused.returncode == 1 and "cannot reach" in refused.stderr and "drwx------" in refused.stderr,
        refused.stderr,
    )
    done = run(str(DETECTORD), "install-systemd")
    record("install-systemd succeeds with a venv from /usr/bin/python3 under /opt", done.returncode == 0, done.stderr)
    config = Path("/etc/detector/detector.toml")
    config.write_text(
        'camera = "ct"\n[source]\n'
        f'uri = "{VIDEO}"\nloop = true\n'
        '[model]\nname = "fasterrcnn_mobilenet_v3_large_320_fpn"\nweights = "random"\ndevice = "cpu"\n'
        'precision = "fp32"\n[mqtt]\nstats_interval_s = 1.0\n'
    )
    systemctl("start", "mosquitto")
    messages = Messages(Path("/tmp/messages.txt"))
    started = systemctl("start", "detector")
    record(
        "systemctl start detector returns with the unit active (READY)",
        started.returncode == 0 and active("detector"),
        started.stderr + systemctl("status", "detector", "--no-pager").stdout,
    )
    record(
        "mosquitto and detector-web are active",
        messages.wait(lambda: active("mosquitto") and active("detector-web"), 60),
        systemctl("status", "detector-web", "--no-pager").stdout,
    )

    def flowing() -> bool:
        return len(messages.lines("/detections")) >= 3 and "detector/ct/status online" in messages.lines("/status")

    record(
        "detections and status online arrive over MQTT",
        messages.wait(flowing, 120),
        "\n".join(messages.lines("/status")),
    )
    inference = next(
        (pid for pid in unit_pids("detector") if Path(f"/proc/{pid}/comm").read_text().startswith("detectord-infer")),
        0,
    )
    seen = len(messages.lines("/detections"))
    if inference:
        os.kill(inference, signal.SIGKILL)
    resumed = messages.wait(lambda: len(messages.lines("/detections")) >= seen + 3, 120)
    record(
        "kill -9 of a stage: the unit stays active and results resume",
        inference > 0 and resumed and active("detector"),
        f"inference pid {inference}",
    )
    before = main_pid("detector")
    os.kill(before, signal.SIGKILL)
    restarted = messages.wait(lambda: active("detector") and main_pid("detector") not in (0, before), 120)
    seen = len(messages.lines("/detections"))
    record(
        "kill -9 of the main process: systemd restarts the unit and publishing resumes",
        restarted and messages.wait(lambda: len(messages.lines("/detections")) >= seen + 3, 120),
        systemctl("status", "detector", "--no-pager").stdout,
    )
    journal = run("journalctl", "-u", "detector", "--no-pager", "-o", "cat").stdout
    record(
        "the restarted daemon reclaimed the segments its killed predecessor left",
        "reclaiming stale shared-memory segment detectord-ct-frames" in journal,
        journal,
    )
    stopped = systemctl("stop", "detector")
    time.sleep(1.0)
    status = messages.lines("/status")
    clean = status[-1:] == ["detector/ct/status offline"] and segments() == [] and unit_pids("detector") == []
    record(
        "systemctl stop detector: status offline, /dev/shm clean, no process of the unit left",
        stopped.returncode == 0 and clean,
        f"status {status[-3:]}, segments {segments()}, pids {unit_pids('detector')}",
    )
    journal = run("journalctl", "-u", "detector", "--no-pager", "-o", "cat").stdout
    record("journalctl -u detector has no traceback", "Traceback" not in journal and journal != "", journal)
    messages.close()


def main(results_path: str) -> None:
    results: dict[str, Any] = {}
    try:
        checks(results)
    except Exception:
        results["the checks ran to the end"] = {"ok": False, "detail": traceback.format_exc()}
    Path(results_path).write_text(json.dumps(results, indent=2))
    os.sync()
    subprocess.run(["systemctl", "poweroff", "--no-block"], check=False)


if __name__ == "__main__":
    main(sys.argv[1])
