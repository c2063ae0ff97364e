"""The int8-static flow detectord shipped before PT2E: torch.ao FX graph mode, fbgemm kernels.

PyTorch deprecated it; detectord's ``int8-static`` now goes through PT2E
(``detection/pt2e.py``). It stays here, and only here, so that
bench/quantization.py measures both flows side by side on the same frames
and the same calibration, which is what the choice between them rests on.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import numpy as np
import torch
from torch import nn

from detectord.detection import ModelInfo, get_profile
from detectord.detection.devices import cpu_has_vnni
from detectord.detection.torchvision.detector import Detector
from detectord.detection.torchvision.fusion import fold_detector_norms, fold_norms
from detectord.detection.torchvision.models import build_model
from detectord.detection.torchvision.pt2e import example_input
from detectord.detection.torchvision.quantization import BACKEND, observe, quiet_ao

NAME = "int8-static-fx"


def _qconfig_mapping(reduce_range: bool) -> Any:
    """PyTorch's x86 mapping; 8-bit activations (no ``reduce_range``) where VNNI sums into int32."""
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


def fx_int8_detector(
    calibration_frames: Sequence[np.ndarray],
    model_name: str,
    weights: str,
    profile: str,
    frame_size: tuple[int, int],
    score_threshold: float | None,
) -> Detector:
    """The detector with its backbone calibrated and converted by the FX flow, heads float (folded)."""
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

    chosen = get_profile(profile).with_score_threshold(score_threshold)
    model, described = build_model(model_name, weights, chosen, frame_size)
    torch.backends.quantized.engine = BACKEND
    folded, _ = fold_norms(cast(nn.Module, model.backbone))
    with quiet_ao():
        prepared = prepare_fx(folded, _qconfig_mapping(not cpu_has_vnni()), (example_input(model),))
        observe(model, prepared, calibration_frames)
        model.backbone = convert_fx(prepared)
    fold_detector_norms(model)
    info = ModelInfo(
        name=model_name, weights=described, precision=NAME, device="cpu", profile=chosen.name, reason="benchmark"
    )
    return Detector(model, info, torch.device("cpu"), chosen)
