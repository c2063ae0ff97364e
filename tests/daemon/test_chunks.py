"""How the archive job on Ray cuts videos into tasks and carries their detections to the join (no Ray needed)."""

from __future__ import annotations

from pathlib import Path, PurePath

import numpy as np

from detectord.daemon.archive.cluster import MIN_CHUNK_FRAMES, chunk_size, chunks_of, read_chunk, write_chunk
from detectord.daemon.archive.inputs import Video
from detectord.daemon.config import ArchiveConfig
from detectord.detection import Detections


def test_by_default_a_job_is_cut_into_about_four_tasks_per_cpu_never_into_tiny_chunks() -> None:
    assert chunk_size(None, total=800, cpus=2) == 100
    assert chunk_size(None, total=100, cpus=2) == MIN_CHUNK_FRAMES
    assert chunk_size(0, total=800, cpus=2) == 0, "0: a task per video"
    assert chunk_size(30, total=800, cpus=2) == 30


def test_a_video_is_cut_into_equal_chunks_the_last_reading_to_its_end(tmp_path: Path) -> None:
    config = ArchiveConfig(inputs=("x",), out_dir=tmp_path)
    video = Video(tmp_path / "a.mp4", PurePath("a.mp4"))
    chunks = chunks_of(config, video, index=3, frames=200, fps=10.0, size=65)
    assert [(c.start, c.stop) for c in chunks] == [(0, 50), (50, 100), (100, 150), (150, -1)]
    assert {c.index for c in chunks} == {3} and {c.declared for c in chunks} == {200}
    assert len({c.path for c in chunks}) == 4 and all(Path(c.path).parent.is_dir() for c in chunks)
    whole = chunks_of(config, video, index=0, frames=200, fps=10.0, size=0)
    assert [(c.start, c.stop) for c in whole] == [(0, -1)]
    first = chunks_of(ArchiveConfig(inputs=("x",), out_dir=tmp_path, max_frames=90), video, 0, 200, 10.0, 65)
    assert [(c.start, c.stop) for c in first] == [(0, 45), (45, 90)], "max_frames: exactly the first frames"


def test_a_chunks_detections_reach_the_join_as_the_model_gave_them(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    found = [
        Detections(rng.random((3, 4), np.float32) * 400, rng.random(3, np.float32), np.array([1, 3, 1], np.int32)),
        Detections.empty(),
        Detections(rng.random((1, 4), np.float32) * 400, rng.random(1, np.float32), np.array([1], np.int32)),
    ]
    write_chunk(tmp_path / "chunk.npz", found)
    back = read_chunk(tmp_path / "chunk.npz")
    assert len(back) == 3
    for want, got in zip(found, back, strict=True):
        for a, b in ((want.boxes, got.boxes), (want.scores, got.scores), (want.labels, got.labels)):
            assert a.dtype == b.dtype and np.array_equal(a, b), "unrounded, same types"
    write_chunk(tmp_path / "none.npz", [])
    assert read_chunk(tmp_path / "none.npz") == []
