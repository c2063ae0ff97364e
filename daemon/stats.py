"""Live pipeline statistics, as the retained ``<prefix>/<camera>/stats`` message carries them."""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import psutil

from detectord.ipc import RingStats

from .records import FrameResult

WINDOW = 300
"""Frames the latency percentiles are computed over."""

LATENCY_STAGES = ("capture_to_inference", "inference", "inference_to_publish", "end_to_end")


def percentiles_ms(values: deque[float] | list[float]) -> dict[str, float] | None:
    if not values:
        return None
    p50, p90, p99 = np.percentile(np.asarray(values) * 1000.0, [50, 90, 99])
    return {"p50_ms": round(float(p50), 2), "p90_ms": round(float(p90), 2), "p99_ms": round(float(p99), 2)}


@dataclass
class LatencyWindow:
    """Per-stage latencies of the last ``WINDOW`` published frames, from their own timestamps."""

    samples: dict[str, deque[float]] = field(
        default_factory=lambda: {name: deque(maxlen=WINDOW) for name in LATENCY_STAGES}
    )

    def add(self, result: FrameResult, published: float) -> None:
        self.samples["capture_to_inference"].append(result.inference_start - result.capture_ts)
        self.samples["inference"].append(result.inference_end - result.inference_start)
        self.samples["inference_to_publish"].append(published - result.inference_end)
        self.samples["end_to_end"].append(published - result.capture_ts)

    def summary(self) -> dict[str, Any]:
        return {name: percentiles_ms(values) for name, values in self.samples.items()}


@dataclass
class StageRates:
    """Frames per second of each stage between two stats messages, and its process's CPU and memory."""

    _last: dict[str, tuple[float, int]] = field(default_factory=dict)
    _processes: dict[int, psutil.Process] = field(default_factory=dict)

    def describe(self, stages: dict[str, dict[str, Any]]) -> dict[str, Any]:
        now = time.monotonic()
        out: dict[str, Any] = {}
        for name, info in stages.items():
            frames = int(info.get("frames", 0))
            then, before = self._last.get(name, (now, frames))
            fps = (frames - before) / (now - then) if now > then and frames >= before else 0.0
            self._last[name] = (now, frames)
            out[name] = {
                "fps": round(fps, 2),
                "frames": frames,
                "pid": info.get("pid"),
                "restarts": info.get("restarts", 0),
                "status": info.get("status", ""),
                **self._usage(info.get("pid")),
            }
        return out

    def _usage(self, pid: int | None) -> dict[str, Any]:
        if not pid:
            return {"cpu_percent": None, "rss_mb": None}
        try:
            process = self._processes.setdefault(pid, psutil.Process(pid))
            with process.oneshot():
                return {
                    "cpu_percent": round(process.cpu_percent(interval=None), 1),
                    "rss_mb": round(process.memory_info().rss / 2**20, 1),
                }
        except psutil.Error:
            self._processes.pop(pid, None)
            return {"cpu_percent": None, "rss_mb": None}


def drops(frames: RingStats, results: RingStats, unsent: int) -> dict[str, int]:
    """Frames lost along the way, by where they were lost."""
    return {
        "capture": frames.producer_drops,
        "inference": frames.readers[0].dropped,
        "publish": results.readers[0].dropped,
        "mqtt_unsent": unsent,
    }
