"""Inference profiles: input size, proposal counts and score threshold, chosen per job.

The notebook's model upscaled every 240x427 frame to 768x1344 (torchvision's
default ``min_size=800, max_size=1333``), about 6x the pixels and, on a CPU,
about 10x the time of the native frame. For the main-person job that work
buys nothing: the main person is the largest one, well resolved at native
size. What the upscale does buy is small people (a 20-pixel-tall pedestrian
becomes 64 pixels tall); at native size many of them are missed.

Profiles:

``default``
    Native frame size (no resize), 500 RPN candidates per level before NMS
    and 100 proposals after it (torchvision: 1000 and 1000), detections
    reported from score 0.5. The RoI heads run on each proposal, so cutting
    proposals from 1000 to 100 removes most of their cost; the largest person
    always ranks among the top proposals. Trade-off: small and crowded
    people are lost first.
``native``
    Native frame size with torchvision's proposal counts and score threshold:
    isolates the cost of the upscale from the cost of proposals.
``reference``
    The notebook's settings: torchvision's defaults (min_size 800, max_size
    1333, 1000/1000 proposals, scores from 0.05). Best recall of small
    objects, about 10x the compute of ``default``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from .errors import ModelOptionError


@dataclass(frozen=True)
class InferenceProfile:
    """How a detector is run; ``min_size``/``max_size`` None means the frame's own size."""

    name: str
    min_size: int | None
    max_size: int | None
    rpn_pre_nms_top_n: int
    rpn_post_nms_top_n: int
    score_threshold: float
    detections_per_image: int = 100

    def with_score_threshold(self, threshold: float | None) -> InferenceProfile:
        return self if threshold is None else replace(self, score_threshold=threshold)

    def input_size(self, frame_size: tuple[int, int]) -> tuple[int, int]:
        """(min_size, max_size) handed to the model's transform for frames of (width, height)."""
        width, height = frame_size
        if self.min_size is None or self.max_size is None:
            return min(width, height), max(width, height)
        return self.min_size, self.max_size

    def scale(self, frame_size: tuple[int, int]) -> float:
        """How much the model's transform resizes frames of ``frame_size`` (torchvision's rule: the shorter
        side to ``min_size`` unless the longer one would pass ``max_size``)."""
        min_size, max_size = self.input_size(frame_size)
        return min(min_size / min(frame_size), max_size / max(frame_size))


PROFILES: dict[str, InferenceProfile] = {
    p.name: p
    for p in (
        InferenceProfile("default", None, None, rpn_pre_nms_top_n=500, rpn_post_nms_top_n=100, score_threshold=0.5),
        InferenceProfile("native", None, None, rpn_pre_nms_top_n=1000, rpn_post_nms_top_n=1000, score_threshold=0.05),
        InferenceProfile("reference", 800, 1333, rpn_pre_nms_top_n=1000, rpn_post_nms_top_n=1000, score_threshold=0.05),
    )
}


def get_profile(name: str) -> InferenceProfile:
    if name not in PROFILES:
        raise ModelOptionError("profile", f"unknown profile {name!r}; choose one of {', '.join(PROFILES)}")
    return PROFILES[name]


def set_input_size(transform: Any, profile: InferenceProfile, frame_size: tuple[int, int]) -> None:
    """Point a GeneralizedRCNNTransform at the size ``profile`` runs frames of ``frame_size`` at.

    ``min_size`` and ``max_size`` are the transform's public settings (its constructor's arguments).
    """
    if getattr(transform, "fixed_size", None) is None:
        min_size, max_size = profile.input_size(frame_size)
        transform.min_size = (min_size,)
        transform.max_size = max_size


def builder_kwargs(profile: InferenceProfile, frame_size: tuple[int, int], family: str) -> dict[str, Any]:
    """The arguments torchvision's builder takes for ``profile``, for a model of ``family``.

    ``two_stage`` (Faster R-CNN): input size, RPN candidates before and after
    NMS, box score threshold and detections per image. ``one_stage``
    (RetinaNet) has no RPN: ``topk_candidates`` plays that role. ``fixed_size``
    (SSDlite) always runs at its own input size.
    """
    if family == "two_stage":
        min_size, max_size = profile.input_size(frame_size)
        return {
            "min_size": min_size,
            "max_size": max_size,
            "rpn_pre_nms_top_n_test": profile.rpn_pre_nms_top_n,
            "rpn_post_nms_top_n_test": profile.rpn_post_nms_top_n,
            "box_score_thresh": profile.score_threshold,
            "box_detections_per_img": profile.detections_per_image,
        }
    kwargs: dict[str, Any] = {
        "score_thresh": profile.score_threshold,
        "detections_per_img": profile.detections_per_image,
        "topk_candidates": max(profile.rpn_pre_nms_top_n, profile.detections_per_image),
    }
    if family == "one_stage":
        kwargs["min_size"], kwargs["max_size"] = profile.input_size(frame_size)
    return kwargs
