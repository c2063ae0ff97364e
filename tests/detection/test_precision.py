"""Precision schemes: output contract, folding numerics, the float16 failure's cause, refusals, calibration."""

from __future__ import annotations

import copy
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from torch import nn
from torchvision.ops.misc import FrozenBatchNorm2d

from bench.synthetic_clip import write_clip
from detectord.detection import CalibrationError, Precision, PrecisionError
from detectord.detection.auto import DeviceFeatures, choose_precision
from detectord.detection.devices import cpu_description
from detectord.detection.torchvision import precision as precision_module
from detectord.detection.torchvision.detector import Detector, frames_to_batch
from detectord.detection.torchvision.fusion import fold_norms
from detectord.detection.torchvision.models import calibrate_detector, load_detector
from detectord.detection.torchvision.precision import Bfloat16Backbone
from detectord.detection.torchvision.quantization import read_calibration, save_calibration

CPU_SCHEMES = ["fp32", "fp32-fused", "fp32+channels_last", "autocast", "bf16", "int8-dynamic", "int8-static"]
BFLOAT16_SCHEMES = ("autocast", "bf16")
SMALL = (214, 120)
"""The frame size of the bfloat16 schemes' tests. A CPU without bfloat16 instructions emulates them in software
(about 35 s for one 427x240 frame through the whole model on an AVX2 EPYC, against 1 s in float32); what these
tests prove (the output contract, the features' relative error) does not depend on the frame's size."""
cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


@pytest.fixture(scope="module")
def frames(tmp_path_factory: pytest.TempPathFactory) -> list[np.ndarray]:
    """Real decoded frames at the pipeline's size (never torch.rand: random input detects nothing)."""
    path = tmp_path_factory.mktemp("clip") / "clip.mp4"
    write_clip(path, frames=12, width=854, height=480, fps=25)
    capture = cv2.VideoCapture(str(path))
    out = []
    while True:
        ok, image = capture.read()
        if not ok:
            break
        out.append(cv2.resize(image, (427, 240), interpolation=cv2.INTER_AREA))
    return out


@pytest.fixture(scope="module")
def calibration(frames: list[np.ndarray], tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("calibration") / "int8.pt"
    save_calibration(calibrate_detector(frames[:8], weights="random", frame_size=(427, 240), source="clip.mp4"), path)
    return path


@pytest.fixture(scope="module")
def int8_static(calibration: Path) -> Detector:
    """The calibration loaded once for the module's tests (Inductor compiles the backbone: about 15 s)."""
    return _load("int8-static", calibration)


def _small(frames: list[np.ndarray]) -> list[np.ndarray]:
    return [cv2.resize(frame, SMALL, interpolation=cv2.INTER_AREA) for frame in frames]


def _load(
    precision: str, calibration: Path | None = None, device: str = "cpu", frame_size: tuple[int, int] = (427, 240)
) -> Detector:
    return load_detector(
        weights="random",
        device=device,
        frame_size=frame_size,
        precision=precision,
        calibration=calibration if precision.startswith("int8-static") else None,
        score_threshold=0.05,
        force_precision=True,  # bf16 on a CPU without bfloat16 instructions: slow, but it runs
    )


@pytest.mark.parametrize("precision", CPU_SCHEMES)
def test_every_cpu_scheme_keeps_torchvisions_output_contract(
    precision: str, frames: list[np.ndarray], calibration: Path, request: pytest.FixtureRequest
) -> None:
    small = precision in BFLOAT16_SCHEMES
    if precision == "int8-static":
        detector: Detector = request.getfixturevalue("int8_static")
    else:
        detector = _load(precision, calibration, frame_size=SMALL if small else (427, 240))
    assert detector.info.precision == precision
    clip = _small(frames[8:10]) if small else frames[8:10]
    batch = list(frames_to_batch(clip, torch.device("cpu"), torch.float32))
    with torch.inference_mode():
        outputs = detector.model(batch)
    assert len(outputs) == 2
    for output in outputs:
        assert output["boxes"].dtype == torch.float32 and output["boxes"].shape[1] == 4
        assert output["scores"].dtype == torch.float32
        assert output["labels"].dtype == torch.int64
        assert len(output["boxes"]) > 0, "with a 0.05 threshold even the untrained network reports boxes"


def test_folding_norms_does_not_change_numerics(frames: list[np.ndarray]) -> None:
    plain, fused = _load("fp32"), _load("fp32-fused")
    assert not any(isinstance(m, FrozenBatchNorm2d) for m in fused.model.modules())
    (a,), (b,) = plain(frames[:1]), fused(frames[:1])
    assert len(a) == len(b)
    np.testing.assert_allclose(a.boxes, b.boxes, atol=0.05)
    np.testing.assert_allclose(a.scores, b.scores, atol=1e-3)


def _dead_channel_block(eps: float) -> nn.Sequential:
    """conv -> FrozenBatchNorm2d as in a trained net where channel 1 is dead.

    The dead channel's filter is ~1e-5 and its running variance ~1e-10:
    representable in float32, below float16's smallest subnormal (6e-8).
    """
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 4, 3, bias=False)
    norm = FrozenBatchNorm2d(4, eps=eps)
    with torch.no_grad():
        conv.weight[1].mul_(1e-5)
        x = torch.randn(64, 3, 16, 16)
        y = conv(x)
        norm.running_mean.copy_(y.mean(dim=(0, 2, 3)))
        norm.running_var.copy_(y.var(dim=(0, 2, 3)))
        norm.weight.copy_(torch.tensor([1.0, 0.5, 1.5, 0.8]))
    assert float(norm.running_var[1]) < 6e-8
    return nn.Sequential(conv, norm).eval()


