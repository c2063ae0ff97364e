"""Write a synthetic street-like clip for benchmarks where no real video is at hand.

    python -m bench.synthetic_clip OUT.mp4 [--frames 120] [--size 1280x720] [--fps 30]

Textured background, a few walking figures of different sizes and a passing
block: enough for the decoder and the resize to do real work. A detector's
run time does not depend on what the pixels show, so timing on this clip
measures the same work as on a real one; its detections mean nothing.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np


def write_clip(path: Path, frames: int, width: int, height: int, fps: float) -> None:
    rng = np.random.default_rng(0)
    background = cv2.GaussianBlur(rng.integers(0, 255, (height, width, 3), dtype=np.uint8), (0, 0), 3)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
    if not writer.isOpened():
        raise SystemExit(f"cannot write {path}")
    walkers = [(0.1, 0.55, 0.35, 3.0), (0.6, 0.45, 0.2, -2.0), (0.3, 0.6, 0.5, 1.5)]
    for i in range(frames):
        image = background.copy()
        for x0, y0, scale, speed in walkers:
            h = int(scale * height)
            w = h // 3
            x = int((x0 * width + speed * i) % (width - w))
            y = int(y0 * height) - h // 2
            cv2.ellipse(image, (x + w // 2, y + h // 8), (w // 4, h // 8), 0, 0, 360, (80, 110, 160), -1)
            cv2.rectangle(image, (x, y + h // 4), (x + w, y + h), (60, 60, 150), -1)
        car_x = int((i * 9) % (width + 300)) - 300
        cv2.rectangle(image, (car_x, int(0.7 * height)), (car_x + 300, int(0.85 * height)), (40, 40, 40), -1)
        writer.write(image)
    writer.release()


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--frames", type=int, default=120)
    parser.add_argument("--size", default="1280x720", help="WIDTHxHEIGHT")
    parser.add_argument("--fps", type=float, default=30.0)
    return parser


def main(args: argparse.Namespace) -> None:
    width, height = (int(v) for v in args.size.split("x"))
    write_clip(args.out, args.frames, width, height, args.fps)


if __name__ == "__main__":
    main(get_args_parser().parse_args())
