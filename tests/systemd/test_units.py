"""The systemd units as installed: systemd-analyze finds nothing to say, and the exposure stays low."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from detectord.daemon.cli.install import InstallError, Plan, install
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
    example = Path(__file__).resolve().parents[2] / "systemd" / "detector.toml.example"
    assert main(["--check-config", "--config", str(example)]) == 0
    assert "configuration OK" in capsys.readouterr().out


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
