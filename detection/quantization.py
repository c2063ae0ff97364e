"""int8 on the CPU: dynamic quantisation of the box head, static FX quantisation of backbone + FPN.

Both use PyTorch's x86 backend (fbgemm kernels, VNNI where the CPU has it).
Static quantisation needs the ranges of real activations: ``calibrate``
runs frames of a real video through the model with observers on the
backbone, and the result is saved as an artifact (the quantised backbone's
state and its provenance) that ``load_calibration`` turns back into the same
quantised backbone without recalibrating. RPN and RoI heads stay float: their
proposal ranking and box regression are where int8 error costs detections,
and they are a minority of the time at the default profile.

torch.ao.quantization is what this project was asked to use; PyTorch marks
it deprecated in favour of torchao's pt2e flow and prints warnings about it
on every call. Those warnings are silenced here and the deprecation is
documented in the README instead of being repeated at every start.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from torch import nn
from torch.fx import GraphModule

from .detector import frames_to_batch
from .errors import CalibrationError
from .fusion import fold_norms

log = logging.getLogger(__name__)

ARTIFACT_FORMAT = "detectord.int8-static"
ARTIFACT_VERSION = 1
BACKEND = "x86"


@contextlib.contextmanager
def _quiet_ao() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*torch\.ao\.quantization is deprecated.*")
        warnings.filterwarnings("ignore", message=r".*quantized tensor creation functions.*deprecated.*")
        warnings.filterwarnings("ignore", message=r".*must run observer before calling calculate_qparams.*")
        warnings.filterwarnings("ignore", message=r".*reduce_range will be deprecated.*")
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"torch\.ao\..*")
        yield


def weights_fingerprint(model: nn.Module) -> str:
    """A short hash of the float weights, so an artifact is never applied to other weights."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def quantize_box_head_dynamic(model: nn.Module) -> None:
    """int8 weights for the box head's Linear layers; activations quantised per batch at run time."""
    from torch.ao.quantization import quantize_dynamic

    roi_heads = getattr(model, "roi_heads", None)
    if roi_heads is None:
        raise ValueError("int8-dynamic quantises a two-stage detector's box head; this model has none")
    torch.backends.quantized.engine = BACKEND
    with _quiet_ao():
        roi_heads.box_head = quantize_dynamic(roi_heads.box_head, {nn.Linear}, dtype=torch.qint8)


def _example_input(model: nn.Module) -> tuple[torch.Tensor]:
    transform: Any = model.transform
    min_size, max_size = transform.min_size[-1], transform.max_size
    return (torch.zeros(1, 3, min_size, max_size),)


