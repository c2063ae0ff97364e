"""``detectord analyze … --ray``: the archive job on a real local Ray cluster of two nodes.

The cluster is started as a user would (``ray start``), every node on a
loopback address with usage statistics off, so nothing leaves the machine:
127.0.0.2 and 127.0.0.3 rather than 127.0.0.1, since Ray takes 127.0.0.1 for
"this host" and swaps in the machine's routable address.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import psutil
import pytest

from detectord.daemon.archive.cluster import INSTALL

from .conftest import write_bad_inputs, write_video

ray = pytest.importorskip("ray", reason="Ray is not installed here (pip install 'detectord[cluster]')")

DETECTORD = [sys.executable, "-m", "detectord.daemon", "analyze"]
HOG = ["--model", "hog-people"]
HEAD, SECOND = "127.0.0.2", "127.0.0.3"


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


def _ray_env(temp: Path) -> dict[str, str]:
    return {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_TMPDIR": str(temp)}


@pytest.fixture(scope="module")
def cluster() -> Iterator[str]:
    """A head and a second node, one CPU each, shared by this module's tests (starting and stopping one takes
    about 12 s); yields the address to pass to --ray. The test that kills the second node comes last."""
    temp = Path(f"/tmp/rt{os.getpid() % 10000}")  # Ray's socket paths must stay short
    shutil.rmtree(temp, ignore_errors=True)
    temp.mkdir()
    ray_bin = str(Path(sys.executable).with_name("ray"))
    port = _free_port(HEAD)
    env = _ray_env(temp)
    common = ["--num-cpus", "1", "--disable-usage-stats", "--temp-dir", str(temp)]
    head = [ray_bin, "start", "--head", "--node-ip-address", HEAD, "--port", str(port), "--include-dashboard=false",
            "--min-worker-port", "47000", "--max-worker-port", "47499", *common]  # fmt: skip
    second = [ray_bin, "start", "--address", f"{HEAD}:{port}", "--node-ip-address", SECOND,
              "--min-worker-port", "47500", "--max-worker-port", "47999", *common]  # fmt: skip
    try:
        for command in (head, second):
            done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, check=False)
            assert done.returncode == 0, done.stderr[-2000:]
        yield f"{HEAD}:{port}"
    finally:
        subprocess.run([ray_bin, "stop", "--force"], env=env, capture_output=True, timeout=120, check=False)
        shutil.rmtree(temp, ignore_errors=True)


def _run(args: list[str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*DETECTORD, *args], capture_output=True, text=True, check=False, timeout=timeout)


def _manifest(out_dir: Path) -> dict[str, dict[str, Any]]:
    return {entry["path"]: entry for entry in map(json.loads, (out_dir / "manifest.jsonl").read_text().splitlines())}


PEDESTRIANS = Path("/usr/share/doc/opencv-doc/examples/data/vtest.avi")


def _pedestrians(path: Path, frames: int) -> Path:
    """The first ``frames`` of OpenCV's pedestrian footage (install.sh installs it), written as the synthetic
    videos are (a keyframe every 12 frames): hog-people finds real people here, so there is a main person."""
    capture = cv2.VideoCapture(str(PEDESTRIANS))
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (384, 288))
    try:
        for _ in range(frames):
            ok, image = capture.read()
            assert ok, f"{PEDESTRIANS}: install.sh installs opencv-doc"
            writer.write(cv2.resize(image, (384, 288), interpolation=cv2.INTER_AREA))
    finally:
        capture.release()
        writer.release()
    return path


def _videos(folder: Path) -> list[Path]:
    folder.mkdir()
    synthetic = [write_video(folder / f"v{i}.mp4", frames=14 + 5 * i, width=320, height=240).path for i in range(2)]
    return [*synthetic, _pedestrians(folder / "people.mp4", 36)]


@pytest.mark.slow
def test_chunks_on_and_off_keyframes_join_into_the_single_pipelines_output(tmp_path: Path, cluster: str) -> None:
    videos = _videos(tmp_path / "in")
    local = _run([str(tmp_path / "in"), "--out-dir", str(tmp_path / "local"), *HOG])
    assert local.returncode == 0, local.stderr
    for chunk in ("12", "7"):  # on the writer's 12-frame keyframe spacing, and off it
        out = tmp_path / f"ray-{chunk}"
        done = _run([str(tmp_path / "in"), "--out-dir", str(out), "--ray", cluster, "--ray-node-ip", HEAD,
                     "--chunk-frames", chunk, *HOG])  # fmt: skip
        assert done.returncode == 0, done.stderr
        for video in videos:
            name = f"{video.name}.jsonl"
            assert (out / name).read_bytes() == (tmp_path / "local" / name).read_bytes(), (chunk, name)
        assert {entry["status"] for entry in _manifest(out).values()} == {"done"}
        people = [json.loads(line)["main_person"] for line in (out / "people.mp4.jsonl").read_text().splitlines()]
        assert sum(main is not None for main in people) > len(people) // 2, "the main person crosses the chunks"
        assert not [p for p in out.iterdir() if p.name.startswith(".")], "no chunk or staged file is left"
    again = _run([str(tmp_path / "in"), "--out-dir", str(tmp_path / "ray-7"), "--ray", cluster, "--ray-node-ip", HEAD,
                  *HOG])  # fmt: skip
    assert again.returncode == 0 and "3 skipped" in again.stdout, again.stdout + again.stderr


@pytest.mark.slow
def test_on_ray_bad_inputs_are_one_line_each_a_cut_video_is_partial_and_a_killed_driver_resumes(
    tmp_path: Path, cluster: str
) -> None:
    (tmp_path / "in").mkdir()
    good = [write_video(tmp_path / "in" / f"v{i}.mp4", frames=40, width=320, height=240).path for i in range(3)]
    cut, broken, empty = write_bad_inputs(tmp_path)
    out = tmp_path / "out"
    ray = ["--out-dir", str(out), "--ray", cluster, "--ray-node-ip", HEAD, *HOG]
    driver = subprocess.Popen([*DETECTORD, str(tmp_path / "in"), *ray], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not _done_yet(out):
        time.sleep(0.05)
    driver.kill()  # SIGKILL, once a first video is done: the others are under way
    driver.wait(30)
    assert 0 < sum(entry["status"] == "done" for entry in _manifest(out).values()) < 3, "killed mid-run"

    done = _run([str(tmp_path / "in"), str(empty), str(tmp_path / "nowhere" / "*.mp4"), *ray])
    assert done.returncode == 1, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("detectord: ")]
    assert any("empty: a directory without videos" in line for line in errors), errors
    assert any("nowhere/*.mp4: matches no video" in line for line in errors), errors
    assert "Traceback" not in done.stderr
    entries = _manifest(out)
    assert [entries[str(video)]["status"] for video in good] == ["done"] * 3
    assert entries[str(cut)]["status"] == "partial" and 0 < entries[str(cut)]["frames_written"] < 60
    assert entries[str(broken)]["status"] == "failed" and entries[str(broken)]["reason"]
    for video in good:
        lines = [json.loads(line) for line in (out / f"{video.name}.jsonl").read_text().splitlines()]
        assert [line["frame"] for line in lines] == list(range(40)), "every frame once, in order"
    single = _run([str(cut), "--out", str(tmp_path / "cut.jsonl"), "--allow-partial", *HOG])
    assert single.returncode == 0, single.stderr
    assert (out / "cut.avi.jsonl").read_bytes() == (tmp_path / "cut.jsonl").read_bytes()
    assert not [p for p in out.iterdir() if p.name.startswith(".")], "no chunk or staged file is left"


@pytest.mark.slow
def test_a_worker_and_a_whole_node_killed_mid_chunk_leave_every_frame_written_once(
    tmp_path: Path, cluster: str
) -> None:
    (tmp_path / "in").mkdir()
    video = write_video(tmp_path / "in" / "long.mp4", frames=120, width=320, height=240).path
    local = _run([str(video), "--out", str(tmp_path / "single.jsonl"), *HOG])
    assert local.returncode == 0, local.stderr
    out = tmp_path / "out"
    args = [str(video.parent), "--out-dir", str(out), "--ray", cluster, "--ray-node-ip", HEAD, "--chunk-frames", "20",
            "-v", *HOG]  # fmt: skip
    driver = subprocess.Popen([*DETECTORD, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        node = _kill_a_chunk_under_way(_raylet(SECOND), with_node=True)
        worker = _kill_a_chunk_under_way(_raylet(HEAD), with_node=False)
        _, stderr = driver.communicate(timeout=300)
    finally:
        driver.kill()
    assert node and worker, "a chunk was under way on each node when it was killed"
    assert driver.returncode == 0, stderr
    assert (out / "long.mp4.jsonl").read_bytes() == (tmp_path / "single.jsonl").read_bytes()
    assert _manifest(out)[str(video)]["frames_written"] == 120
    assert _manifest(out)[str(video)]["status"] == "done"
    ran = re.search(r"(\d+) tasks on (\d+) Ray workers; the model loaded (\d+) times", stderr)
    assert ran and ran[2] == ran[3], "the model is loaded once per worker process, not per task"


def _done_yet(out: Path) -> bool:
    try:
        return '"status":"done"' in (out / "manifest.jsonl").read_text()
    except OSError:
        return False


def _raylet(ip: str) -> psutil.Process:
    """The raylet of the node at ``ip``: its workers are its children."""
    for process in psutil.process_iter(["cmdline"]):
        command = process.info["cmdline"] or []
        if command and command[0].endswith("raylet") and f"--node_ip_address={ip}" in command:
            return process
    raise AssertionError(f"no raylet for {ip}")


def _kill_a_chunk_under_way(raylet: psutil.Process, with_node: bool) -> bool:
    """SIGKILL a worker of ``raylet`` while it analyses a chunk (and with it the raylet and all its children: the
    whole node)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        children = raylet.children(recursive=True)
        for child in children:
            try:
                busy = child.cmdline()[:1] == ["ray::analyze_chunk"]
            except psutil.Error:
                continue
            if busy:
                for victim in [child, *([raylet, *children] if with_node else [])]:
                    with contextlib.suppress(psutil.Error):
                        victim.kill()
                return True
        time.sleep(0.05)
    return False


def test_without_ray_installed_ray_is_one_line_saying_how_to_install_it(tmp_path: Path) -> None:
    video = write_video(tmp_path / "v.mp4", frames=2, width=320, height=240).path
    shadow = tmp_path / "shadow" / "ray"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('no ray here')\n")
    env = {**os.environ, "PYTHONPATH": f"{tmp_path / 'shadow'}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    done = subprocess.run(
        [*DETECTORD, str(video), "--out-dir", str(tmp_path / "o"), "--ray", "auto", *HOG],
        capture_output=True, text=True, check=False, timeout=60, env=env,
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.strip() == f"detectord: error: {INSTALL}"
