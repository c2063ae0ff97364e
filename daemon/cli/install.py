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
import stat
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


MOVE_IT = (
    "create the virtual environment from a system interpreter outside /root and /home (python3 -m venv "
    "/opt/detectord with /usr/bin/python3) and install detectord there"
)


def interpreter_of(executable: Path) -> Path | None:
    """The interpreter a console script runs: its ``#!`` line."""
    try:
        with executable.open("rb") as script:
            first = script.readline(4096)
    except OSError:
        return None
    if not first.startswith(b"#!"):
        return None
    words = first[2:].decode(errors="replace").split()
    return Path(words[0]) if words else None


def what_runs(plan: Plan) -> list[tuple[str, Path]]:
    """Every file the service needs, as systemd will find it: the executable, its interpreter (through every
    symlink: a venv's ``bin/python`` is usually a link to the interpreter it was made from), and this
    detectord's package."""
    needed = [("detectord", hop) for hop in link_chain(plan.executable)]
    interpreter = interpreter_of(plan.executable)
    if interpreter is not None:
        needed += [("its interpreter", hop) for hop in link_chain(interpreter)]
    needed.append(("the detectord package", Path(__file__).resolve().parents[2]))
    return needed


def link_chain(path: Path) -> list[Path]:
    """``path`` and every path its symbolic links lead through: the kernel must reach each of them."""
    chain = [path]
    while chain[-1].is_symlink() and len(chain) < 40:
        target = Path(os.readlink(chain[-1]))
        chain.append(target if target.is_absolute() else chain[-1].parent / target)
    return chain


def _others_may(path: Path, bit: int, user: pwd.struct_passwd | None) -> bool:
    """Whether the service user may use ``path`` for ``bit`` (R, W or X): as its owner, its group, or other."""
    mode = path.stat().st_mode
    if user is not None and path.stat().st_uid == user.pw_uid:
        return bool(mode & (bit << 6))
    groups = {user.pw_gid, *(g.gr_gid for g in grp.getgrall() if user.pw_name in g.gr_mem)} if user else set()
    if path.stat().st_gid in groups:
        return bool(mode & (bit << 3))
    return bool(mode & bit)


def check_reachable(what: str, path: Path, user: pwd.struct_passwd | None) -> None:
    """The service user can walk to ``path`` and read (and, for a file, run) it; InstallError naming the
    directory or file that stops it."""
    for directory in [*reversed(path.parents)] + ([path] if path.is_dir() else []):
        if not _others_may(directory, stat.S_IXOTH, user):
            raise InstallError(
                f"the service user {USER} cannot reach {what} {path}: {directory} is mode "
                f"{stat.filemode(directory.stat().st_mode)} (--allow-home cannot change that); {MOVE_IT}"
            )
    if path.is_file() and not _others_may(path, stat.S_IROTH, user):
        raise InstallError(f"the service user {USER} cannot read {what} {path}; {MOVE_IT}")


def _check(plan: Plan) -> None:
    if not plan.executable.is_file() or not os.access(plan.executable, os.X_OK):
        raise InstallError(f"{plan.executable} is not an executable detectord")
    for what, path in what_runs(plan):
        hidden = next((p for p in HIDDEN_BY_PROTECT_HOME if path.is_relative_to(p)), None)
        if hidden is not None and not plan.allow_home:
            raise InstallError(
                f"{what} {path} is under {hidden}, which the service's ProtectHome=yes hides: {MOVE_IT}, or pass "
                "--allow-home (ProtectHome=read-only) if the service user can read it there"
            )
    if not plan.live:
        return  # staging for a package: the paths are the target machine's business
    if os.geteuid() != 0:
        raise InstallError("installing systemd units needs root: run it with sudo")
    try:
        user: pwd.struct_passwd | None = pwd.getpwnam(USER)
    except KeyError:
        user = None  # created by the install, in groups of its own: it reaches what "other" reaches
    for what, path in what_runs(plan):
        check_reachable(what, path, user)


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
