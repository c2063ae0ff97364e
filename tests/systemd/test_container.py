"""The units as installed, under a real systemd: a throwaway container booted from this machine's own files.

An overlay whose lower layer is ``/`` and whose upper layer is on a tmpfs becomes the container's root,
so nothing the container does reaches this machine. Into the upper layer go: a virtual environment made
from Debian's /usr/bin/python3 under /opt (its third-party packages come from this project's venv,
bound read-only), detectord installed into it, a test video, a venv whose interpreter lives in a 0700
home (which install-systemd must refuse), a fresh machine-id and a one-shot unit that runs
``inside.py`` and powers the container off. ``systemd-nspawn -b`` boots it; the test reads the results
the one-shot unit wrote. Every path out (pass, failure, timeout) powers the container off, unmounts the
overlay and leaves no process of it behind.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from ..daemon.conftest import write_video

REPO = Path(__file__).resolve().parents[2]
BOOT_TIMEOUT_S = 900
DEPS = Path(sysconfig.get_paths()["purelib"])
"""This project's venv's site-packages: torch, gmqtt… bound read-only into the container as /opt/deps."""


def _why_not() -> str | None:
    if os.geteuid() != 0:
        return "needs root (mounts and systemd-nspawn)"
    if shutil.which("systemd-nspawn") is None:
        return "needs systemd-nspawn (Debian: systemd-container, which install.sh installs)"
    if not Path("/usr/bin/python3").is_file():
        return "needs /usr/bin/python3 to make a venv outside /root and /home"
    if "overlay" not in Path("/proc/filesystems").read_text():
        return "needs overlayfs"
    return None


class Container:
    def __init__(self, base: Path) -> None:
        self.base = base
        self.tmpfs = base / "tmpfs"
        self.root = base / "root"
        self.upper = self.tmpfs / "upper"
        self.mounts: list[Path] = []
        self.nspawn: subprocess.Popen[bytes] | None = None

    def mount(self) -> None:
        self.tmpfs.mkdir()
        self.root.mkdir()
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4g,mode=0755", "tmpfs", str(self.tmpfs)], check=True)
        self.mounts.append(self.tmpfs)
        self.upper.mkdir()
        (self.tmpfs / "work").mkdir()
        options = f"lowerdir=/,upperdir={self.upper},workdir={self.tmpfs / 'work'}"
        done = subprocess.run(["mount", "-t", "overlay", "overlay", "-o", options, str(self.root)], check=False)
        if done.returncode != 0:
            raise OSError("cannot mount an overlay of / here")
        self.mounts.append(self.root)

    def path(self, inside: str) -> Path:
        return self.root / inside.lstrip("/")

    def chroot(self, *args: str) -> None:
        """Run a command in the container's files before it boots (its paths are the container's)."""
        subprocess.run(["chroot", str(self.root), *args], check=True, capture_output=True, timeout=600)

    def prepare(self, video: Path) -> None:
        test = self.path("/opt/detectord-test")
        test.mkdir(parents=True)
        shutil.copy(video, test / "clip.mp4")
        shutil.copy(Path(__file__).with_name("inside.py"), test / "inside.py")
        source = self.path("/opt/detectord-src")
        shutil.copytree(
            REPO,
            source,
            ignore=shutil.ignore_patterns(".git", ".venv", "*.egg-info", "__pycache__", "build", ".*cache"),
        )
        deps = self.path("/opt/deps")
        deps.mkdir()
        subprocess.run(["mount", "--bind", "-o", "ro", str(DEPS), str(deps)], check=True)
        self.mounts.append(deps)
        self.chroot("/usr/bin/python3", "-m", "venv", "--without-pip", "/opt/detectord")
        site = next(self.path("/opt/detectord/lib").glob("python3*/site-packages"))
        (site / "deps.pth").write_text("/opt/deps\n")  # a plain path: the project venv's own .pth files stay out
        self.chroot("/opt/detectord/bin/python", "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                    "--no-index", "/opt/detectord-src")  # fmt: skip
        home = self.path("/root/private-python")
        home.mkdir(parents=True)
        home.chmod(0o700)
        self.path("/root").chmod(0o700)
        (home / "python3").symlink_to("/usr/bin/python3")
        bad = test / "homevenv" / "bin"
        bad.mkdir(parents=True)
        (bad / "python").symlink_to("/root/private-python/python3")
        (bad / "detectord").write_text("#!/opt/detectord-test/homevenv/bin/python\n")
        (bad / "detectord").chmod(0o755)
        self.path("/etc/machine-id").write_text(os.urandom(16).hex() + "\n")
        unit = self.path("/etc/systemd/system/detectord-ct.service")
        unit.write_text(
            "[Unit]\nDescription=detectord container test\nAfter=multi-user.target\n"
            "[Service]\nType=oneshot\n"
            "ExecStart=/opt/detectord/bin/python /opt/detectord-test/inside.py /opt/detectord-test/results.json\n"
            "[Install]\nWantedBy=multi-user.target\n"
        )
        wants = self.path("/etc/systemd/system/multi-user.target.wants")
        wants.mkdir(parents=True, exist_ok=True)
        (wants / "detectord-ct.service").symlink_to("/etc/systemd/system/detectord-ct.service")

    def boot(self, log: Path) -> None:
        self.nspawn = subprocess.Popen(
            ["systemd-nspawn", "-D", str(self.root), "--private-network", "--register=no", "--keep-unit",
             "--link-journal=no", "--bind-ro", f"{DEPS}:/opt/deps", "-b"],
            stdout=log.open("wb"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )  # fmt: skip

    def wait(self, timeout: float) -> bool:
        assert self.nspawn is not None
        try:
            self.nspawn.wait(timeout)
            return True
        except subprocess.TimeoutExpired:
            return False

    def _container_init(self) -> psutil.Process | None:
        if self.nspawn is None or self.nspawn.poll() is not None:
            return None
        children = psutil.Process(self.nspawn.pid).children()
        return children[0] if children else None

    def stop(self) -> None:
        """Power the container off (SIGRTMIN+4 to its PID 1), then whatever is left, then unmount."""
        if self.nspawn is not None and self.nspawn.poll() is None:
            init = self._container_init()
            if init is not None:
                init.send_signal(signal.SIGRTMIN + 4)
            if not self.wait(60):
                self.nspawn.terminate()  # nspawn forwards this as a poweroff request
                if not self.wait(30) and (init := self._container_init()) is not None:
                    for process in [init, *init.children(recursive=True)]:
                        process.kill()
                    self.wait(30)
        for mount in reversed(self.mounts):
            subprocess.run(["umount", "-l", str(mount)], check=False)
        self.mounts.clear()


@pytest.fixture
def container() -> Iterator[Container]:
    reason = _why_not()
    if reason:
        pytest.skip(reason)
    base = Path(tempfile.mkdtemp(prefix="detectord-ct-"))
    box = Container(base)
    try:
        try:
            box.mount()
        except OSError as exc:
            pytest.skip(str(exc))
        yield box
    finally:
        box.stop()
        shutil.rmtree(base, ignore_errors=True)


@pytest.mark.slow
def test_the_installed_units_under_a_real_systemd(container: Container, tmp_path: Path) -> None:
    video = write_video(tmp_path / "clip.mp4", frames=40)
    container.prepare(video.path)
    log = tmp_path / "nspawn.log"
    results_file = container.path("/opt/detectord-test/results.json")
    started = time.monotonic()
    container.boot(log)
    finished = container.wait(BOOT_TIMEOUT_S)
    assert finished, f"the container did not power off within {BOOT_TIMEOUT_S} s:\n{log.read_text()[-4000:]}"
    assert results_file.is_file(), f"the checks wrote no results:\n{log.read_text(errors='replace')[-4000:]}"
    results = json.loads(results_file.read_text())
    failed = {name: r["detail"] for name, r in results.items() if not r["ok"]}
    assert not failed, json.dumps(failed, indent=2)
    assert len(results) >= 9, sorted(results)
    sys.stderr.write(f"container test: {len(results)} checks passed in {time.monotonic() - started:.0f} s\n")
    sys.stderr.write("".join(f"  ok: {name}\n" for name in results))
