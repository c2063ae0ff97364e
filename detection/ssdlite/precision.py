"""The precision schemes (``detection/schemes.py``) applied to the SSDLite port.

The same schemes, in the same spirit, as the torchvision detectors
(``detection/torchvision/precision.py``), on a network that is all
convolutions: the backbone (MobileNetV2 and the SSD extras) is where the
time goes, the box predictors are small. Decoding, scores and NMS stay
float32 in every scheme (``detector.py``).

=============== ===================================================================
fp32            the graph's layers as they are, batch norms apart
fp32-fused      batch norms folded into their convolutions (the same numbers, less work)
bf16            fold, then the backbone in bfloat16; the predictors float32
autocast        fold, then torch.autocast (bfloat16 on the CPU, float16 on CUDA) over the network
int8-static     fold, then the backbone int8 (PT2E, oneDNN through Inductor) from a calibration;
                the predictors float32
fp16 (CUDA)     fold, then the whole network in float16
mixed (CUDA)    fold, then the backbone in float16, the predictors float32
int8-dynamic    refused: it quantises Linear layers, and this network has none
=============== ===================================================================

``+channels_last`` stores the convolutions' weights (and the images) channels-last: on the CPU it pays in
every precision for this network of depthwise and 1x1 convolutions. ``+compiled`` (CPU) has the detector
compile frames to boxes with Inductor (``detector.py``), weights frozen into the graph: convolutions
fused with their ReLU6, padding and bias, the resize and the decoding fused into a few loops. The network
of ``bf16+channels_last`` alone went from 8.6 to 5.6 ms a frame here (an AVX512-BF16 EPYC). It compiles
on the first frame of a size (once for one frame, once for batches), seconds each on two cores, and needs
Inductor's C++ compiler (g++) as int8-static does.
"""

from __future__ import annotations

import warnings
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, fx, nn

from detectord.detection.devices import cpu_has_vnni
from detectord.detection.errors import CalibrationError, PrecisionError
from detectord.detection.schemes import Precision
from detectord.detection.torchvision import pt2e
from detectord.detection.torchvision.precision import check_bf16
from detectord.detection.torchvision.quantization import (
    check_artifact,
    converted_backbone,
    make_artifact,
    weights_fingerprint,
)

from .network import SSDLiteNet


class CastBackbone(nn.Module):
    """A backbone in ``dtype`` between float32 in and float32 feature maps out."""

    def __init__(self, backbone: nn.Module, dtype: torch.dtype) -> None:
        super().__init__()
        self.body = backbone.to(dtype)
        self.dtype = dtype

    def forward(self, images: Tensor) -> OrderedDict[str, Tensor]:
        features = self.body(images.to(self.dtype))
        return OrderedDict((name, feature.float()) for name, feature in features.items())


class HalfNet(nn.Module):
    """The whole network in float16: float32 images in, float32 encodings and logits out."""

    def __init__(self, net: SSDLiteNet) -> None:
        super().__init__()
        self.net = net.half()
        self.backbone = self.net.backbone

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor]:
        encodings, logits = self.net(images.half())
        return encodings.float(), logits.float()


class AutocastNet(nn.Module):
    def __init__(self, net: SSDLiteNet, device: torch.device) -> None:
        super().__init__()
        self.net = net
        self.backbone = net.backbone
        self.device_type = device.type
        self.dtype = torch.float16 if device.type == "cuda" else torch.bfloat16

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor]:
        with torch.autocast(self.device_type, dtype=self.dtype):
            encodings, logits = self.net(images)
        return encodings.float(), logits.float()


def _prepare(net: SSDLiteNet, reduce_range: bool) -> fx.GraphModule:
    """The folded backbone exported (batch symbolic, the graph's fixed input size) and annotated by the x86
    Inductor quantizer: int8 activations per tensor, weights per channel, each convolution fused with its
    ReLU6 and the residual additions."""
    from torch.export import Dim

    with pt2e._quiet_torch_logs():
        import torchao.quantization.pt2e.quantizer.x86_inductor_quantizer as x86
        from torchao.quantization.pt2e.quantize_pt2e import prepare_pt2e

    example = torch.zeros(2, 3, *net.input_size)
    exported = torch.export.export(net.backbone, (example,), dynamic_shapes=(({0: Dim("batch", min=1, max=1024)},),))
    quantizer = x86.X86InductorQuantizer()
    quantizer.set_global(x86.get_default_x86_inductor_quantization_config(reduce_range=reduce_range))
    return prepare_pt2e(exported.module(), quantizer)


def calibrate(net: SSDLiteNet, images: Sequence[Tensor], provenance: dict[str, Any], batch: int = 4) -> dict[str, Any]:
    """The int8-static artifact of ``net`` (float32, not folded), its backbone observed on ``images``
    (preprocessed batches of real frames)."""
    if not images:
        raise CalibrationError("calibration needs at least one frame")
    fingerprint = weights_fingerprint(net)
    reduce_range = not cpu_has_vnni()
    net.fold()
    prepared = _prepare(net, reduce_range)
    with torch.inference_mode():
        for chunk in images:
            for start in range(0, chunk.shape[0], batch):
                prepared(chunk[start : start + batch])
    frames = sum(int(chunk.shape[0]) for chunk in images)
    return make_artifact(prepared, fingerprint, reduce_range, frames, provenance)


def apply_precision(
    net: SSDLiteNet,
    precision: Precision,
    device: torch.device,
    *,
    model_name: str,
    calibration: dict[str, Any] | None = None,
    force: bool = False,
) -> nn.Module:
    """``net`` (float32, on the CPU) converted to ``precision`` and moved to ``device``; ``calibration`` is the
    artifact int8-static needs (read by ``quantization.read_calibration``)."""
    precision.check_device(device.type)
    scheme = precision.scheme
    if scheme == "int8-dynamic":
        raise PrecisionError(
            "int8-dynamic quantises Linear layers and ssdlite-people is all convolutions (nothing to quantise); "
            "use int8-static"
        )
    if scheme == "bf16":
        check_bf16(device, force)
    fingerprint = weights_fingerprint(net) if scheme == "int8-static" else ""  # the float weights, before folding
    if scheme != "fp32":
        net.fold()
    if scheme == "int8-static":
        if calibration is None:
            raise PrecisionError("int8-static needs a calibration file (make one with: detectord calibrate VIDEO)")
        pt2e.check_compiler()
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=DeprecationWarning)
            check_artifact(calibration, model_name, fingerprint)
            prepared = _prepare(net, calibration.get("reduce_range", True))
            net.backbone = converted_backbone(prepared, calibration)  # type: ignore[assignment]
    net.to(device)
    if scheme == "bf16":
        net.backbone = CastBackbone(net.backbone, torch.bfloat16)  # type: ignore[assignment]
    if scheme == "mixed":
        net.backbone = CastBackbone(net.backbone, torch.float16)  # type: ignore[assignment]
    if precision.channels_last:
        net.to(memory_format=torch.channels_last)
    model: nn.Module = net
    if scheme == "fp16":
        model = HalfNet(net)
    if scheme == "autocast":
        model = AutocastNet(net, device)
    if precision.compiled:  # the detector compiles (detector.py): frames to boxes, not the network alone
        pt2e.check_compiler()
    return model.eval()
