"""A camera's stats message, assembled in the publisher: the supervisor's snapshot plus what only it knows.

The supervisor measures stages, rings and processes (``telemetry.PipelineStats``);
the publisher adds the latencies of the frames it published (``LatencyWindow``),
its connection and the device, and builds the contract's payload (``camera_stats``).
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from detectord.contract import build_stats
from detectord.daemon.results import FrameResult, LoadedModel
from detectord.detection.devices import cpu_description

from .telemetry import PipelineStats

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
    """Per-stage latencies of the last ``WINDOW`` published frames, from their timestamps."""

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


def device_description(model: LoadedModel | None) -> dict[str, Any]:
    """The stats' ``device``: the CPU and its flags, and what inference loaded (once it has)."""
    cpu, flags = cpu_description()
    device: dict[str, Any] = {"cpu": cpu, "cpu_flags": list(flags)}
    if model is not None:
        info = model.info
        device |= {"name": info.name, "precision": info.precision, "device": info.device, "reason": info.reason}
    return device


def camera_stats(
    camera: str,
    snapshot: PipelineStats,
    latency: LatencyWindow,
    mqtt: dict[str, Any],
    unsent: int,
    events_dropped: int,
    model: LoadedModel | None,
) -> dict[str, Any]:
    """The ``stats`` payload of ``camera``: ``snapshot`` from the supervisor, the rest from the publisher
    (``unsent`` results, and ``events_dropped`` past the outbox's bound while the broker was away)."""
    return build_stats(
        camera=camera,
        host=snapshot.host,
        ts=time.time(),
        uptime_s=snapshot.uptime_s,
        source_status=snapshot.source_status,
        stages=snapshot.stages,
        drops={**snapshot.drops, "mqtt_unsent": unsent, "events": events_dropped},
        latency=latency.summary(),
        mqtt=mqtt,
        supervisor=snapshot.supervisor,
        device=device_description(model),
        gating=snapshot.gating,
    )
