"""Exact-output ways to run the RPN head, timed inside the whole detector: where the float32 time left can go.

    python -m bench.heads [--video vtest.avi] [--frames 4] [--runs 5] [--precision auto] [--calibration FILE]
        [--json PATH]

With the backbone in bfloat16 or int8, the RPN head (a 3x3 convolution of
256 channels over every FPN level, then the objectness and box-delta 1x1
convolutions) is the largest part of a frame left in float32
(``python -m bench.quantization --profile-parts``). This loads the detector
at ``--precision`` (Faster R-CNN R50-FPN, default profile, untrained
weights: the same cost) and swaps its RPN head for each way of running it
that keeps the output: as the scheme loaded it (contiguous tensors, as
torchvision runs it, unless the scheme is ``+channels_last``),
channels-last (weights stored so, features converted on the way in), and
compiled by Inductor with frozen weights. It times whole frames of real
footage, the variants interleaved so that the machine's drift falls on all
alike, and prints each beside the largest difference of its head outputs
from the loaded head's on the same features: a change counts as exact-output
when that difference is at float32 rounding level. The head alone is not
the measure: a head faster on its own can be no faster inside the model.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from bench.people import PEDESTRIANS, read_video
from bench.results_io import machine_line, report, table_head
from detectord.detection.devices import describe_machine
from detectord.detection.torchvision.models import load_detector

SIZE = (427, 240)
Outputs = tuple[list[Tensor], list[Tensor]]


class ChannelsLast(nn.Module):
    def __init__(self, head: nn.Module) -> None:
        super().__init__()
        self.head = head.to(memory_format=torch.channels_last)

    def forward(self, levels: list[Tensor]) -> Outputs:
        return self.head([level.contiguous(memory_format=torch.channels_last) for level in levels])


def _difference(reference: Outputs, candidate: Outputs) -> float:
    pairs = zip(reference[0] + reference[1], candidate[0] + candidate[1], strict=True)
    return max(float((a - b).abs().max()) for a, b in pairs)


def main(args: argparse.Namespace) -> dict[str, Any]:
    frames, _ = read_video(args.video, args.frames)
    if not frames:
        raise SystemExit(f"no frames could be read from {args.video}")
    detector = load_detector(
        weights="random", device="cpu", frame_size=SIZE, precision=args.precision, calibration=args.calibration
    )
    rpn: Any = detector.model.rpn
    head: nn.Module = rpn.head
    seen: list[list[Tensor]] = []
    hook = head.register_forward_pre_hook(lambda _, inputs: seen.append([t.clone() for t in inputs[0]]))
    detector(frames[:1])
    hook.remove()
    torch._inductor.config.freezing = True
    variants: dict[str, nn.Module] = {
        "as loaded": head,
        "channels-last": ChannelsLast(copy.deepcopy(head)),
        "Inductor, frozen weights": torch.compile(copy.deepcopy(head), dynamic=False),
    }
    rows: dict[str, dict[str, float]] = {}
    with torch.inference_mode():
        reference = head(seen[0])
        for name, variant in variants.items():
            rpn.head = variant
            started = time.perf_counter()
            detector(frames[:1])
            rows[name] = {
                "first_pass_s": time.perf_counter() - started,
                "max_difference": _difference(reference, variant(seen[0])),
            }
    times: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(args.runs):
        for name, variant in variants.items():
            rpn.head = variant
            started = time.perf_counter()
            for frame in frames:
                detector([frame])
            times[name].append((time.perf_counter() - started) * 1000.0 / len(frames))
    rpn.head = head
    for name, row in rows.items():
        row["frame_ms"] = statistics.median(times[name])
    results = {
        **describe_machine(),
        "torch": f"torch {torch.__version__}, {torch.get_num_threads()} threads",
        "precision": detector.info.precision,
        "video": str(args.video),
        "frames": len(frames),
        "largest_output": max(float(t.abs().max()) for t in reference[0] + reference[1]),
        "variants": rows,
    }
    return report(results, "heads", args.json, format_table)


def format_table(r: dict[str, Any]) -> str:
    loaded = r["variants"]["as loaded"]["frame_ms"]
    lines = [
        f"the RPN head inside fasterrcnn_resnet50_fpn (random weights), default profile, precision "
        f"{r['precision']}, {r['frames']} frames of {Path(r['video']).name} at 427x240",
        machine_line(r) + f"; {r['torch']}",
        "",
        *table_head(
            [
                "RPN head run as",
                "ms per frame (whole model)",
                "vs as loaded",
                "largest head output difference",
                "first frame s",
            ]
        ),
    ]
    for name, row in r["variants"].items():
        lines.append(
            f"| {name} | {row['frame_ms']:.1f} | {loaded / row['frame_ms']:.2f}x | "
            f"{row['max_difference']:.1e} | {row['first_pass_s']:.1f} |"
        )
    lines.append(f"(head outputs reach {r['largest_output']:.2f}; float32 rounding at that size is about 1e-6)")
    return "\n".join(lines)


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--video", type=Path, default=PEDESTRIANS, help="a video with people (vtest.avi)")
    parser.add_argument("--frames", type=int, default=4, help="frames timed in each pass")
    parser.add_argument("--runs", type=int, default=5, help="interleaved passes (the median is kept)")
    parser.add_argument("--precision", default="auto", help="the scheme the rest of the detector runs at")
    parser.add_argument("--calibration", type=Path, help="for int8-static (or auto with int8)")
    parser.add_argument("--json", type=Path, metavar="PATH", help="a folder: the file is named after the machine")
    return parser


if __name__ == "__main__":
    main(get_args_parser().parse_args())
