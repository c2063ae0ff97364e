"""Building torchvision detectors by name with pretrained, local or random weights."""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np
import torch
from torch import nn
from torchvision.models import get_model, get_model_weights
from torchvision.ops.misc import FrozenBatchNorm2d

from detectord.detection.auto import DeviceFeatures, choose_precision
from detectord.detection.devices import cpu_description, resolve_device_name
from detectord.detection.errors import ModelOptionError, WeightsError
from detectord.detection.profiles import InferenceProfile, builder_kwargs, get_profile
from detectord.detection.registry import DEFAULT_MODEL, TORCHVISION, family
from detectord.detection.types import ModelInfo

from .detector import CropDetector, Detector
from .labels import COCO_CATEGORIES
from .precision import Precision, apply_precision
from .quantization import calibrate

log = logging.getLogger(__name__)


def resolve_device(device: str = "auto") -> torch.device:
    """``auto``: CUDA when available, else the CPU; ``cpu``, ``cuda``, ``cuda:N`` as asked."""
    return torch.device(resolve_device_name(device))


def _freeze_batchnorm(module: nn.Module) -> None:
    """Replace BatchNorm2d by FrozenBatchNorm2d(num_features), as torchvision's trained builders do."""
    for name, child in module.named_children():
        if isinstance(child, nn.BatchNorm2d):
            setattr(module, name, FrozenBatchNorm2d(child.num_features))
        else:
            _freeze_batchnorm(child)


def _untrained(name: str, options: dict[str, Any]) -> nn.Module:
    model = get_model(name, weights=None, weights_backbone=None, num_classes=len(COCO_CATEGORIES), **options)
    if family(name).frozen_backbone_norm:
        _freeze_batchnorm(model.backbone)
    return model


def _download_hint(url: str) -> str:
    cache = Path(torch.hub.get_dir()) / "checkpoints"
    return (
        f"fetch {url} on a machine with internet access (e.g. curl -LO {url}), copy it here and pass "
        f"--weights PATH, or put it in {cache}/ where torchvision looks before downloading; "
        "--weights random builds the untrained network, for tests and timing only"
    )


SHOWN_KEYS = 3
"""Keys a message about weights that do not fit names: the count says the rest (a wrong file misses hundreds)."""
OFFLINE_ENV = "DETECTORD_OFFLINE"
"""Set (to anything) on a machine without internet: nothing tries to download weights."""
PROBE_TIMEOUT_S = 3.0


def pretrained_unavailable(name: str) -> str | None:
    """Why torchvision's pretrained weights of ``name`` cannot be had now, or None when they can.

    They can when torch's cache holds them, or when their server answers (the
    download itself happens at load). Nothing is contacted when ``DETECTORD_OFFLINE`` is set.
    """
    url = get_model_weights(name).DEFAULT.url
    cached = Path(torch.hub.get_dir()) / "checkpoints" / Path(urlparse(url).path).name
    if cached.is_file():
        return None
    if os.environ.get(OFFLINE_ENV):
        return f"the pretrained weights of {name} are not in {cached.parent} and {OFFLINE_ENV} is set"
    host = urlparse(url).hostname or ""
    try:
        socket.create_connection((host, 443), timeout=PROBE_TIMEOUT_S).close()
    except OSError as exc:
        return f"the pretrained weights of {name} are not in {cached.parent} and {host} cannot be reached ({exc})"
    return None


def _pretrained(name: str, options: dict[str, Any]) -> tuple[nn.Module, str]:
    weights = get_model_weights(name).DEFAULT
    try:
        model = get_model(name, weights=weights, progress=False, **options)
    except OSError as exc:
        raise WeightsError(
            f"cannot download the pretrained weights of {name} ({exc}); {_download_hint(weights.url)}"
        ) from None
    except RuntimeError as exc:
        if "hash" not in str(exc).lower():
            raise
        raise WeightsError(f"the cached weights of {name} are corrupt ({exc}); delete them and retry") from None
    return model, f"torchvision {weights}"


def _state_dict_from(path: Path) -> dict[str, Any]:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise WeightsError(f"no such weights file: {path}") from None
    except Exception as exc:
        # torch's own text runs to paragraphs and suggests weights_only=False, which would run
        # whatever code the file holds: say what is wrong in our words, never pass that on.
        raise WeightsError(
            f"{path} is not a PyTorch weights file torch can load safely ({type(exc).__name__}); "
            "give a state_dict saved with torch.save"
        ) from None
    if isinstance(state, dict) and isinstance(state.get("model"), dict):
        state = state["model"]
    if not isinstance(state, dict):
        raise WeightsError(f"{path} holds a {type(state).__name__}, not a state_dict")
    return state


