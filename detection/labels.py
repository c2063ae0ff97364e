"""COCO category names as torchvision's detection weights index them (91 ids, 0 = background)."""

from __future__ import annotations

from torchvision.models.detection import FasterRCNN_ResNet50_FPN_Weights

COCO_CATEGORIES: tuple[str, ...] = tuple(FasterRCNN_ResNet50_FPN_Weights.COCO_V1.meta["categories"])
PERSON = COCO_CATEGORIES.index("person")


def label_name(class_id: int, categories: tuple[str, ...] = COCO_CATEGORIES) -> str:
    """The category name of ``class_id``, or ``class_<id>`` for ids outside the table."""
    if 0 <= class_id < len(categories):
        return categories[class_id]
    return f"class_{class_id}"