def test_the_float16_failure_is_frozen_batchnorm_underflow_and_folding_first_fixes_it() -> None:
    """The notebook's all-zero fp16 detections: rsqrt(running_var + eps) in float16 with eps = 0."""
    block = _dead_channel_block(eps=0.0)
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        expected = block(x)
        assert torch.isfinite(expected).all()
        cast = copy.deepcopy(block).half()(x.half())
        assert not torch.isfinite(cast).all(), "the running variance underflows to 0 and rsqrt(0) is inf"
        folded, count = fold_norms(copy.deepcopy(block))
        assert count == 1
        result = folded.half()(x.half())
    assert torch.isfinite(result).all()
    torch.testing.assert_close(result.float(), expected, atol=0.05, rtol=0.02)


def test_with_todays_eps_the_unfolded_cast_is_finite_but_imprecise_on_dead_channels() -> None:
    """Their unnormalised outputs sit in float16's subnormal range; folded, they do not."""
    block = _dead_channel_block(eps=1e-5)
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        expected = block(x)
        cast = copy.deepcopy(block).half()(x.half()).float()
        folded = fold_norms(copy.deepcopy(block))[0].half()(x.half()).float()
    cast_error = (cast[:, 1] - expected[:, 1]).abs().max()
    folded_error = (folded[:, 1] - expected[:, 1]).abs().max()
    assert torch.isfinite(cast).all()
    assert cast_error > 10 * folded_error


@pytest.mark.parametrize("scheme", ["fp16", "mixed"])
def test_float16_schemes_refuse_the_cpu_with_the_reason(scheme: str) -> None:
    with pytest.raises(PrecisionError, match="needs a CUDA device"):
        _load(scheme)


def test_int8_schemes_refuse_cuda_with_the_reason() -> None:
    for scheme in ("int8-dynamic", "int8-static"):
        with pytest.raises(PrecisionError, match="runs on the CPU"):
            Precision.parse(scheme).check_device(torch.device("cuda"))


def test_unknown_precision_names_the_choices() -> None:
    with pytest.raises(PrecisionError, match="choose auto or one of fp32, fp32-fused"):
        Precision.parse("int4")


def test_int8_static_needs_a_calibration_and_only_it_takes_one(calibration: Path) -> None:
    with pytest.raises(PrecisionError, match="detectord calibrate"):
        _load("int8-static", None)
    with pytest.raises(PrecisionError, match="only applies to int8-static"):
        load_detector(weights="random", device="cpu", frame_size=(427, 240), precision="fp32", calibration=calibration)


