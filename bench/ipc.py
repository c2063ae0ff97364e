"""Frame hand-off between two processes: FrameRing (shared memory) against multiprocessing.Queue.

    python -m bench.ipc [--frames 20000] [--latency-frames 2000] [--rate 500] [--json PATH]

Both transports move the same 427x240x3 uint8 frames from a producer process
to a consumer process, every frame delivered (the ring in lossless mode, the
queue bounded to as many frames as the ring has slots), in one run:

* hand-off throughput: the frame already sits in the producer's output buffer,
  and the transport moves it. For the ring that buffer is a slot (capture
  resizes straight into it), so the hand-off is claim + publish; for the queue
  it is a numpy array that ``put`` pickles and pipes across.
* throughput including production: the same, plus one copy of an image into
  the output buffer per frame on both sides (into the slot; into a new array
  for the queue, whose feeder thread pickles it later, so it cannot be reused).
  This bounds what a producer that really makes frames can reach.
* hand-off latency: ``--latency-frames`` frames paced at ``--rate`` per second,
  from the moment the producer has produced a frame to the moment the consumer
  holds a readable array of it.

The consumer takes each frame and lets it go, doing no work on the pixels; the
ring's consumer takes every frame that is ready in one call (a batch of
consecutive frames, as offline inference does).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import time
from multiprocessing.context import SpawnContext
from multiprocessing.queues import Queue
from pathlib import Path
from typing import Any

import numpy as np

from bench.results_io import machine_line, report, table_head
from detectord.detection.devices import describe_machine
from detectord.ipc import EndOfStream, FrameRing, RingHandle, RingMode

SHAPE = (240, 427, 3)
Run = tuple[float, list[float]]  # seconds from first send to last receipt, hand-off latencies


def _images(count: int) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, SHAPE, dtype=np.uint8) for _ in range(count)]


def _wait_until(t: float) -> None:
    delay = t - time.perf_counter()
    if delay > 0:
        time.sleep(delay)


# -- consumers (child processes) -------------------------------------------------


def ring_consumer(handle: RingHandle, report: Queue[Any]) -> None:
    ring = FrameRing.attach(handle, shape=SHAPE)
    reader = ring.reader(0)
    latencies: list[float] = []
    report.put("ready")
    try:
        while True:
            try:
                refs = reader.read(ring.slot_count, timeout=30)
            except EndOfStream:
                break
            now = time.time()
            latencies.extend(now - ref.capture_ts for ref in refs)
            reader.release(refs)
        report.put((time.perf_counter(), latencies))
    finally:
        ring.close()


def queue_consumer(frames: Queue[Any], report: Queue[Any]) -> None:
    latencies: list[float] = []
    report.put("ready")
    while True:
        item = frames.get(timeout=30)
        if item is None:
            break
        _, sent, frame = item
        latencies.append(time.time() - sent)
        del frame
    report.put((time.perf_counter(), latencies))


# -- producers (this process) ------------------------------------------------------


def _await_ready(report: Queue[Any]) -> None:
    """Start the clock only once the consumer runs: process start-up is not hand-off."""
    if report.get(timeout=60) != "ready":
        raise RuntimeError("consumer failed to start")


def ring_run(ctx: SpawnContext, slots: int, count: int, rate: float | None, produce: bool) -> Run:
    report: Queue[Any] = ctx.Queue()
    images = _images(4)
    with FrameRing.create(f"bench-{os.getpid()}", shape=SHAPE, slots=slots, mode=RingMode.LOSSLESS, ctx=ctx) as ring:
        consumer = ctx.Process(target=ring_consumer, args=(ring.handle, report))
        consumer.start()
        writer = ring.writer()
        _await_ready(report)
        start = time.perf_counter()
        for i in range(count):
            if rate:
                _wait_until(start + i / rate)
            slot = writer.claim(timeout=30)
            if slot is None:
                raise RuntimeError("ring consumer stalled")
            if produce or i < slots:  # without production, each slot gets its image once
                np.copyto(slot["pixels"], images[i % len(images)])
            writer.publish(slot, frame_id=i, capture_ts=time.time(), pts=0.0)
        writer.finish()
        end, latencies = report.get(timeout=120)
        consumer.join(30)
    return end - start, latencies


def queue_run(ctx: SpawnContext, slots: int, count: int, rate: float | None, produce: bool) -> Run:
    report: Queue[Any] = ctx.Queue()
    frames: Queue[Any] = ctx.Queue(maxsize=slots)
    images = _images(4)
    consumer = ctx.Process(target=queue_consumer, args=(frames, report))
    consumer.start()
    _await_ready(report)
    start = time.perf_counter()
    for i in range(count):
        if rate:
            _wait_until(start + i / rate)
        image = images[i % len(images)]
        frame = image.copy() if produce else image
        frames.put((i, time.time(), frame), timeout=30)
    frames.put(None, timeout=30)
    end, latencies = report.get(timeout=120)
    consumer.join(30)
    return end - start, latencies


def _percentile_us(run: Run, q: float) -> float:
    return float(np.percentile(np.asarray(run[1]) * 1e6, q))


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=20000, help="frames per throughput run")
    parser.add_argument("--latency-frames", type=int, default=2000, help="frames for the paced latency run")
    parser.add_argument("--rate", type=float, default=500.0, help="frames per second in the latency run")
    parser.add_argument("--slots", type=int, default=8, help="ring slots, and the queue's maxsize")
    parser.add_argument(
        "--json", type=Path, metavar="PATH", help="also write the results as JSON (a folder: named after the machine)"
    )
    return parser


def main(args: argparse.Namespace) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    runs: dict[str, dict[str, Run]] = {}
    for name, run in (("ring", ring_run), ("queue", queue_run)):
        runs[name] = {
            "handoff": run(ctx, args.slots, args.frames, None, False),
            "produced": run(ctx, args.slots, args.frames, None, True),
            "paced": run(ctx, args.slots, args.latency_frames, args.rate, True),
        }
    fps = {name: args.frames / r["handoff"][0] for name, r in runs.items()}
    fps_produced = {name: args.frames / r["produced"][0] for name, r in runs.items()}
    results = {
        "ring_fps": fps["ring"],
        "queue_fps": fps["queue"],
        "ratio": fps["ring"] / fps["queue"],
        "ring_p50_us": _percentile_us(runs["ring"]["paced"], 50),
        "ring_p99_us": _percentile_us(runs["ring"]["paced"], 99),
        "queue_p50_us": _percentile_us(runs["queue"]["paced"], 50),
        "queue_p99_us": _percentile_us(runs["queue"]["paced"], 99),
        "ring_fps_with_production": fps_produced["ring"],
        "queue_fps_with_production": fps_produced["queue"],
        "ratio_with_production": fps_produced["ring"] / fps_produced["queue"],
        **describe_machine(),
        "config": {
            "shape": list(SHAPE),
            "frame_bytes": int(np.prod(SHAPE)),
            "slots": args.slots,
            "frames": args.frames,
            "latency_frames": args.latency_frames,
            "rate": args.rate,
        },
    }
    return report(results, "ipc", args.json, format_table)


def format_table(r: dict[str, Any]) -> str:
    cfg = r["config"]
    h, w, c = cfg["shape"]
    rows = [
        ("FrameRing (shared memory)", r["ring_fps"], r["ring_fps_with_production"], r["ring_p50_us"], r["ring_p99_us"]),
        (
            "multiprocessing.Queue (pickled ndarray)",
            r["queue_fps"],
            r["queue_fps_with_production"],
            r["queue_p50_us"],
            r["queue_p99_us"],
        ),
    ]
    lines = [
        f"IPC hand-off, {w}x{h}x{c} uint8 frames ({cfg['frame_bytes']:,} B), producer process -> consumer process",
        machine_line(r),
        f"{cfg['frames']} frames per throughput run, every frame delivered; latency: {cfg['latency_frames']} "
        f"frames paced at {cfg['rate']:.0f}/s; ring {cfg['slots']} slots, queue maxsize {cfg['slots']}",
        "",
        *table_head(
            [
                "transport",
                "hand-off frames/s",
                "frames/s incl. one frame copy",
                "hand-off p50 (µs)",
                "hand-off p99 (µs)",
            ]
        ),
    ]
    lines += [f"| {name} | {a:,.0f} | {b:,.0f} | {p50:,.1f} | {p99:,.1f} |" for name, a, b, p50, p99 in rows]
    lines.append(
        f"| ring / queue | {r['ratio']:.1f}x | {r['ratio_with_production']:.1f}x | "
        f"{r['queue_p50_us'] / r['ring_p50_us']:.1f}x lower | {r['queue_p99_us'] / r['ring_p99_us']:.1f}x lower |"
    )
    return "\n".join(lines)


if __name__ == "__main__":
    main(get_args_parser().parse_args())