def cpu_has_vnni() -> bool:
    """Whether this CPU multiplies u8 x s8 into int32 without an int16 intermediate (AVX512-VNNI, AVX-VNNI)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_vnni" in flags or "avx_vnni" in flags


def _qconfig_mapping(reduce_range: bool) -> Any:
    """PyTorch's x86 mapping, with 8-bit activations where the CPU allows them.

    The default quantises activations to 7 bits (``reduce_range``) because
    without VNNI fbgemm's u8 x s8 products pass through saturating int16
    sums. With VNNI they accumulate straight into int32, and the eighth bit
    halves the activation rounding error (measured on this project's
    backbone: 13% -> 7.5% relative error of the FPN features).
    """
    from torch.ao.quantization import QConfig, get_default_qconfig_mapping
    from torch.ao.quantization.observer import HistogramObserver, PerChannelMinMaxObserver

    mapping = get_default_qconfig_mapping(BACKEND)
    if reduce_range:
        return mapping
    return mapping.set_global(
        QConfig(
            activation=HistogramObserver.with_args(reduce_range=False),
            weight=PerChannelMinMaxObserver.with_args(dtype=torch.qint8, qscheme=torch.per_channel_symmetric),
        )
    )


def _prepare(model: nn.Module, reduce_range: bool) -> GraphModule:
    """The backbone, norms folded, with observers (FX graph mode, x86 kernels)."""
    from torch.ao.quantization.quantize_fx import prepare_fx

    torch.backends.quantized.engine = BACKEND
    folded, _ = fold_norms(cast(nn.Module, model.backbone))
    with _quiet_ao():
        return prepare_fx(folded, _qconfig_mapping(reduce_range), _example_input(model))


def _convert(prepared: GraphModule) -> GraphModule:
    from torch.ao.quantization.quantize_fx import convert_fx

    with _quiet_ao():
        return convert_fx(prepared)


def calibrate(
    model: nn.Module, frames: Sequence[np.ndarray], provenance: dict[str, Any], batch: int = 4
) -> dict[str, Any]:
    """Quantise ``model``'s backbone in place from real ``frames`` (BGR uint8); returns the artifact.

    ``model`` must be the float model on the CPU with its inference profile
    applied, so the observers see the input sizes inference will use.
    """
    if not frames:
        raise CalibrationError("calibration needs at least one frame")
    fingerprint = weights_fingerprint(model)
    reduce_range = not cpu_has_vnni()
    prepared = _prepare(model, reduce_range)
    float_backbone, model.backbone = model.backbone, prepared
    try:
        with torch.inference_mode():
            for start in range(0, len(frames), batch):
                model(list(frames_to_batch(frames[start : start + batch], torch.device("cpu"), torch.float32)))
    finally:
        model.backbone = float_backbone
    model.backbone = _convert(prepared)
    return {
        "format": ARTIFACT_FORMAT,
        "version": ARTIFACT_VERSION,
        "backend": BACKEND,
        "reduce_range": reduce_range,
        "weights_fingerprint": fingerprint,
        "frames": len(frames),
        "torch": str(torch.__version__),
        **provenance,
        "state_dict": model.backbone.state_dict(),
    }


def save_calibration(artifact: dict[str, Any], path: Path) -> None:
    torch.save(artifact, path)


def read_calibration(path: Path) -> dict[str, Any]:
    try:
        with _quiet_ao(), warnings.catch_warnings():  # quantized tensors still load through TypedStorage
            warnings.filterwarnings("ignore", message=r".*TypedStorage is deprecated.*")
            artifact = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CalibrationError(f"no such calibration file: {path}") from None
    except Exception as exc:
        raise CalibrationError(f"{path} is not a calibration artifact ({type(exc).__name__})") from None
    if not isinstance(artifact, dict) or artifact.get("format") != ARTIFACT_FORMAT:
        raise CalibrationError(f"{path} is not a detectord int8-static calibration artifact")
    if artifact.get("version") != ARTIFACT_VERSION:
        raise CalibrationError(f"{path} has artifact version {artifact.get('version')}, expected {ARTIFACT_VERSION}")
    return artifact


def load_calibration(model: nn.Module, artifact: dict[str, Any], model_name: str) -> None:
    """Swap ``model``'s backbone for the quantised one ``artifact`` describes.

    The structure comes from preparing and converting the float backbone
    again (without data); the artifact then supplies every weight, scale and
    zero point.
    """
    if artifact.get("model") != model_name:
        raise CalibrationError(f"the calibration was made for {artifact.get('model')}, not {model_name}")
    if artifact["weights_fingerprint"] != weights_fingerprint(model):
        raise CalibrationError(
            f"the calibration was made for other weights ({artifact.get('weights')}); recalibrate with these"
        )
    if not artifact.get("reduce_range", True) and not cpu_has_vnni():
        raise CalibrationError(
            "the calibration uses 8-bit activations, which need a CPU with VNNI; this one has none: "
            "recalibrate on this machine"
        )
    quantized = _convert(_prepare(model, artifact.get("reduce_range", True)))
    try:
        quantized.load_state_dict(artifact["state_dict"])
    except RuntimeError as exc:
        raise CalibrationError(f"the calibration does not fit this backbone: {str(exc).splitlines()[0]}") from None
    model.backbone = quantized
