"""``/metrics``: what every camera's daemon says of itself, in Prometheus' exposition format.

The viewer already hears every camera's retained ``stats`` (and status,
count, occupancy, events); at each scrape this collector turns what the hub
holds into metric families, with ``prometheus_client`` writing the format.
Names follow Prometheus' conventions: a ``detectord_`` prefix, ``_total``
for counters (they count since the camera's daemon started, and reset when
it restarts, as Prometheus expects), base units (seconds, bytes).
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from .hub import Hub

QUANTILES = {"p50_ms": "0.5", "p90_ms": "0.9", "p99_ms": "0.99"}


class HubCollector(Collector):
    """Every camera the hub knows, as metrics, read at scrape time."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("detectord_up", "1 while the camera's daemon says online, else 0.", labels=["camera"])
        fps = GaugeMetricFamily(
            "detectord_stage_fps", "Frames per second a stage handles for the camera.", labels=["camera", "stage"]
        )
        frames = CounterMetricFamily(
            "detectord_stage_frames", "Frames a stage handled for the camera.", labels=["camera", "stage"]
        )
        dropped = CounterMetricFamily(
            "detectord_dropped_frames",
            "Frames (or messages) lost, by where: capture, inference, publish, mqtt_unsent, events.",
            labels=["camera", "stage"],
        )
        latency = GaugeMetricFamily(
            "detectord_latency_seconds",
            "Latency over the last 300 published frames, by part (end_to_end: capture to publish).",
            labels=["camera", "stage", "quantile"],
        )
        cpu = GaugeMetricFamily(
            "detectord_process_cpu_percent", "CPU of a stage's process (100: one core).", labels=["camera", "stage"]
        )
        memory = GaugeMetricFamily(
            "detectord_process_memory_bytes", "Memory of a stage's process.", labels=["camera", "stage", "kind"]
        )
        people = GaugeMetricFamily("detectord_people", "People there now (events going on).", labels=["camera"])
        occupancy = GaugeMetricFamily("detectord_occupancy", "1 while occupied, else 0.", labels=["camera"])
        started = CounterMetricFamily(
            "detectord_events_started", "Person events started, since this viewer started.", labels=["camera"]
        )
        model_frames = CounterMetricFamily(
            "detectord_model_frames", "Frames the model ran on (motion gating).", labels=["camera"]
        )
        gated_frames = CounterMetricFamily(
            "detectord_gated_frames", "Newest frames the inference stage looked at (motion gating).", labels=["camera"]
        )
        saved = CounterMetricFamily(
            "detectord_model_seconds_saved",
            "Model time the frames it did not run on would have cost.",
            labels=["camera"],
        )
        area = GaugeMetricFamily(
            "detectord_model_area",
            "Mean share of the picture a model run looked at (1: whole frames; less: regions).",
            labels=["camera"],
        )
        for name, camera in sorted(self.hub.cameras.items()):
            up.add_metric([name], 1.0 if camera.status == "online" else 0.0)
            scene = camera.scene
            if isinstance(scene.get("count"), int):
                people.add_metric([name], float(scene["count"]))
            if isinstance(scene.get("occupancy"), bool):
                occupancy.add_metric([name], float(scene["occupancy"]))
            started.add_metric([name], float(camera.events_started))
            stats = camera.stats
            if stats is None:
                continue
            for stage, values in stats["stages"].items():
                fps.add_metric([name, stage], values["fps"])
                frames.add_metric([name, stage], float(values["frames"]))
                if values["cpu_percent"] is not None:
                    cpu.add_metric([name, stage], values["cpu_percent"])
                for kind in ("rss", "uss"):
                    value = values[f"{kind}_mb"]  # type: ignore[literal-required]
                    if value is not None:
                        memory.add_metric([name, stage, kind], value * 2**20)
            for stage, count in stats["drops"].items():
                dropped.add_metric([name, stage], float(count))
            for stage, percentiles in stats["latency"].items():
                for key, quantile in QUANTILES.items():
                    if percentiles is not None:
                        latency.add_metric([name, stage, quantile], percentiles[key] / 1000.0)
            gating = stats["gating"]
            if gating is not None:
                model_frames.add_metric([name], float(gating["model_frames"]))
                gated_frames.add_metric([name], float(gating["frames"]))
                saved.add_metric([name], gating["model_s_saved"])
                if gating["model_area"] is not None:
                    area.add_metric([name], gating["model_area"])
        yield from (up, fps, frames, dropped, latency, cpu, memory, people, occupancy, started)
        yield from (model_frames, gated_frames, saved, area)


def registry_for(hub: Hub) -> CollectorRegistry:
    """A registry of this hub's cameras only (no process metrics of the viewer itself)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(HubCollector(hub))
    return registry
