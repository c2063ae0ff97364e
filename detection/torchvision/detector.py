"""The detector as the pipeline sees it: uint8 frames in, per-frame detections out."""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from detectord.detection.profiles import InferenceProfile, set_input_size
from detectord.detection.types import Detections, ModelInfo

from .labels import COCO_CATEGORIES


def frames_to_batch(frames: Sequence[np.ndarray], device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """Float RGB batch (``[B, 3, H, W]``, values 0..1) from BGR uint8 ``[H, W, 3]`` frames.

    Each frame is wrapped without a copy (``torch.from_numpy`` on the shared
    memory view), moved to the device if that is not the CPU, and converted
    once, uint8 to float with the BGR->RGB swap and HWC->CHW fused into the
    same strided copy. Frames are only read, so the read-only views are safe
    to wrap.
    """
    height, width, _ = frames[0].shape
    batch = torch.empty((len(frames), 3, height, width), dtype=dtype, device=device)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        for i, frame in enumerate(frames):
            pixels = torch.from_numpy(frame).to(device, non_blocking=True)
            for channel in range(3):
                batch[i, channel].copy_(pixels[:, :, 2 - channel])
    return batch.mul_(1.0 / 255.0)


def to_detections(output: dict[str, torch.Tensor]) -> Detections:
    return Detections(
        boxes=output["boxes"].detach().float().cpu().numpy(),
        scores=output["scores"].detach().float().cpu().numpy(),
        labels=output["labels"].detach().cpu().numpy().astype(np.int32),
    )


class Detector:
    """A torchvision detector in eval mode on one device."""

    def __init__(
        self,
        model: nn.Module,
        info: ModelInfo,
        device: torch.device,
        profile: InferenceProfile,
        categories: tuple[str, ...] = COCO_CATEGORIES,
    ) -> None:
        self.model = model.eval()
        self.info = info
        self.device = device
        self.profile = profile
        self.categories = categories

    def set_frame_size(self, frame_size: tuple[int, int]) -> None:
        """Frames of another (width, height) follow: re-derive the input size of native profiles."""
        set_input_size(self.model.transform, self.profile, frame_size)

    def __call__(self, frames: Sequence[np.ndarray]) -> list[Detections]:
        if not frames:
            return []
        with torch.inference_mode():
            batch = frames_to_batch(frames, self.device, torch.float32)
            outputs = self.model(list(batch))
        return [to_detections(o) for o in outputs]


class CropDetector(Detector):
    """A detector that also looks at parts of frames (``FrameDetector.detect_crops``).

    Each crop goes through the model alone, with the transform set so that it
    is scaled as its whole frame would be (``InferenceProfile.scale``): with
    the native profiles a crop is not resized at all. Not for detectors that
    run at one fixed input size (SSDlite: a crop would be enlarged to it and
    cost a whole frame) or that compile one graph per input shape (int8-static).
    """

    def detect_crops(self, crops: Sequence[np.ndarray], frame_size: tuple[int, int]) -> list[Detections]:
        scale = self.profile.scale(frame_size)
        transform: Any = self.model.transform
        found = []
        try:
            for crop in crops:
                height, width = crop.shape[:2]
                transform.min_size = (max(1, round(min(width, height) * scale)),)
                transform.max_size = math.ceil(max(width, height) * scale) + 1
                found += self([crop])
        finally:
            self.set_frame_size(frame_size)
        return found
