"""The detectors detectord can build, and what it must know of each before building it."""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_MODEL = "fasterrcnn_resnet50_fpn"
HOG_PEOPLE = "hog-people"
"""OpenCV's built-in pedestrian detector (``detection/hog.py``): no torchvision, no weights to download."""


@dataclass(frozen=True)
class ModelFamily:
    """How torchvision builds a detector when it has trained weights.

    With trained weights torchvision swaps the backbone's BatchNorm2d for
    FrozenBatchNorm2d in most detectors; building "random" or from a file must
    produce the same modules, or the local file would not load and timing and
    precision results would describe another network.
    """

    frozen_backbone_norm: bool
    kind: str
    """``two_stage``, ``one_stage`` or ``fixed_size``: which builder arguments a profile sets; ``opencv``: none,
    torchvision does not build it."""


MODELS: dict[str, ModelFamily] = {
    "fasterrcnn_resnet50_fpn": ModelFamily(frozen_backbone_norm=True, kind="two_stage"),
    "fasterrcnn_resnet50_fpn_v2": ModelFamily(frozen_backbone_norm=False, kind="two_stage"),
    "fasterrcnn_mobilenet_v3_large_fpn": ModelFamily(frozen_backbone_norm=True, kind="two_stage"),
    "fasterrcnn_mobilenet_v3_large_320_fpn": ModelFamily(frozen_backbone_norm=True, kind="two_stage"),
    "retinanet_resnet50_fpn": ModelFamily(frozen_backbone_norm=True, kind="one_stage"),
    "ssdlite320_mobilenet_v3_large": ModelFamily(frozen_backbone_norm=False, kind="fixed_size"),
    HOG_PEOPLE: ModelFamily(frozen_backbone_norm=False, kind="opencv"),
}
