"""The publisher's latency window: per-stage latencies of the last published frames, from their timestamps."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np

from detectord.daemon.results import FrameResult

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
    samples: dict[str, deque[float]] = field(
        default_factory=lambda: {name: deque(maxlen=WINDOW) for name in LATENCY_STAGES}
    )

    def add(self, result: FrameResult, published: float) -> None:
        self.samples["capture_to_inference"].append(result.inference_start - result.capture_ts)
        self.samples["inference"].append(result.inference_end - result.inference_start)
        self.samples["inference_to_publish"].append(published - result.inference_end)
        self.samples["end_to_end"].append(published - result.capture_ts)

    def summary(self) -> dict[str, dict[str, float] | None]:
        return {name: percentiles_ms(values) for name, values in self.samples.items()}