@pytest.mark.slow
def test_the_calibration_artifact_reloads_to_the_same_model_and_records_its_provenance(
    frames: list[np.ndarray], calibration: Path, int8_static: Detector
) -> None:
    artifact = read_calibration(calibration)
    assert artifact["model"] == "fasterrcnn_resnet50_fpn" and artifact["weights"] == "random"
    assert artifact["frames"] == 8 and artifact["profile"] == "default" and artifact["source"] == "clip.mp4"
    assert artifact["flow"] == "pt2e-x86-inductor" and artifact["version"] == 2
    (x,), (y,) = int8_static(frames[9:10]), _load("int8-static", calibration)(frames[9:10])
    np.testing.assert_array_equal(x.boxes, y.boxes)


def test_a_calibration_of_another_format_version_for_other_weights_or_another_model_is_refused(
    calibration: Path, tmp_path: Path
) -> None:
    artifact = read_calibration(calibration)
    other = tmp_path / "other.pt"
    save_calibration({**artifact, "weights_fingerprint": "0" * 16}, other)
    with pytest.raises(CalibrationError, match="other weights"):
        _load("int8-static", other)
    save_calibration({**artifact, "model": "retinanet_resnet50_fpn"}, other)
    with pytest.raises(CalibrationError, match="made for retinanet_resnet50_fpn"):
        _load("int8-static", other)
    save_calibration({**artifact, "version": 1}, other)
    with pytest.raises(CalibrationError, match=r"has artifact version 1 \(torch\.ao FX .*reads version 2: recalibrate"):
        _load("int8-static", other)
    save_calibration({**artifact, "observers": dict(list(artifact["observers"].items())[1:])}, other)
    with pytest.raises(CalibrationError, match="does not fit this backbone"):
        _load("int8-static", other)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"nope")
    with pytest.raises(CalibrationError, match="not a calibration artifact"):
        _load("int8-static", junk)


@cuda
@pytest.mark.parametrize("scheme", ["fp16", "mixed", "autocast", "fp16+channels_last"])
def test_gpu_schemes_keep_the_output_contract(scheme: str, frames: list[np.ndarray]) -> None:
    detector = _load(scheme, device="cuda")
    batch = list(frames_to_batch(frames[:2], torch.device("cuda"), torch.float32))
    with torch.inference_mode():
        outputs = detector.model(batch)
    for output in outputs:
        assert output["boxes"].dtype == torch.float32 and output["labels"].dtype == torch.int64
        assert torch.isfinite(output["boxes"]).all() and torch.isfinite(output["scores"]).all()


def _features(detector: Detector, frame: np.ndarray) -> dict[str, torch.Tensor]:
    captured: dict[str, torch.Tensor] = {}
    handle = detector.model.backbone.register_forward_hook(
        lambda module, args, output: captured.update({k: v.detach().float() for k, v in output.items()})
    )
    try:
        detector([frame])
    finally:
        handle.remove()
    return captured


def test_bf16_keeps_the_backbone_features_within_2_percent_of_fp32_on_real_frames(frames: list[np.ndarray]) -> None:
    reference, bf16 = _load("fp32", frame_size=SMALL), _load("bf16", frame_size=SMALL)
    assert isinstance(bf16.model.backbone, Bfloat16Backbone)
    assert next(bf16.model.rpn.parameters()).dtype == torch.float32, "the heads stay float32"
    errors = []
    for frame in _small(frames[:2]):
        want, got = _features(reference, frame), _features(bf16, frame)
        errors += [float((got[k] - want[k]).norm() / want[k].norm()) for k in want]
    assert max(errors) < 0.02, errors


def test_bf16_is_refused_on_a_cpu_without_bfloat16_instructions_unless_forced(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(precision_module, "cpu_description", lambda: ("Some AVX2 CPU", ("avx2",)))
    with pytest.raises(PrecisionError, match="emulated and slower than float32"):
        load_detector(weights="random", device="cpu", frame_size=(427, 240), precision="bf16")
    forced = load_detector(weights="random", device="cpu", frame_size=SMALL, precision="bf16", force_precision=True)
    assert forced.info.precision == "bf16" and forced.info.reason == "asked for"


def test_auto_loads_the_scheme_the_rule_picks_for_this_machine_and_says_why() -> None:
    detector = load_detector(weights="random", device="cpu", frame_size=(427, 240))
    expected = choose_precision(DeviceFeatures("cpu", cpu_description()[1]))
    assert detector.info.precision == expected.precision
    assert detector.info.reason == f"auto: {expected.reason}"
