"""The RPN head, float32, run the ways that keep its output: where the time left after the backbone can go.

    python -m bench.heads [--video vtest.avi] [--frames 4] [--runs 7] [--json PATH]

With the backbone in bfloat16 or int8, the RPN head (a 3x3 convolution of
256 channels over every FPN level, then the objectness and box-delta 1x1
convolutions) is the largest part of a frame left in float32
(``python -m bench.quantization --profile-parts``). This measures it on the
FPN features of real frames (Faster R-CNN R50-FPN, default profile,
untrained weights: the same cost) as torchvision runs it (contiguous
tensors), channels-last (its weights stored so, the features converted on
the way in, as the head would have to in a float32 model), and compiled by
Inductor with frozen weights, in interleaved passes, and prints the time of
each beside the largest difference of its outputs from the first's: a change
counts as exact-output when that difference is at float32 rounding level.
The part-by-part profile of the whole model has the last word: a head that
is faster here but not there is not faster.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from bench.people import PEDESTRIANS, read_video
from bench.results_io import machine_line, write_json
from detectord.detection import build_model, frames_to_batch, get_profile
from detectord.detection.devices import describe_machine

SIZE = (427, 240)
Outputs = tuple[list[Tensor], list[Tensor]]


def _first_pass(head: Any, features: list[list[Tensor]]) -> tuple[float, list[Outputs]]:
    """Seconds of the first pass (which compiles, where it does), and its outputs."""
    with torch.inference_mode():
        started = time.perf_counter()
        outputs = [head(levels) for levels in features]
    return time.perf_counter() - started, outputs


def _ms_per_frame(head: Any, features: list[list[Tensor]]) -> float:
    with torch.inference_mode():
        start = time.perf_counter()
        for levels in features:
            head(levels)
    return (time.perf_counter() - start) * 1000.0 / len(features)


def _difference(reference: list[Outputs], candidate: list[Outputs]) -> float:
    return max(
        float((a - b).abs().max())
        for ref, got in zip(reference, candidate, strict=True)
        for a, b in zip(ref[0] + ref[1], got[0] + got[1], strict=True)
    )


def main(args: argparse.Namespace) -> dict[str, Any]:
    frames, _ = read_video(args.video, args.frames)
    if not frames:
        raise SystemExit(f"no frames could be read from {args.video}")
    model, _ = build_model("fasterrcnn_resnet50_fpn", "random", get_profile("default"), SIZE)
    with torch.inference_mode():
        features = []
        for frame in frames:
            batch, _ = model.transform(list(frames_to_batch([frame], torch.device("cpu"), torch.float32)))
            features.append(list(model.backbone(batch.tensors).values()))
    head: nn.Module = model.rpn.head
    last = copy.deepcopy(head).to(memory_format=torch.channels_last)

    def channels_last(levels: list[Tensor]) -> Outputs:
        return last([level.contiguous(memory_format=torch.channels_last) for level in levels])

    torch._inductor.config.freezing = True
    variants: dict[str, Any] = {
        "contiguous (as torchvision)": head,
        "channels-last": channels_last,
        "Inductor, frozen weights": torch.compile(copy.deepcopy(head), dynamic=False),
    }
    rows: dict[str, dict[str, float]] = {}
    reference: list[Outputs] = []
    for name, run in variants.items():
        first_s, outputs = _first_pass(run, features)
        reference = reference or outputs
        rows[name] = {"max_difference": _difference(reference, outputs), "first_pass_s": first_s}
    times: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(args.runs):  # interleaved, so that the machine's drift falls on every variant alike
        for name, run in variants.items():
            times[name].append(_ms_per_frame(run, features))
    for name, row in rows.items():
        row["ms"] = statistics.median(times[name])
    scale = max(float(t.abs().max()) for fs in reference for t in fs[0] + fs[1])
    results = {
        **describe_machine(),
        "torch": f"torch {torch.__version__}, {torch.get_num_threads()} threads",
        "video": str(args.video),
        "frames": len(frames),
        "largest_output": scale,
        "variants": rows,
    }
    sys.stdout.write(format_table(results) + "\n")
    write_json(args.json, "heads", results)
    return results


def format_table(r: dict[str, Any]) -> str:
    contiguous = r["variants"]["contiguous (as torchvision)"]["ms"]
    lines = [
        f"RPN head of fasterrcnn_resnet50_fpn (random weights), default profile, float32, "
        f"{r['frames']} frames of {Path(r['video']).name} at 427x240",
        machine_line(r) + f"; {r['torch']}",
        "",
        "| RPN head run as | ms per frame | vs contiguous | largest output difference | first pass s |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for name, row in r["variants"].items():
        lines.append(
            f"| {name} | {row['ms']:.1f} | {contiguous / row['ms']:.2f}x | {row['max_difference']:.1e} | "
            f"{row['first_pass_s']:.1f} |"
        )
    lines.append(f"(outputs reach {r['largest_output']:.2f}; float32 rounding at that size is about 1e-6)")
    return "\n".join(lines)


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--video", type=Path, default=PEDESTRIANS, help="a video with people (vtest.avi)")
    parser.add_argument("--frames", type=int, default=4, help="frames whose features are measured")
    parser.add_argument("--runs", type=int, default=7, help="timed passes over them (the median is kept)")
    parser.add_argument("--json", type=Path, metavar="PATH", help="a folder: the file is named after the machine")
    return parser


if __name__ == "__main__":
    main(get_args_parser().parse_args())
