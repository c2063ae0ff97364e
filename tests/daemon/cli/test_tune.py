"""``detectord tune``: measures on the user's footage, writes settings the daemon accepts, and leaves no
half-written file when interrupted."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.synthetic_clip import write_clip

REPO = Path(__file__).resolve().parents[3]


def detectord(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "detectord.daemon", *args], cwd=REPO, capture_output=True, text=True, check=False
    )


def test_tune_writes_model_settings_that_the_daemons_check_config_accepts(tmp_path: Path) -> None:
    clip = tmp_path / "clip.mp4"
    write_clip(clip, frames=12, width=640, height=360, fps=25)
    out = tmp_path / "tune.toml"
    done = detectord(
        "tune", str(clip), "--frames", "2", "--weights", "random", "--schemes", "fp32-fused", "--out", str(out)
    )
    assert done.returncode == 0, done.stderr
    assert "| fp32 |" in done.stdout and "| fp32-fused |" in done.stdout
    assert "feature error <= 2% (untrained weights: fidelity is not meaningful)" in done.stdout
    text = out.read_text()
    chosen = next(line for line in text.splitlines() if line.startswith("precision = "))
    assert chosen in ('precision = "fp32"', 'precision = "fp32-fused"'), text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4", "tune.toml"], "nothing else is left"
    check = detectord("--config", str(out), "--source", str(clip), "--check-config")
    assert check.returncode == 0, check.stderr
    assert chosen.split('"')[1] in check.stdout


def test_ctrl_c_during_tune_leaves_no_file_behind(tmp_path: Path) -> None:
    clip = tmp_path / "clip.mp4"
    write_clip(clip, frames=40, width=640, height=360, fps=25)
    out = tmp_path / "tune.toml"
    tune = subprocess.Popen(
        [sys.executable, "-m", "detectord.daemon", "tune", str(clip), "--frames", "8", "--weights", "random",
         "--schemes", "int8-static", "--out", str(out)],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert tune.stderr is not None
    assert tune.stderr.readline().startswith("calibrating int8-static")
    time.sleep(3)
    tune.send_signal(signal.SIGINT)
    _, stderr = tune.communicate(timeout=120)
    assert tune.returncode == 130, stderr
    assert "Traceback" not in stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4"], "no settings, no artifact, no partial file"


def test_a_ctrl_c_that_a_library_swallowed_still_stops_tune_at_its_next_step() -> None:
    from detectord.daemon.cli.tune import _CtrlC

    ctrl_c = _CtrlC()
    ctrl_c.check()
    with contextlib.suppress(KeyboardInterrupt):  # what a library's bare ``except:`` does
        ctrl_c(signal.SIGINT, None)
    with pytest.raises(KeyboardInterrupt):
        ctrl_c.check()


def test_tune_refuses_a_detector_with_one_precision_in_one_line() -> None:
    done = detectord("tune", "clip.mp4", "--model", "hog-people")
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1
    assert "hog-people runs in one precision only" in done.stderr


def test_tune_of_ssdlite_people_decides_by_real_fidelity(tmp_path: Path) -> None:
    """A trained network: the recommendation rests on the fidelity of real detections, not feature error."""
    out = tmp_path / "tune.toml"
    video = "/usr/share/doc/opencv-doc/examples/data/vtest.avi"
    done = detectord(
        "tune", video, "--model", "ssdlite-people", "--frames", "4", "--schemes", "fp32-fused", "--out", str(out)
    )
    assert done.returncode == 0, done.stderr
    assert "the fastest scheme with fidelity mAP >= 0.95" in done.stdout and "untrained" not in done.stdout
    assert "| fp32-fused |" in done.stdout
    assert "people found |" in done.stdout
    assert 'precision = "fp32' in out.read_text()
