"""COCO category names as torchvision's detection weights index them (91 ids, 0 = background)."""

from __future__ import annotations

from torchvision.models.detection import FasterRCNN_ResNet50_FPN_Weights

COCO_CATEGORIES: tuple[str, ...] = tuple(FasterRCNN_ResNet50_FPN_Weights.COCO_V1.meta["categories"])
