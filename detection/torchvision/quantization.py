"""int8 on the CPU: dynamic quantisation of the box head, static quantisation of backbone + FPN.

Static quantisation needs the ranges of real activations: ``calibrate``
runs frames of a real video through the model with observers on the
backbone (``pt2e.prepare``), and saves what they saw, with its provenance,
as an artifact that ``load_calibration`` turns back into the same int8
backbone without recalibrating. RPN and RoI heads stay float: their proposal
ranking and box regression are where int8 error costs detections.

Artifact version 2 is PT2E's (torchao, oneDNN kernels through Inductor);
version 1 held the state of a torch.ao FX graph (fbgemm kernels), the flow
PyTorch deprecated. Measured side by side (bench/quantization.py keeps the
FX flow as a comparison row), PT2E had the lower feature error at the same
speed on AVX-512, and it is the flow that reaches AMX; a version-1 artifact
is refused with the command that makes a new one.

int8-dynamic still uses ``torch.ao.quantization.quantize_dynamic``, whose
deprecation warnings are silenced here and documented in the README.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import fx, nn

from detectord.detection.devices import cpu_has_vnni
from detectord.detection.errors import CalibrationError

from . import pt2e
from .detector import frames_to_batch

log = logging.getLogger(__name__)

ARTIFACT_FORMAT = "detectord.int8-static"
ARTIFACT_VERSION = 2
FLOW = "pt2e-x86-inductor"
BACKEND = "x86"


@contextlib.contextmanager
def quiet_ao() -> Iterator[None]:
    """torch.ao's deprecation notes, repeated on every call; the README says it once instead."""
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
    with quiet_ao():
        roi_heads.box_head = quantize_dynamic(roi_heads.box_head, {nn.Linear}, dtype=torch.qint8)


def observe(model: nn.Module, observed: nn.Module, frames: Sequence[np.ndarray], batch: int = 4) -> None:
    """Run ``frames`` (BGR uint8) through ``model`` with ``observed`` in place of its backbone."""
    float_backbone, model.backbone = model.backbone, observed
    try:
        with torch.inference_mode():
            for start in range(0, len(frames), batch):
                model(list(frames_to_batch(frames[start : start + batch], torch.device("cpu"), torch.float32)))
    finally:
        model.backbone = float_backbone


def calibrate(
    model: nn.Module, frames: Sequence[np.ndarray], provenance: dict[str, Any], batch: int = 4
) -> dict[str, Any]:
    """The artifact for ``model``'s backbone, observed on real ``frames`` (BGR uint8).

    ``model`` must be the float model on the CPU with its inference profile
    applied, so the observers see the input sizes inference will use.
    """
    if not frames:
        raise CalibrationError("calibration needs at least one frame")
    fingerprint = weights_fingerprint(model)
    reduce_range = not cpu_has_vnni()
    prepared = pt2e.prepare(model, reduce_range)
    observe(model, prepared, frames, batch)
    return make_artifact(prepared, fingerprint, reduce_range, len(frames), provenance)


def make_artifact(
    prepared: fx.GraphModule, fingerprint: str, reduce_range: bool, frames: int, provenance: dict[str, Any]
) -> dict[str, Any]:
    """The calibration artifact: what ``prepared``'s observers saw, and what it was made from."""
    return {
        "format": ARTIFACT_FORMAT,
        "version": ARTIFACT_VERSION,
        "flow": FLOW,
        "reduce_range": reduce_range,
        "weights_fingerprint": fingerprint,
        "frames": frames,
        "torch": str(torch.__version__),
        **provenance,
        "observers": pt2e.observer_state(prepared),
    }


def save_calibration(artifact: dict[str, Any], path: Path) -> None:
    torch.save(artifact, path)


def read_calibration(path: Path) -> dict[str, Any]:
    try:
        with quiet_ao(), warnings.catch_warnings():  # a version-1 artifact holds quantized tensors
            warnings.filterwarnings("ignore", message=r".*TypedStorage is deprecated.*")
            artifact = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CalibrationError(f"no such calibration file: {path}") from None
    except Exception as exc:
        raise CalibrationError(f"{path} is not a calibration artifact ({type(exc).__name__})") from None
    if not isinstance(artifact, dict) or artifact.get("format") != ARTIFACT_FORMAT:
        raise CalibrationError(f"{path} is not a detectord int8-static calibration artifact")
    version = artifact.get("version")
    if version != ARTIFACT_VERSION:
        made_by = " (torch.ao FX quantisation, before detectord moved to PT2E)" if version == 1 else ""
        raise CalibrationError(
            f"{path} has artifact version {version}{made_by}; this detectord reads version {ARTIFACT_VERSION}: "
            "recalibrate with detectord calibrate VIDEO"
        )
    return artifact


def check_artifact(artifact: dict[str, Any], model_name: str, fingerprint: str) -> None:
    """Refuse an artifact made for another model or other weights, or that this CPU cannot run."""
    if artifact.get("model") != model_name:
        raise CalibrationError(f"the calibration was made for {artifact.get('model')}, not {model_name}")
    if artifact.get("weights_fingerprint") != fingerprint:
        raise CalibrationError(
            f"the calibration was made for other weights ({artifact.get('weights')}); recalibrate with these"
        )
    if not artifact.get("reduce_range", True) and not cpu_has_vnni():
        raise CalibrationError(
            "the calibration uses 8-bit activations, which need a CPU with VNNI; this one has none: "
            "recalibrate on this machine"
        )


def converted_backbone(prepared: fx.GraphModule, artifact: dict[str, Any]) -> pt2e.Int8Backbone:
    """The int8 backbone: ``prepared`` (exported and annotated again, without data) given the artifact's
    observer statistics, converted to scales and zero points, compiled on its first frame."""
    observers = artifact.get("observers", {})
    if set(observers) != set(pt2e.observer_state(prepared)):
        raise CalibrationError(
            f"the calibration does not fit this backbone (made with torch {artifact.get('torch')}, this is "
            f"torch {torch.__version__}): recalibrate"
        )
    prepared.load_state_dict(observers, strict=False)
    return pt2e.Int8Backbone(pt2e.convert(prepared))


def load_calibration(model: nn.Module, artifact: dict[str, Any], model_name: str) -> None:
    """Swap ``model``'s backbone for the int8 one ``artifact`` describes."""
    check_artifact(artifact, model_name, weights_fingerprint(model))
    model.backbone = converted_backbone(pt2e.prepare(model, artifact.get("reduce_range", True)), artifact)
