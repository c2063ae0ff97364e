"""Building detectors: architectures, weights sources, profiles, devices, input conversion."""

from __future__ import annotations

import re
import urllib.error
from pathlib import Path

import numpy as np
import pytest
import torch
from torchvision.models import get_model, get_model_weights
from torchvision.models._api import WeightsEnum

from detectord.detection import DETECTORS, PROFILES, WeightsError
from detectord.detection.registry import TORCHVISION
from detectord.detection.torchvision.detector import CropDetector, frames_to_batch
from detectord.detection.torchvision.models import build_model, load_detector, resolve_device


@pytest.mark.parametrize("name", sorted(name for name, family in DETECTORS.items() if family.backend == TORCHVISION))
def test_random_and_file_weights_build_the_same_modules_torchvision_builds_with_pretrained_weights(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Otherwise a downloaded file would not load, and timing would describe another network."""
    ours, described = build_model(name, "random")
    assert described == "random"
    state = ours.state_dict()
    monkeypatch.setattr(WeightsEnum, "get_state_dict", lambda self, *a, **k: state)
    theirs = get_model(name, weights=get_model_weights(name).DEFAULT)
    assert [(n, type(m)) for n, m in ours.named_modules()] == [(n, type(m)) for n, m in theirs.named_modules()]


FRAME = (427, 240)
"""(width, height) of the frames the tests run detectors on."""


def test_random_weights_are_the_same_in_every_process() -> None:
    a, _ = build_model("fasterrcnn_mobilenet_v3_large_320_fpn", "random")
    b, _ = build_model("fasterrcnn_mobilenet_v3_large_320_fpn", "random")
    for (name, x), y in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(x, y), name


def test_weights_load_from_a_local_file(tmp_path: Path) -> None:
    model, _ = build_model("fasterrcnn_mobilenet_v3_large_320_fpn", "random")
    with torch.no_grad():
        next(model.parameters()).add_(1.0)
    path = tmp_path / "weights.pth"
    torch.save({"model": model.state_dict()}, path)
    loaded, described = build_model("fasterrcnn_mobilenet_v3_large_320_fpn", str(path))
    assert described == f"file {path}"
    assert torch.equal(next(loaded.parameters()), next(model.parameters()))


def test_weights_of_another_model_are_refused_clearly(tmp_path: Path) -> None:
    model, _ = build_model("ssdlite320_mobilenet_v3_large", "random")
    path = tmp_path / "ssd.pth"
    torch.save(model.state_dict(), path)
    with pytest.raises(WeightsError, match="does not hold fasterrcnn_mobilenet_v3_large_320_fpn weights") as raised:
        build_model("fasterrcnn_mobilenet_v3_large_320_fpn", str(path))
    message = str(raised.value)
    assert len(message) < 600 and "\n" not in message, f"one short line, not every key: {len(message)} characters"
    assert re.search(r"\d+ keys missing \(first: ", message) and re.search(r"\d+ unexpected keys \(first: ", message)


def test_weights_whose_tensors_have_other_shapes_are_refused_in_one_line(tmp_path: Path) -> None:
    model, _ = build_model("fasterrcnn_mobilenet_v3_large_320_fpn", "random")
    state = model.state_dict()
    for key in [k for k in state if k.endswith(".weight")][:50]:
        state[key] = torch.zeros(1)
    path = tmp_path / "reshaped.pth"
    torch.save(state, path)
    with pytest.raises(WeightsError, match=r"50 tensors of another shape, first size mismatch") as raised:
        build_model("fasterrcnn_mobilenet_v3_large_320_fpn", str(path))
    assert len(str(raised.value)) < 600


def test_a_file_that_is_not_weights_is_refused_clearly(tmp_path: Path) -> None:
    path = tmp_path / "junk.pth"
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsError, match="not a PyTorch weights file"):
        build_model("fasterrcnn_resnet50_fpn", str(path))


def test_no_download_names_both_ways_out(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """What an offline machine sees instead of a traceback (the network is faked: nothing is contacted)."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))

    def offline(*args: object, **kwargs: object) -> None:
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", offline)
    with pytest.raises(WeightsError) as raised:
        build_model("fasterrcnn_resnet50_fpn", "default")
    message = str(raised.value)
    assert "--weights PATH" in message and "--weights random" in message
    assert "https://download.pytorch.org/models/fasterrcnn_resnet50_fpn_coco-258fb6c6.pth" in message
    assert str(tmp_path / "hub" / "checkpoints") in message


def test_unknown_model_and_profile_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown model"):
        build_model("yolo", "random")
    with pytest.raises(ValueError, match="unknown profile"):
        load_detector(weights="random", profile="fast", frame_size=FRAME)


def test_cuda_asked_for_without_cuda_is_a_clear_error() -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    assert resolve_device("auto") == torch.device("cpu")
    with pytest.raises(ValueError, match="CUDA is not available"):
        resolve_device("cuda")


@pytest.mark.parametrize(
    ("profile", "expected"),
    [("default", (240, 427)), ("native", (240, 427)), ("reference", (749, 1333))],
)
def test_profiles_set_the_size_the_model_really_runs_at(profile: str, expected: tuple[int, int]) -> None:
    detector = load_detector(weights="random", device="cpu", profile=profile, frame_size=FRAME)
    images, _ = detector.model.transform([torch.zeros(3, 240, 427)])
    assert tuple(images.image_sizes[0]) == expected
    rpn = detector.model.rpn
    assert rpn._post_nms_top_n["testing"] == PROFILES[profile].rpn_post_nms_top_n
    assert detector.model.roi_heads.score_thresh == PROFILES[profile].score_threshold


@pytest.mark.parametrize(("profile", "expected"), [("default", (128, 160)), ("reference", (384, 512))])
def test_a_crop_runs_at_its_frame_s_scale_and_the_whole_frame_size_comes_back(
    profile: str, expected: tuple[int, int]
) -> None:
    detector = load_detector(weights="random", device="cpu", profile=profile, frame_size=FRAME, precision="fp32")
    assert isinstance(detector, CropDetector)
    seen: list[tuple[int, ...]] = []
    detector.model.backbone.register_forward_pre_hook(lambda _, args: seen.append(tuple(args[0].shape[2:])))
    frame = np.random.default_rng(0).integers(0, 256, (240, 427, 3), dtype=np.uint8)
    (found,) = detector.detect_crops([frame[40:160, 100:260]], FRAME)
    assert seen == [expected], "120x160 at the frame's scale (x3.12 for reference), padded to 32"
    assert (found.boxes[:, [0, 2]] <= 160).all() and (found.boxes[:, [1, 3]] <= 120).all(), "crop pixels"
    images, _ = detector.model.transform([torch.zeros(3, 240, 427)])
    assert tuple(images.image_sizes[0]) == ((240, 427) if profile == "default" else (749, 1333))


def test_detectors_that_run_at_one_input_size_see_whole_frames_only() -> None:
    detector = load_detector("ssdlite320_mobilenet_v3_large", weights="random", device="cpu", frame_size=FRAME)
    assert not hasattr(detector, "detect_crops")


def test_score_threshold_overrides_the_profile() -> None:
    detector = load_detector(weights="random", device="cpu", frame_size=FRAME, score_threshold=0.25, precision="fp32")
    assert detector.model.roi_heads.score_thresh == 0.25
    assert detector.info.profile == "default" and detector.info.precision == "fp32"


def test_frames_become_rgb_chw_floats_in_one_conversion_from_read_only_views() -> None:
    frame = np.zeros((4, 6, 3), np.uint8)
    frame[..., 0], frame[..., 1], frame[..., 2] = 10, 20, 255  # B, G, R
    frame.flags.writeable = False
    batch = frames_to_batch([frame, frame], torch.device("cpu"), torch.float32)
    assert batch.shape == (2, 3, 4, 6) and batch.dtype == torch.float32
    assert torch.allclose(batch[1, :, 0, 0], torch.tensor([255.0, 20.0, 10.0]) / 255.0)


def test_the_detector_reports_boxes_inside_the_frame() -> None:
    detector = load_detector(
        "fasterrcnn_resnet50_fpn", weights="random", device="cpu", frame_size=FRAME, score_threshold=0.0
    )
    frame = np.random.default_rng(0).integers(0, 256, (240, 427, 3), dtype=np.uint8)
    (found,) = detector([frame])
    assert len(found) > 0
    assert found.boxes.dtype == np.float32 and found.labels.dtype == np.int32
    assert (found.boxes[:, [0, 2]] <= 427).all() and (found.boxes[:, [1, 3]] <= 240).all()
    assert (np.diff(found.scores) <= 0).all(), "best first"
