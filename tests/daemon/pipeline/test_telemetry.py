"""Stage rates between stats snapshots, and where a camera's frames were dropped."""

from __future__ import annotations

from typing import Any

import pytest

from detectord.daemon.pipeline import telemetry
from detectord.daemon.pipeline.telemetry import NO_USAGE, StageRates, drops
from detectord.ipc.handle import ReaderStats, RingStats


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """telemetry's monotonic clock, set by the test."""
    now = [100.0]
    monkeypatch.setattr(telemetry.time, "monotonic", lambda: now[0])
    return now


def _info(frames: int, pid: int | None = 7) -> dict[str, Any]:
    return {"frames": frames, "pid": pid, "restarts": 0, "status": "streaming"}


def test_the_rate_is_the_frames_done_since_the_last_snapshot_over_the_time_between(clock: list[float]) -> None:
    rates = StageRates()
    first = rates.describe({"capture": _info(10)}, {})
    assert first["capture"]["fps"] == 0.0, "nothing to compare the first snapshot with"
    clock[0] += 2.0
    second = rates.describe({"capture": _info(30)}, {7: {"cpu_percent": 12.5, "rss_mb": 50.0, "uss_mb": 40.0}})
    assert second["capture"] == {
        "fps": 10.0, "frames": 30, "pid": 7, "restarts": 0, "status": "streaming",
        "cpu_percent": 12.5, "rss_mb": 50.0, "uss_mb": 40.0,
    }  # fmt: skip


def test_a_restarted_stage_whose_counter_went_back_reports_zero_not_a_negative_rate(clock: list[float]) -> None:
    rates = StageRates()
    rates.describe({"inference": _info(500)}, {})
    clock[0] += 1.0
    assert rates.describe({"inference": _info(3)}, {})["inference"]["fps"] == 0.0
    clock[0] += 1.0
    assert rates.describe({"inference": _info(8)}, {})["inference"]["fps"] == 5.0


def test_a_stage_without_a_process_has_no_usage(clock: list[float]) -> None:
    described = StageRates().describe({"publish": _info(0, pid=None)}, {})
    assert {key: described["publish"][key] for key in NO_USAGE} == NO_USAGE


def _ring(producer_drops: int, dropped: list[int]) -> RingStats:
    readers = tuple(ReaderStats(delivered=0, dropped=d, lag=0, pinned=0) for d in dropped)
    return RingStats(
        published=100, producer_drops=producer_drops, producer_waits=0, producer_wait_s=0.0, finished=False,
        readers=readers,
    )  # fmt: skip


def test_drops_are_counted_where_they_happen_summed_over_the_workers() -> None:
    frames = _ring(3, [2, 5, 1])  # workers 0 and 1, then the publisher's hand-over reader
    results = [_ring(0, [4]), _ring(0, [6])]
    assert drops(frames, results, workers=2) == {"capture": 3, "inference": 7, "publish": 10}
