"""Per-stage latency of the live daemon, measured as a client sees it.

    python -m bench.latency --video PATH [--frames 60] [--weights random] [--json PATH] [-- DAEMON FLAGS…]

Starts a private Mosquitto, runs the real ``detectord`` on the video (paced at
the video's own frame rate, looping, like a camera), subscribes like any
client, and for ``--frames`` published frames (after ``--warmup`` more) takes
every timestamp from the payloads: capture -> inference start (waiting for
the model), inference, inference end -> publish (JPEG encoding, JSON,
handing to MQTT), publish -> subscriber (the broker and the network), and end
to end, from capture to the subscriber. Frames the camera delivered that
were never published (newest frame wins while the model is busy) are counted
from the gaps in frame ids.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import gmqtt
import numpy as np

from bench.results_io import machine_line, report
from detectord.daemon.cli.mosquitto import Mosquitto
from detectord.detection.devices import describe_machine

CAMERA = "bench"
STAGES = ("capture_to_inference", "inference", "inference_to_publish", "publish_to_subscriber")


async def collect(
    port: int, count: int, warmup: int, timeout: float
) -> tuple[list[tuple[dict[str, Any], float]], dict[str, Any]]:
    """(detections payload, receive time) of ``count`` messages after ``warmup`` ones, and the last stats."""
    received: list[tuple[dict[str, Any], float]] = []
    stats: dict[str, Any] = {}
    done = asyncio.Event()

    def on_message(client: gmqtt.Client, topic: str, payload: bytes, qos: int, properties: Any) -> int:
        at = time.time()
        if topic.endswith("/detections"):
            received.append((json.loads(payload), at))
        elif topic.endswith("/stats") and len(received) >= warmup:
            stats.update(json.loads(payload))
        if len(received) >= warmup + count and stats:
            done.set()
        return 0

    client = gmqtt.Client(f"latency-bench-{os.getpid()}")
    client.on_message = on_message
    client.on_connect = lambda c, *_: [
        c.subscribe(f"detector/{CAMERA}/{kind}", qos=0) for kind in ("detections", "stats")
    ]
    await client.connect("127.0.0.1", port)
    try:
        await asyncio.wait_for(done.wait(), timeout)
    finally:
        await client.disconnect()
    return received[warmup : warmup + count], stats


def memory(stats: dict[str, Any]) -> dict[str, float | None]:
    """Each process's unique memory (USS, MB), from the daemon's own stats: what it alone holds."""
    processes = {name: stage.get("uss_mb") for name, stage in stats.get("stages", {}).items()}
    return {"supervisor": stats.get("supervisor", {}).get("uss_mb"), **processes}


def _percentiles(values_s: list[float]) -> dict[str, float]:
    p50, p90, p99 = np.percentile(np.asarray(values_s) * 1000.0, [50, 90, 99])
    return {"p50_ms": float(p50), "p90_ms": float(p90), "p99_ms": float(p99)}


def summarise(messages: list[tuple[dict[str, Any], float]]) -> dict[str, Any]:
    samples: dict[str, list[float]] = {name: [] for name in (*STAGES, "end_to_end")}
    for payload, received in messages:
        ts = payload["ts"]
        samples["capture_to_inference"].append(ts["inference_start"] - ts["capture"])
        samples["inference"].append(ts["inference_end"] - ts["inference_start"])
        samples["inference_to_publish"].append(ts["publish"] - ts["inference_end"])
        samples["publish_to_subscriber"].append(received - ts["publish"])
        samples["end_to_end"].append(received - ts["capture"])
    ids = [payload["frame_id"] for payload, _ in messages]
    return {
        "frames": len(messages),
        "dropped": ids[-1] - ids[0] + 1 - len(ids),
        "stages": {name: _percentiles(samples[name]) for name in STAGES},
        "end_to_end": _percentiles(samples["end_to_end"]),
        "inference": {"p50_ms": _percentiles(samples["inference"])["p50_ms"]},
    }


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--video", type=Path, required=True)
    parser.add_argument("--frames", type=int, default=60, help="published frames measured")
    parser.add_argument("--warmup", type=int, default=3, help="published frames skipped first")
    parser.add_argument("--weights", default="random")
    parser.add_argument("--timeout", type=float, default=600.0, help="give up after this many seconds")
    parser.add_argument("--json", type=Path, metavar="PATH")
    parser.add_argument("daemon_flags", nargs="*", help="more detectord flags, after --")
    return parser


def main(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        broker = Mosquitto(Path(tmp))
        broker.start()
        log = Path(tmp) / "daemon.log"
        daemon = subprocess.Popen(
            [sys.executable, "-m", "detectord.daemon", "--source", str(args.video), "--loop", "--camera", CAMERA,
             "--mqtt-port", str(broker.port), "--weights", args.weights, *args.daemon_flags],
            stdout=subprocess.DEVNULL, stderr=log.open("w"), start_new_session=True,
        )  # fmt: skip
        try:
            messages, stats = asyncio.run(collect(broker.port, args.frames, args.warmup, args.timeout))
        except TimeoutError:
            raise SystemExit(
                f"no {args.frames} frames within {args.timeout:.0f} s; daemon log:\n{log.read_text()}"
            ) from None
        finally:
            os.killpg(daemon.pid, signal.SIGTERM)
            daemon.wait(30)
            broker.stop()
    results = {
        **summarise(messages),
        "uss_mb": memory(stats),
        "precision": stats and messages[-1][0]["model"]["precision"],
        "video": str(args.video),
        "weights": args.weights,
        "daemon_flags": args.daemon_flags,
        **describe_machine(),
    }
    return report(results, "latency", args.json, format_table)


def format_table(r: dict[str, Any]) -> str:
    lines = [
        f"live latency: detectord on {r['video']} (paced, looping), weights {r['weights']}, "
        f"flags {' '.join(r['daemon_flags']) or '(defaults)'}",
        machine_line(r) + f"; precision {r['precision']}",
        f"{r['frames']} frames published and measured; {r['dropped']} captured frames never published "
        "(the newest frame wins while the model is busy)",
        "",
        "| stage | p50 ms | p90 ms | p99 ms |",
        "| --- | ---: | ---: | ---: |",
    ]
    rows = [*r["stages"].items(), ("end to end (capture -> subscriber)", r["end_to_end"])]
    lines += [f"| {name} | {s['p50_ms']:.1f} | {s['p90_ms']:.1f} | {s['p99_ms']:.1f} |" for name, s in rows]
    overhead = r["end_to_end"]["p50_ms"] - r["inference"]["p50_ms"]
    lines += ["", f"end-to-end p50 - inference p50 = {overhead:.1f} ms (what the pipeline adds to the model)"]
    lines += ["", "| process | unique memory (USS) MB |", "| --- | ---: |"]
    lines += [f"| {name} | {mb if mb is not None else '-'} |" for name, mb in r["uss_mb"].items()]
    return "\n".join(lines)


if __name__ == "__main__":
    main(get_args_parser().parse_args())
