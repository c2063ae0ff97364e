"""``detectord install-systemd``: the units, the service user and the configuration, in one command.

After it, ``systemctl start detector`` brings up the broker, the daemon and
the viewer (the unit wants mosquitto.service and detector-web.service); ``systemctl start detector@front`` runs
another camera from /etc/detector/front.toml.
"""

from __future__ import annotations

import grp
import logging
import os
import pwd
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

USER = "detector"
UNITS = ("detector.service", "detector@.service", "detector-web.service")
CONFIG_EXAMPLE = "detector.toml.example"
HIDDEN_BY_PROTECT_HOME = (Path("/home"), Path("/root"), Path("/run/user"))


class InstallError(RuntimeError):
    """The installation cannot go ahead; the message says what to do."""


def templates_dir() -> Path:
    """The shipped systemd/ folder: installed under share/, or beside the package in a checkout."""
    for candidate in (
        Path(sys.prefix) / "share" / "detectord" / "systemd",
        Path(__file__).resolve().parents[2] / "systemd",
    ):
        if (candidate / UNITS[0]).is_file():
            return candidate
    raise InstallError("cannot find detectord's systemd unit templates (share/detectord/systemd)")


def default_executable() -> Path:
    return Path(sys.prefix) / "bin" / "detectord"


@dataclass(frozen=True)
class Plan:
    root: Path
    executable: Path
    allow_home: bool
    enable: bool

    @property
    def unit_dir(self) -> Path:
        return self.root / "etc" / "systemd" / "system"

    @property
    def config_dir(self) -> Path:
        return self.root / "etc" / "detector"

    @property
    def live(self) -> bool:
        """Installing into this system (not into a staging root): users, ownership, systemctl."""
        return self.root == Path("/")


def render(template: str, plan: Plan) -> str:
    text = template.replace("@DETECTORD@", str(plan.executable))
    text = text.replace("@DETECTOR_WEB@", str(plan.executable.with_name("detector-web")))
    if plan.allow_home:
        text = text.replace("ProtectHome=yes", "ProtectHome=read-only")
    return text


def _check(plan: Plan) -> None:
    if not plan.executable.is_file() or not os.access(plan.executable, os.X_OK):
        raise InstallError(f"{plan.executable} is not an executable detectord")
    hidden = next((p for p in HIDDEN_BY_PROTECT_HOME if plan.executable.is_relative_to(p)), None)
    if hidden is not None and not plan.allow_home:
        raise InstallError(
            f"{plan.executable} is under {hidden}, which the service's ProtectHome=yes hides: install detectord "
            "under /opt (python3 -m venv /opt/detectord, then install it there) or pass --allow-home "
            "(ProtectHome=read-only)"
        )
    if plan.live and os.geteuid() != 0:
        raise InstallError("installing systemd units needs root: run it with sudo")


def _ensure_user() -> None:
    try:
        pwd.getpwnam(USER)
        return
    except KeyError:
        pass
    groups = ["--groups", "video"] if _group_exists("video") else []
    subprocess.run(
        ["useradd", "--system", "--user-group", "--no-create-home", "--home-dir", "/var/lib/detectord",
         "--shell", "/usr/sbin/nologin", *groups, USER],
        check=True,
    )  # fmt: skip
    log.info("created the system user %s", USER)


def _group_exists(name: str) -> bool:
    try:
        grp.getgrnam(name)
    except KeyError:
        return False
    return True


def install(plan: Plan) -> list[Path]:
    """Write the units and (if absent) the configuration; returns what was written."""
    _check(plan)
    source = templates_dir()
    if plan.live:
        _ensure_user()
    written = []
    plan.unit_dir.mkdir(parents=True, exist_ok=True)
    for unit in UNITS:
        target = plan.unit_dir / unit
        target.write_text(render((source / unit).read_text(), plan))
        target.chmod(0o644)
        written.append(target)
    plan.config_dir.mkdir(parents=True, exist_ok=True)
    config = plan.config_dir / "detector.toml"
    if not config.exists():
        shutil.copyfile(source / CONFIG_EXAMPLE, config)
        config.chmod(0o640)  # it may hold the MQTT password
        if plan.live:
            os.chown(config, 0, grp.getgrnam(USER).gr_gid)
        written.append(config)
    if plan.live:
        subprocess.run(["systemctl", "daemon-reload"], check=True)
        if plan.enable:
            subprocess.run(
                ["systemctl", "enable", "mosquitto.service", "detector.service", "detector-web.service"], check=True
            )
    return written
