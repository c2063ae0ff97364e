"""Precision schemes, applied by name to a built detector.

=============== ======= ===================================================================
scheme          device  what it does
=============== ======= ===================================================================
fp32            any     the model as trained
fp32-fused      any     norms folded into the convolutions before them (same numerics)
fp16            CUDA    fold first, then the whole model in half precision
mixed           CUDA    fold first; backbone and RPN in half, RoI heads in float32
autocast        any     torch.autocast: float16 on CUDA, bfloat16 on the CPU
int8-dynamic    CPU     box head Linear layers int8, activations quantised per batch
int8-static     CPU     backbone + FPN int8 (FX, x86), from a calibration artifact
=============== ======= ===================================================================

``+channels_last`` after a name (``fp16+channels_last``) also stores the
convolution weights channels-last; PyTorch then runs those convolutions
channels-last, which some kernels (cuDNN with tensor cores, oneDNN) prefer.

Every scheme keeps torchvision's output contract: boxes and scores float32,
labels int64, whatever precision runs inside.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from .errors import PrecisionError
from .fusion import fold_detector_norms
from .quantization import load_calibration, quantize_box_head_dynamic, read_calibration
from .schemes import Precision


def _float32_outputs(outputs: list[dict[str, Tensor]]) -> list[dict[str, Tensor]]:
    return [{k: v.float() if v.is_floating_point() else v for k, v in output.items()} for output in outputs]


class HalfDetector(nn.Module):
    """The whole detector in float16: float32 frames in, float32 boxes and scores out."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model.half()
        self.transform = self.model.transform

    def forward(self, images: list[Tensor]) -> list[dict[str, Tensor]]:
        return _float32_outputs(self.model([image.half() for image in images]))


class MixedDetector(nn.Module):
    """Backbone and RPN in float16, RoI heads in float32 (a two-stage detector's eval forward)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        if not hasattr(model, "rpn"):
            raise PrecisionError("mixed splits a two-stage detector at its RoI heads; this model has none")
        self.model = model
        self.transform = model.transform
        model.backbone.half()
        model.rpn.half()

    def forward(self, images: list[Tensor]) -> list[dict[str, Tensor]]:
        m: Any = self.model  # a torchvision two-stage detector: its parts are called one by one
        original_sizes = [(int(image.shape[-2]), int(image.shape[-1])) for image in images]
        batch, _ = m.transform([image.half() for image in images])
        features = m.backbone(batch.tensors)
        proposals, _ = m.rpn(batch, features)
        features = {name: feature.float() for name, feature in features.items()}
        proposals = [p.float() for p in proposals]
        detections, _ = m.roi_heads(features, proposals, batch.image_sizes)
        return m.transform.postprocess(detections, batch.image_sizes, original_sizes)


class AutocastDetector(nn.Module):
    """torch.autocast around the forward: float16 on CUDA, bfloat16 on the CPU."""

    def __init__(self, model: nn.Module, device: torch.device) -> None:
        super().__init__()
        self.model = model
        self.transform = model.transform
        self.device_type = device.type
        self.dtype = torch.float16 if device.type == "cuda" else torch.bfloat16

    def forward(self, images: list[Tensor]) -> list[dict[str, Tensor]]:
        with torch.autocast(self.device_type, dtype=self.dtype):
            return _float32_outputs(self.model(images))


def apply_precision(
    model: nn.Module,
    precision: Precision,
    device: torch.device,
    *,
    model_name: str,
    calibration: Path | None = None,
) -> nn.Module:
    """``model`` (float32, on the CPU, profile applied) converted to ``precision`` and moved to ``device``."""
    precision.check_device(device.type)
    precision.check_calibration(calibration)
    scheme = precision.scheme
    if scheme == "int8-static":
        assert calibration is not None
        load_calibration(model, read_calibration(calibration), model_name)  # checks the float weights first
    if scheme != "fp32":
        fold_detector_norms(model)
    if scheme == "int8-dynamic":
        quantize_box_head_dynamic(model)
    model.to(device)
    if precision.channels_last:
        model.to(memory_format=torch.channels_last)
    if scheme == "fp16":
        return HalfDetector(model).eval()
    if scheme == "mixed":
        return MixedDetector(model).eval()
    if scheme == "autocast":
        return AutocastDetector(model, device).eval()
    return model.eval()
