"""Precision schemes, applied by name to a built detector.

=============== ======= ===================================================================
scheme          device  what it does
=============== ======= ===================================================================
fp32            any     the model as trained
fp32-fused      any     norms folded into the convolutions before them (same numerics)
fp16            CUDA    fold first, then the whole model in half precision
mixed           CUDA    fold first; backbone and RPN in half, RoI heads in float32
autocast        any     torch.autocast: float16 on CUDA, bfloat16 on the CPU
bf16            any     fold first; backbone + FPN weights and activations in bfloat16, heads float32
int8-dynamic    CPU     box head Linear layers int8, activations quantised per batch
int8-static     CPU     backbone + FPN int8 (PT2E, oneDNN via Inductor), from a calibration artifact
=============== ======= ===================================================================

``auto`` is not a scheme: ``detection/auto.py`` turns it into one for the
device found, before anything here runs.

``+channels_last`` after a name (``fp16+channels_last``) also stores the
convolution weights channels-last; PyTorch then runs those convolutions
channels-last, which some kernels (cuDNN with tensor cores, oneDNN) prefer.

Every scheme keeps torchvision's output contract: boxes and scores float32,
labels int64, whatever precision runs inside.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path
from typing import Any, cast

import torch
from torch import Tensor, nn

from detectord.detection.auto import BF16_FEATURES
from detectord.detection.devices import cpu_description
from detectord.detection.errors import PrecisionError
from detectord.detection.schemes import Precision

from .fusion import fold_detector_norms
from .pt2e import check_compiler
from .quantization import load_calibration, quantize_box_head_dynamic, read_calibration


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


class Bfloat16Backbone(nn.Module):
    """A backbone (with its FPN) in bfloat16 between float32 in and out: where a detector spends its time,
    on the hardware that computes in bfloat16; the RPN, the RoI heads and post-processing keep float32."""

    def __init__(self, backbone: nn.Module) -> None:
        super().__init__()
        self.body = backbone.to(torch.bfloat16)

    def forward(self, images: Tensor) -> OrderedDict[str, Tensor]:
        features = self.body(images.to(torch.bfloat16))
        return OrderedDict((name, feature.float()) for name, feature in features.items())


def check_bf16(device: torch.device, force: bool) -> None:
    """Refuse bf16 where it is slower than float32 by design: no bfloat16 instructions to run it."""
    if force:
        return
    if device.type == "cuda":
        major, minor = torch.cuda.get_device_capability(device)
        if major < 8:
            raise PrecisionError(
                f"bf16 needs a GPU of capability 8.0 or newer (this one is {major}.{minor}); use fp16 or mixed "
                "(or force it)"
            )
        return
    model, flags = cpu_description()
    if not any(flag in flags for flag in BF16_FEATURES):
        raise PrecisionError(
            f"bf16 on this CPU ({model}: no {' or '.join(BF16_FEATURES)}) is emulated and slower than float32; "
            "use fp32-fused or int8-static (or force it)"
        )


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
    force: bool = False,
) -> nn.Module:
    """``model`` (float32, on the CPU, profile applied) converted to ``precision`` and moved to ``device``;
    ``force`` runs a scheme this device would run slower than float32."""
    precision.check_device(device.type)
    precision.check_calibration(calibration)
    if precision.compiled:
        raise PrecisionError(
            "+compiled is ssdlite-people's; torchvision's detectors run eager (bench/heads.py: compiling the RPN "
            "head did not pay)"
        )
    if precision.scheme == "bf16":
        check_bf16(device, force)
    scheme = precision.scheme
    if scheme == "int8-static":
        assert calibration is not None
        check_compiler()
        load_calibration(model, read_calibration(calibration), model_name)  # checks the float weights first
    if scheme != "fp32":
        fold_detector_norms(model)
    if scheme == "int8-dynamic":
        quantize_box_head_dynamic(model)
    model.to(device)
    if scheme == "bf16":
        model.backbone = Bfloat16Backbone(cast(nn.Module, model.backbone))
    if precision.channels_last:
        model.to(memory_format=torch.channels_last)
    if scheme == "fp16":
        return HalfDetector(model).eval()
    if scheme == "mixed":
        return MixedDetector(model).eval()
    if scheme == "autocast":
        return AutocastDetector(model, device).eval()
    return model.eval()
