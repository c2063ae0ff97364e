"""Where a torchvision two-stage detector spends its time, part by part, measured with torch.profiler.

Each part is a module or method of the model, labelled with
``torch.profiler.record_function`` while the profiler runs: the input
transform, backbone + FPN (and within it the body and the FPN where the
scheme keeps them as modules), the RPN's head, its anchors, its proposal
decoding and NMS, RoIAlign, the box head, the detections' decoding and NMS,
and the boxes' way back to frame pixels. "other" is what the whole call
spends outside them (Python glue, copies).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.profiler import ProfilerActivity, profile, record_function

WHOLE = "whole model"
MODULES = (
    ("transform: normalise, resize, batch", "transform"),
    ("backbone + FPN", "backbone"),
    ("  backbone body", "backbone.body"),
    ("  FPN", "backbone.fpn"),
    ("RPN head", "rpn.head"),
    ("anchors", "rpn.anchor_generator"),
    ("RoIAlign", "roi_heads.box_roi_pool"),
    ("box head", "roi_heads.box_head"),
    ("box predictor", "roi_heads.box_predictor"),
)
METHODS = (
    ("proposals: decode + NMS", "rpn", "filter_proposals"),
    ("detections: decode + NMS", "roi_heads", "postprocess_detections"),
    ("boxes back to frame pixels", "transform", "postprocess"),
)
TOP_LEVEL = (
    "transform: normalise, resize, batch",
    "backbone + FPN",
    "RPN head",
    "anchors",
    "proposals: decode + NMS",
    "RoIAlign",
    "box head",
    "box predictor",
    "detections: decode + NMS",
    "boxes back to frame pixels",
)


def _find(model: nn.Module, dotted: str) -> Any:
    target: Any = model
    for part in dotted.split("."):
        target = getattr(target, part, None)
        if target is None:
            return None
    return target


@contextlib.contextmanager
def _labelled(model: nn.Module) -> Iterator[None]:
    """Every part of ``model`` runs inside a ``record_function`` of its label, until the block ends."""
    handles: list[Any] = []
    restore: list[Callable[[], None]] = []
    split = isinstance(_find(model, "backbone.fpn"), nn.Module)
    for label, dotted in MODULES:
        module = _find(model, dotted)
        if not isinstance(module, nn.Module) or (label.startswith(" ") and not split):
            continue  # a folded or wrapped backbone runs as one graph: no body and FPN apart
        scopes: list[Any] = []

        def enter(mod: nn.Module, args: Any, label: str = label, scopes: list[Any] = scopes) -> None:
            scope = record_function(label)
            scope.__enter__()
            scopes.append(scope)

        def leave(mod: nn.Module, args: Any, out: Any, scopes: list[Any] = scopes) -> None:
            scopes.pop().__exit__(None, None, None)

        handles += [module.register_forward_pre_hook(enter), module.register_forward_hook(leave)]
    for label, owner_name, method in METHODS:
        owner = _find(model, owner_name)
        if owner is None or not hasattr(owner, method):
            continue
        original = getattr(owner, method)

        def wrapped(*args: Any, label: str = label, original: Any = original, **kwargs: Any) -> Any:
            with record_function(label):
                return original(*args, **kwargs)

        setattr(owner, method, wrapped)
        restore.append(lambda owner=owner, method=method: delattr(owner, method))
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()
        for undo in restore:
            undo()


def profile_parts(detector: Any, frames: Sequence[np.ndarray]) -> dict[str, float]:
    """Milliseconds per frame in each part (and in the whole call) over ``frames``, one frame per call."""
    model = getattr(detector.model, "model", detector.model)
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if torch.cuda.is_available() else [])
    with _labelled(model), profile(activities=activities) as profiler:
        for frame in frames:
            with record_function(WHOLE):
                detector([frame])
    totals = {event.key: event.cpu_time_total / 1000.0 for event in profiler.key_averages()}
    parts = {label: totals[label] / len(frames) for label, _ in MODULES if label in totals}
    parts |= {label: totals[label] / len(frames) for label, _, _ in METHODS if label in totals}
    parts[WHOLE] = totals[WHOLE] / len(frames)
    parts["other (glue, copies)"] = parts[WHOLE] - sum(parts.get(label, 0.0) for label in TOP_LEVEL)
    return parts


def format_parts(parts_by_scheme: dict[str, dict[str, float]]) -> str:
    schemes = list(parts_by_scheme)
    labels = [label for label, _ in MODULES] + [label for label, _, _ in METHODS]
    order = [label for label in (*TOP_LEVEL[:2], *labels[2:4], *TOP_LEVEL[2:]) if label in labels]
    order = list(dict.fromkeys([*order, "other (glue, copies)", WHOLE]))
    lines = [
        "| part | " + " | ".join(f"{s} ms" for s in schemes) + " | " + " | ".join(f"{s} share" for s in schemes) + " |",
        "| --- |" + " ---: |" * (2 * len(schemes)),
    ]
    for label in order:
        values = [parts_by_scheme[s].get(label) for s in schemes]
        if all(v is None for v in values):
            continue
        shares = [
            "-" if v is None else f"{v / parts_by_scheme[s][WHOLE]:.0%}" for v, s in zip(values, schemes, strict=True)
        ]
        cells = ["-" if v is None else f"{v:.1f}" for v in values]
        lines.append(f"| {label} | " + " | ".join(cells) + " | " + " | ".join(shares) + " |")
    return "\n".join(lines)
