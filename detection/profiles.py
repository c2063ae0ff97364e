"""Inference profiles: input size, proposal counts and score threshold, chosen per job.

The notebook's model upscaled every 240x427 frame to 768x1344 (torchvision's
default ``min_size=800, max_size=1333``), about 6x the pixels and, on a CPU,
about 11x the time of the native frame. For the main-person job that work
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

from torch import nn


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


PROFILES: dict[str, InferenceProfile] = {
    p.name: p
    for p in (
        InferenceProfile("default", None, None, rpn_pre_nms_top_n=500, rpn_post_nms_top_n=100, score_threshold=0.5),
        InferenceProfile("native", None, None, rpn_pre_nms_top_n=1000, rpn_post_nms_top_n=1000, score_threshold=0.05),
        InferenceProfile("reference", 800, 1333, rpn_pre_nms_top_n=1000, rpn_post_nms_top_n=1000, score_threshold=0.05),
    )
}


def get_profile(name: str) -> InferenceProfile:
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(f"unknown profile {name!r}; choose one of {', '.join(PROFILES)}") from None


def set_input_size(transform: nn.Module, profile: InferenceProfile, frame_size: tuple[int, int]) -> None:
    """Point a GeneralizedRCNNTransform at the size ``profile`` runs frames of ``frame_size`` at."""
    if getattr(transform, "fixed_size", None) is None:
        min_size, max_size = profile.input_size(frame_size)
        transform.min_size = (min_size,)
        transform.max_size = max_size


def apply_profile(model: nn.Module, profile: InferenceProfile, frame_size: tuple[int, int]) -> None:
    """Set the profile on a built torchvision detector, as its constructor arguments would.

    Settings a model family does not have are left alone: RetinaNet has no
    RPN (its ``topk_candidates`` plays that role), SSDlite runs at its fixed
    320x320 input.
    """
    set_input_size(model.transform, profile, frame_size)
    rpn = getattr(model, "rpn", None)
    if rpn is not None:
        rpn._pre_nms_top_n["testing"] = profile.rpn_pre_nms_top_n
        rpn._post_nms_top_n["testing"] = profile.rpn_post_nms_top_n
        model.roi_heads.score_thresh = profile.score_threshold
        model.roi_heads.detections_per_img = profile.detections_per_image
    else:
        model.score_thresh = profile.score_threshold
        model.detections_per_img = profile.detections_per_image
        model.topk_candidates = max(profile.rpn_pre_nms_top_n, profile.detections_per_image)
