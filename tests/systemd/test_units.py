"""The systemd units as installed: systemd-analyze finds nothing to say, and the exposure stays low."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from detectord.daemon.cli.install import InstallError, Plan, install, interpreter_of, what_runs
from detectord.daemon.cli.install import _check as check
from detectord.daemon.cli.main import main

EXECUTABLE = Path(sys.prefix) / "bin" / "detectord"
analyze = pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="needs systemd-analyze")


@pytest.fixture
def staged(tmp_path: Path) -> Path:
    """``detectord install-systemd --root`` into a staging directory."""
    assert main(["install-systemd", "--root", str(tmp_path), "--executable", str(EXECUTABLE), "--allow-home"]) == 0
    return tmp_path / "etc" / "systemd" / "system"


@analyze
def test_systemd_analyze_verify_has_nothing_to_say(staged: Path) -> None:
    """verify exits 0 even on unknown keys, so its output must be empty too."""
    units = [str(staged / unit) for unit in ("detector.service", "detector@.service", "detector-web.service")]
    done = subprocess.run(
        ["systemd-analyze", "verify", "--recursive-errors=no", *units], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "" and done.stderr.strip() == "", done.stdout + done.stderr


@analyze
@pytest.mark.parametrize("unit", ["detector.service", "detector@.service", "detector-web.service"])
def test_the_daemon_units_exposure_is_at_most_4(staged: Path, unit: str) -> None:
    path = staged / unit
    if "@" in unit:
        instance = staged / "detector@front.service"
        instance.write_text(path.read_text().replace("%i", "front"))
        path = instance
    done = subprocess.run(
        ["systemd-analyze", "security", "--offline=yes", str(path)], capture_output=True, text=True, check=False
    )
    level = re.search(r"Overall exposure level for \S+: ([0-9.]+)", done.stdout)
    assert level is not None, done.stdout + done.stderr
    assert float(level.group(1)) <= 4.0, done.stdout


def test_install_writes_units_that_run_this_detectord_and_keeps_an_existing_config(staged: Path) -> None:
    unit = (staged / "detector.service").read_text()
    assert f"ExecStart={EXECUTABLE} --config /etc/detector/detector.toml" in unit
    assert "Wants=network-online.target mosquitto.service detector-web.service" in unit
    web = (staged / "detector-web.service").read_text()
    assert f"ExecStart={EXECUTABLE.with_name('detector-web')} --host 127.0.0.1 --port 8080" in web
    assert "ProtectHome=read-only" in unit, "--allow-home"
    config = staged.parents[1] / "detector" / "detector.toml"
    assert config.stat().st_mode & 0o777 == 0o640
    config.write_text('camera = "mine"\n')
    assert main(["install-systemd", "--root", str(staged.parents[2]), "--executable", str(EXECUTABLE),
                 "--allow-home"]) == 0  # fmt: skip
    assert config.read_text() == 'camera = "mine"\n'


def test_the_example_configuration_is_valid(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Every setting of the example is valid; its source is the user's camera, which ``--check-config`` looks
    for as the daemon would (/dev/video0 is on no test machine), so a video file stands in for it here."""
    example = Path(__file__).resolve().parents[2] / "systemd" / "detector.toml.example"
    video = tmp_path / "camera.mp4"
    video.write_bytes(b"")
    assert main(["--check-config", "--config", str(example), "--source", str(video)]) == 0
    assert "configuration OK" in capsys.readouterr().out
    assert main(["--check-config", "--config", str(example)]) == (0 if Path("/dev/video0").exists() else 2)


def test_an_executable_that_protecthome_would_hide_is_refused(tmp_path: Path) -> None:
    home_exe = Path("/home/someone/venv/bin/detectord")
    plan = Plan(root=tmp_path, executable=home_exe, allow_home=False, enable=False)
    with pytest.raises(InstallError, match="not an executable"):
        install(plan)
    fake = tmp_path / "detectord"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    plan = Plan(root=tmp_path, executable=fake, allow_home=False, enable=False)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("detectord.daemon.cli.install.HIDDEN_BY_PROTECT_HOME", (tmp_path,))
        with pytest.raises(InstallError, match="ProtectHome=yes hides"):
            install(plan)


@pytest.fixture
def venv_elsewhere() -> Iterator[tuple[Path, Path]]:
    """A venv that others may enter, whose interpreter links into a directory only its owner may enter.

    That is what a venv made from pyenv's Python looks like (its ``bin/python`` is a link into
    ~/.pyenv, under a 0700 home), built here in throwaway directories.
    """
    outside = Path(tempfile.mkdtemp(prefix="detectord-venv-"))
    private = Path(tempfile.mkdtemp(prefix="detectord-home-"))
    try:
        outside.chmod(0o755)
        private.chmod(0o700)
        (private / "python3").symlink_to(sys.executable)
        (outside / "bin").mkdir(mode=0o755)
        (outside / "bin" / "python").symlink_to(private / "python3")
        detectord = outside / "bin" / "detectord"
        detectord.write_text(f"#!{outside / 'bin' / 'python'}\nimport sys\n")
        detectord.chmod(0o755)
        yield detectord, private
    finally:
        shutil.rmtree(outside)
        shutil.rmtree(private)


def test_an_interpreter_the_service_user_cannot_reach_is_refused_at_install(
    venv_elsewhere: tuple[Path, Path],
) -> None:
    """--allow-home does not make a 0700 directory enterable: the install says which path and what to do."""
    if os.geteuid() != 0:
        pytest.skip("a live install's checks run as root")
    detectord, private = venv_elsewhere
    plan = Plan(root=Path("/"), executable=detectord, allow_home=True, enable=False)
    with pytest.raises(InstallError) as refused:
        check(plan)
    message = str(refused.value)
    assert f"{private} is mode drwx------" in message and "its interpreter" in message
    assert "python3 -m venv /opt/detectord" in message and "\n" not in message
    assert interpreter_of(detectord) == detectord.parent / "python"


def test_the_files_the_service_runs_include_the_interpreter_behind_every_link(
    venv_elsewhere: tuple[Path, Path],
) -> None:
    detectord, _ = venv_elsewhere
    plan = Plan(root=Path("/x"), executable=detectord, allow_home=False, enable=False)
    paths = [path for _, path in what_runs(plan)]
    assert detectord.parent / "python" in paths and Path(sys.executable).resolve() in paths