def _from_file(name: str, path: Path, options: dict[str, Any]) -> tuple[nn.Module, str]:
    state = _state_dict_from(path)
    model = _untrained(name, options)
    try:
        keys = model.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # tensors of another shape: torch lists every one of them
        mismatched = [line.strip() for line in str(exc).splitlines() if "size mismatch" in line]
        detail = mismatched[0] if mismatched else str(exc).strip().splitlines()[0]
        raise WeightsError(
            f"{path} does not hold {name} weights: {len(mismatched) or 'some'} tensors of another shape, "
            f"first {detail[:200]}"
        ) from None
    problems = [
        f"{len(found)} {what} (first: {', '.join(found[:SHOWN_KEYS])})"
        for what, found in (("keys missing", keys.missing_keys), ("unexpected keys", keys.unexpected_keys))
        if found
    ]
    if problems:
        raise WeightsError(f"{path} does not hold {name} weights: {'; '.join(problems)}")
    return model, f"file {path}"


def build_model(
    name: str = DEFAULT_MODEL,
    weights: str = "default",
    profile: InferenceProfile | None = None,
    frame_size: tuple[int, int] | None = None,
) -> tuple[nn.Module, str]:
    """A detector on the CPU in eval mode, and a description of its weights.

    ``weights``: ``default`` (torchvision's pretrained weights, downloaded to
    torch's cache on first use), ``random`` (same architecture, untrained,
    seeded so every process builds the same network) or a path to a
    state_dict file. ``profile``, for frames of ``frame_size`` (width,
    height), goes to torchvision's builder as its arguments; without it the
    builder's defaults apply.
    """
    entry = family(name)
    if entry.backend != TORCHVISION:
        raise ModelOptionError("name", f"{name} is not a torchvision network; load it with load_detector")
    options: dict[str, Any] = {}
    if profile is not None:
        if frame_size is None:
            raise ValueError("a profile needs the frame size it runs at")
        options = builder_kwargs(profile, frame_size, entry.kind)
    if weights == "default":
        model, described = _pretrained(name, options)
    elif weights == "random":
        log.warning("RANDOM WEIGHTS: %s is untrained; its detections are meaningless (tests and timing only)", name)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            model = _untrained(name, options)
        described = "random"
    else:
        model, described = _from_file(name, Path(weights), options)
    return model.eval(), described


def load_detector(
    name: str = DEFAULT_MODEL,
    weights: str = "default",
    device: str = "auto",
    profile: str = "default",
    *,
    frame_size: tuple[int, int],
    score_threshold: float | None = None,
    precision: str = "auto",
    calibration: Path | None = None,
    force_precision: bool = False,
) -> Detector:
    """Build ``name`` with ``weights`` on ``device``, run with inference ``profile`` at ``precision``.

    ``frame_size`` (width, height) is the size of the frames it will get; the
    native-size profiles set the model's input size to it. ``calibration`` is
    the artifact ``int8-static`` needs (``auto`` uses it where int8 pays).
    ``precision="auto"`` chooses the scheme for the device found
    (``detection/auto.py``); ``force_precision`` runs a scheme this device
    would run slower than float32 (bf16 without bfloat16 instructions).
    """
    chosen = get_profile(profile).with_score_threshold(score_threshold)
    scheme = Precision.parse(precision)
    target = resolve_device(device)
    reason = "asked for"
    if scheme.auto:
        choice = choose_precision(device_features(target), calibration)
        scheme, reason = Precision.parse(choice.precision), f"auto: {choice.reason}"
        calibration = calibration if scheme.scheme == "int8-static" else None
    scheme.check_device(target.type)
    model, described = build_model(name, weights, chosen, frame_size)
    model = apply_precision(model, scheme, target, model_name=name, calibration=calibration, force=force_precision)
    info = ModelInfo(
        name=name, weights=described, precision=scheme.name, device=str(target), profile=chosen.name, reason=reason
    )
    crops = scheme.scheme != "int8-static" and family(name).kind != "fixed_size"
    detector = (CropDetector if crops else Detector)(model, info, target, chosen)
    if scheme.scheme == "int8-static":  # compiled on its first frame: now, not when the first camera frame waits
        detector([np.zeros((frame_size[1], frame_size[0], 3), np.uint8)])
    log.info(
        "loaded %s (%s) on %s, profile %s, precision %s (%s)", name, described, target, chosen.name, scheme.name, reason
    )
    return detector


def device_features(device: torch.device) -> DeviceFeatures:
    """What ``auto`` decides on: the CPU's flags, or the GPU's capability."""
    if device.type == "cuda":
        return DeviceFeatures("cuda", cuda_capability=tuple(torch.cuda.get_device_capability(device)))  # type: ignore[arg-type]
    return DeviceFeatures("cpu", cpu_description()[1])


def calibrate_detector(
    frames: Sequence[np.ndarray],
    name: str = DEFAULT_MODEL,
    weights: str = "default",
    profile: str = "default",
    *,
    frame_size: tuple[int, int],
    source: str = "",
) -> dict[str, Any]:
    """The int8-static artifact for ``name`` with ``weights``, calibrated on ``frames`` at ``profile``.

    Calibration runs on the CPU (where int8 runs). The artifact records what
    it was made from: model, weights and their fingerprint, profile, frame
    size, the frames' source and count, backend and torch version.
    """
    chosen = get_profile(profile)
    model, described = build_model(name, weights, chosen, frame_size)
    provenance = {
        "model": name,
        "weights": described,
        "profile": chosen.name,
        "frame_size": list(frame_size),
        "source": source,
    }
    return calibrate(model, frames, provenance)
