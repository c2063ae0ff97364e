"""The distribution installs the top-level folders under one namespace, ``detectord``."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_wheel_installs_folders_as_detectord_subpackages_and_nothing_generic(tmp_path: Path) -> None:
    """A normal (non-editable) install must not put ``ipc`` or ``daemon`` into site-packages."""
    source = tmp_path / "src"
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(".venv", ".git", "build", "*.egg-info", "__pycache__"))
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "--no-build-isolation", "-q", "-w", tmp_path],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("detectord-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    top = {name.split("/")[0] for name in names}
    stem = wheel.name.split("-py3")[0]
    assert top == {"detectord", f"{stem}.dist-info", f"{stem}.data"}
    assert f"{stem}.data/data/share/detectord/systemd/detector.service" in names
    assert "detectord/ipc/ring.py" in names
    assert not any(name.startswith("detectord/__init__") for name in names), "detectord stays a namespace"


def test_editable_install_imports_from_this_checkout() -> None:
    import detectord.ipc

    assert Path(detectord.ipc.__file__).resolve().parent == REPO / "ipc"
